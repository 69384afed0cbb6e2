/*
 * dispatch.c -- the one place that asks the CPU what it can do, and the
 * dispatch pointers fs_f32 / fs_f64 that every call goes through.
 *
 * No -march flag is needed: each instruction set's kernels carry their own
 * target attribute, so the same binary runs on any CPU of its architecture
 * and picks the best tables it can run, once, at import (fs_select_isa).
 * It also asks the OS one thing about memory (fs_pages_resident).
 */
#include "fastsoftmax.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FS_X86 1
#else
#define FS_X86 0
#endif

/* Every instruction set with kernels in this build, lowest first: level, name. */
#if FS_X86
#define FS_ISAS(X) X(FS_ISA_SCALAR, scalar) X(FS_ISA_AVX2, avx2) X(FS_ISA_AVX512, avx512)
#else
#define FS_ISAS(X) X(FS_ISA_SCALAR, scalar)
#endif

#define FS_DECLARE_TABLES(level, isa)                                                              \
    extern const fs_kernels_f32 fs_kernels_f32_##isa;                                              \
    extern const fs_kernels_f64 fs_kernels_f64_##isa;
FS_ISAS(FS_DECLARE_TABLES)

#define FS_TABLE_F32(level, isa) [level] = &fs_kernels_f32_##isa,
#define FS_TABLE_F64(level, isa) [level] = &fs_kernels_f64_##isa,
/* NULL where this build has no kernels for a level */
static const fs_kernels_f32 *const fs_tables_f32[FS_ISA_COUNT] = {FS_ISAS(FS_TABLE_F32)};
static const fs_kernels_f64 *const fs_tables_f64[FS_ISA_COUNT] = {FS_ISAS(FS_TABLE_F64)};

const fs_kernels_f32 *fs_f32 = &fs_kernels_f32_scalar;
const fs_kernels_f64 *fs_f64 = &fs_kernels_f64_scalar;
static int fs_isa = FS_ISA_SCALAR;

/* The best level the CPU (and its operating system) supports. */
static int fs_cpu_level(void)
{
#if FS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return FS_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FS_ISA_AVX2;
#endif
    return FS_ISA_SCALAR;
}

/* The best level <= isa that this build has kernels for. */
static int fs_built_level(int isa)
{
    if (isa >= FS_ISA_COUNT)
        isa = FS_ISA_COUNT - 1;
    while (isa > FS_ISA_SCALAR && fs_tables_f32[isa] == NULL)
        isa--;
    return isa < FS_ISA_SCALAR ? FS_ISA_SCALAR : isa;
}

int fs_cpu_isa(void)
{
    return fs_built_level(fs_cpu_level());
}

int fs_select_isa(int requested)
{
    const int cpu = fs_cpu_isa();
    const int isa = fs_built_level(requested < cpu ? requested : cpu);
    fs_f32 = fs_tables_f32[isa];
    fs_f64 = fs_tables_f64[isa];
    fs_isa = isa;
    return isa;
}

int fs_current_isa(void)
{
    return fs_isa;
}

const char *fs_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
#define FS_STR_(x) #x
#define FS_STR(x)  FS_STR_(x)
    return "MSVC " FS_STR(_MSC_VER);
#else
    return "unknown";
#endif
}

int fs_pages_resident(const void *p, size_t nbytes)
{
#if defined(__linux__)
    /* One page in the middle stands for the buffer: callers ask about arrays
     * that are either fresh from mmap (nothing resident) or used before. */
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || nbytes < 3 * (size_t)page)
        return -1;
    uintptr_t mid = ((uintptr_t)p + nbytes / 2) & ~((uintptr_t)page - 1);
    unsigned char vec = 0;
    if (mincore((void *)mid, (size_t)page, &vec) != 0)
        return -1;
    return vec & 1;
#else
    (void)p;
    (void)nbytes;
    return -1;
#endif
}
