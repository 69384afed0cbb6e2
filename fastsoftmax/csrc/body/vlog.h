/*
 * body/vlog.h -- a lane-wise log1p for the kernels that take the log of a
 * vector of sums of exps (rows of few classes, column tiles of the
 * cross-entropy): s = 1 + v, v >= 0, one log per W sums and no call to libm.
 */

#include "isa/exp_coefficients.h" /* ln 2 in two parts */

#if FS_DTYPE == 32
#define FS_LOG_LN2_HI      FS_EXP_F32_LN2_HI
#define FS_LOG_LN2_LO      FS_EXP_F32_LN2_LO
#define FS_LOG_ATANH_TERMS 6 /* z^11 / 11 < 2e-9 for |z| <= 0.172 (even: taken in pairs) */
#else
#define FS_LOG_LN2_HI      FS_EXP_F64_LN2_HI
#define FS_LOG_LN2_LO      FS_EXP_F64_LN2_LO
#define FS_LOG_ATANH_TERMS 12 /* z^23 / 23 < 6e-19 */
#endif

/*
 * log1p(v), lane-wise, for 0 <= v < 2^126 or NaN.  u = 1 + v is brought to
 * r in [sqrt(1/2), sqrt(2)), u = 2^k r, by dividing by 2^64, 2^32, ..., 2
 * wherever the quotient stays >= sqrt(1/2) (exact: powers of two; after
 * the step by 2^i, r < 2^i sqrt(1/2)); log r = 2 atanh(z), z = (r - 1) /
 * (r + 1), |z| <= 0.172, by its series; then Kahan's log1p(v) = log(u) v /
 * (u - 1) makes up for the rounding of 1 + v (and is v itself where u
 * rounds to 1).  A few ulp.
 */
static FS_TARGET inline __attribute__((always_inline)) V vlog1p(V v)
{
    const V one = VSET((T)1), zero = VSET((T)0);
    const V u = VADD(one, v);
    V r = u, k = zero;
#define FS_LOG_STEP(i, p)                                                                          \
    do {                                                                                           \
        const V take = VKEEP_LT(one, VSET((T)((p) * 0.70710678118654752440)), r);                  \
        k = VADD(k, VMUL(take, VSET((T)(i))));                                                     \
        r = VSELECT_EQ(r, VMUL(r, VSET((T)(1.0 / (p)))), take, one);                               \
    } while (0)
    /* sums of at most 181 terms (u < 2^8 sqrt(1/2)) need only the last three steps */
    if (VANY_GT(u, VSET((T)181))) {
        FS_LOG_STEP(64, 0x1p64);
        FS_LOG_STEP(32, 0x1p32);
        FS_LOG_STEP(16, 0x1p16);
        FS_LOG_STEP(8, 0x1p8);
    }
    FS_LOG_STEP(4, 0x1p4);
    FS_LOG_STEP(2, 0x1p2);
    FS_LOG_STEP(1, 0x1p1);
#undef FS_LOG_STEP
    /*
     * q(z2) = sum 1/(2i + 1) z2^i as pairs (c_2i + c_2i+1 z2) in powers of
     * z4: half the dependent steps of Horner's rule in z2, each one fused.
     * The whole finish of a block waits for this log, and it was a fifth
     * of the few-class cross-entropy's time in float64 (12 steps of a
     * multiply then an add).
     */
    const V z = VDIV(VSUB(r, one), VADD(r, one)), z2 = VMUL(z, z), z4 = VMUL(z2, z2);
#define FS_LOG_PAIR(i) VFMA(VSET((T)(1.0 / (4 * (i) + 3))), z2, VSET((T)(1.0 / (4 * (i) + 1))))
    V q = FS_LOG_PAIR(FS_LOG_ATANH_TERMS / 2 - 1);
    for (int i = FS_LOG_ATANH_TERMS / 2 - 2; i >= 0; i--)
        q = VFMA(q, z4, FS_LOG_PAIR(i));
#undef FS_LOG_PAIR
    /* k ln2 in two parts: k LN2_HI is exact */
    const V log_u =
        VADD(VMUL(k, VSET(FS_LOG_LN2_HI)), VADD(VMUL(k, VSET(FS_LOG_LN2_LO)), VMUL(VADD(z, z), q)));
    const V d = VSUB(u, one);
    return VSELECT_EQ(VMUL(log_u, VDIV(v, d)), v, d, zero);
}
