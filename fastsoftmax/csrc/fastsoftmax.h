/*
 * fastsoftmax.h -- the C API of fastsoftmax's kernels.
 *
 * The kernels do no validation: the Python layer has checked shapes,
 * dtypes and sizes before they are called.  None of them touches the
 * Python API, so all of them run without the GIL.
 *
 * Every kernel of kernel_list.h exists for float32 and float64 and for
 * every instruction set this build has (scalar C everywhere; AVX2 + FMA
 * and AVX-512 on x86).  fs_select_isa() points fs_f32 and fs_f64 at the
 * tables of one instruction set; callers go through them:
 *     fs_f32->softmax_rows(x, y, work, n_rows, n, flags);
 */
#ifndef FASTSOFTMAX_H
#define FASTSOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#include "kernel_list.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Instruction-set levels, in increasing order. */
enum { FS_ISA_SCALAR = 0, FS_ISA_AVX2 = 1, FS_ISA_AVX512 = 2, FS_ISA_COUNT = 3 };

/* Widest tile (in columns) a *_cols kernel accepts. */
#define FS_MAX_TILE 512
/*
 * Rows up to this many bytes are processed in passes that re-read the row
 * from cache (L2 holds it); longer rows take the one-pass online max/sum,
 * in parts of FS_PART_BYTES (whose statistics threads may share out).
 */
#define FS_ROW_CACHE_BYTES 262144
#define FS_PART_BYTES      65536
/* The most classes a *_few_rows kernel (one row per vector lane) accepts. */
#define FS_FEW_CLASSES 32

/* Bits of the `flags` argument. */
#define FS_FLAG_LOG    1 /* log_softmax instead of softmax */
#define FS_FLAG_STREAM 2 /* write the output with non-temporal stores */

/* The kernel tables: one function pointer per line of kernel_list.h. */
#define FS_TABLE_FIELD(name, args) void(*name) args;
#define FS_T                       float
typedef struct fs_kernels_f32 {
    FS_KERNELS(FS_TABLE_FIELD)
} fs_kernels_f32;
#undef FS_T
#define FS_T double
typedef struct fs_kernels_f64 {
    FS_KERNELS(FS_TABLE_FIELD)
} fs_kernels_f64;
#undef FS_T
#undef FS_TABLE_FIELD

/* The kernels in use (those of the selected instruction set). */
extern const fs_kernels_f32 *fs_f32;
extern const fs_kernels_f64 *fs_f64;

/* The best level this CPU (and this build) can run. */
int fs_cpu_isa(void);
/* Select the best built level <= min(requested, fs_cpu_isa()).  Returns it. */
int fs_select_isa(int requested);
/* The level in use. */
int fs_current_isa(void);
/* The compiler that built the kernels. */
const char *fs_compiler(void);
/*
 * Whether the page at the middle of [p, p + nbytes) is in memory: 1 or 0,
 * or -1 where the OS cannot say (not Linux, or a buffer under 3 pages).
 * An output that is not yet resident is written with ordinary stores: the
 * OS zeroes each page on first touch and leaves it in cache, where a
 * non-temporal store would cost the zeroed line's write-back on top.
 */
int fs_pages_resident(const void *p, size_t nbytes);

#ifdef __cplusplus
}
#endif

#endif /* FASTSOFTMAX_H */
