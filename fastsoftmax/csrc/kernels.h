/*
 * kernels.h -- instantiates every kernel body for one (instruction set,
 * dtype) pair.  Each kernels_<isa>_<dtype>.c is three lines: FS_DTYPE,
 * FS_ISA_HEADER, and this include.  Its kernels are static functions with
 * plain names (softmax_rows, ...); the only symbol the unit exports is its
 * table, fs_kernels_<dtype>_<isa>, which dispatch.c collects.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastsoftmax.h"

#include FS_ISA_HEADER

#if FS_ISA_BUILT

#include "body/common.h"
#include "body/row_stats.h"
#include "body/softmax.h"
#include "body/backward.h"
#include "body/cross_entropy.h"
#include "body/cross_entropy_rows.h"
#include "body/masked.h"
#include "body/vlog.h"
#include "body/cross_entropy_cols.h"
#include "body/few_classes.h"

#define FS_CAT3_(a, b, c) a##b##c
#define FS_CAT3(a, b, c)  FS_CAT3_(a, b, c)
#if FS_DTYPE == 32
#define FS_TABLE_TYPE fs_kernels_f32
#else
#define FS_TABLE_TYPE fs_kernels_f64
#endif
#define FS_TABLE_ENTRY(name, args) .name = name,

extern const FS_TABLE_TYPE FS_CAT3(FS_TABLE_TYPE, _, FS_ISA_SUFFIX);
const FS_TABLE_TYPE FS_CAT3(FS_TABLE_TYPE, _, FS_ISA_SUFFIX) = {FS_KERNELS(FS_TABLE_ENTRY)};

#endif /* FS_ISA_BUILT */
