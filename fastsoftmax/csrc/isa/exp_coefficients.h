/*
 * isa/exp_coefficients.h -- the constants of the vector exps, shared by
 * every ISA's exp (isa/<isa>_exp.h; the reduction and accuracy are
 * described in isa/avx2_exp.h).
 *
 * exp(t) = 2^n exp(r), n = round(t log2(e)), r = t - n ln2 by a two-constant
 * Cody-Waite reduction: LN2_HI has trailing zero bits, so n LN2_HI is exact.
 */
#ifndef FS_EXP_COEFFICIENTS_H
#define FS_EXP_COEFFICIENTS_H

#define FS_EXP_F32_LOG2E  0x1.715476p+0f
#define FS_EXP_F32_LN2_HI 0x1.62e400p-1f
#define FS_EXP_F32_LN2_LO 0x1.7f7d1cp-20f
/* exp(r) = 1 + r (1 + r q(r)), q = Q0 + r (Q1 + r (Q2 + r (Q3 + r Q4))) */
#define FS_EXP_F32_Q4     1.37514078958e-3f
#define FS_EXP_F32_Q3     8.36891634138e-3f
#define FS_EXP_F32_Q2     4.16695331092e-2f
#define FS_EXP_F32_Q1     1.666651846e-1f
#define FS_EXP_F32_Q0     4.99999885951e-1f

#define FS_EXP_F64_LOG2E  0x1.71547652b82fep+0
#define FS_EXP_F64_LN2_HI 0x1.62e42fee00000p-1
#define FS_EXP_F64_LN2_LO 0x1.a39ef35793c76p-33
/* AVX-512's float64 reduction by ln2 / 16 (isa/avx512_exp.h), the same way */
#define FS_EXP_F64_16_LN2    (16 * FS_EXP_F64_LOG2E) /* exact: a power of two */
#define FS_EXP_F64_LN2_16_HI 0x1.62e42fef00000p-5
#define FS_EXP_F64_LN2_16_LO 0x1.473de6af278edp-38
/* exp(r) = 1 + r + r^2 q(r), q of degree 9 with coefficients P2 .. P11 */
#define FS_EXP_F64_P2  5.0000000000000127272e-1
#define FS_EXP_F64_P3  1.6666666666666482434e-1
#define FS_EXP_F64_P4  4.1666666666516322379e-2
#define FS_EXP_F64_P5  8.3333333334514329145e-3
#define FS_EXP_F64_P6  1.3888888946678827123e-3
#define FS_EXP_F64_P7  1.984126959711890376e-4
#define FS_EXP_F64_P8  2.4801490346235071109e-5
#define FS_EXP_F64_P9  2.7557507285412289794e-6
#define FS_EXP_F64_P10 2.7631125446226205028e-7
#define FS_EXP_F64_P11 2.5024645209649299235e-8

#endif /* FS_EXP_COEFFICIENTS_H */
