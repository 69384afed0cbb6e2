/*
 * isa/scalar.h -- the vector vocabulary of the portable C path (one lane,
 * libm's exp), and the definition of that vocabulary for every ISA.
 *
 * Each isa/<name>.h is included once per translation unit by kernels.h,
 * after FS_DTYPE (32 or 64) is set, and defines:
 *   FS_ISA_BUILT     1 if this ISA is compiled on this platform, else 0
 *                    (then nothing else need be defined)
 *   FS_ISA_SUFFIX    the ISA's name in the table's symbol (fs_kernels_f32_<suffix>)
 *   FS_TARGET        function attribute enabling the instruction set
 *   T                the element type (float / double)
 *   V, W             vector type and its number of lanes
 *   VREGS            the number of vector registers
 *   A                block accumulator of V (float lanes on AVX2, added in double)
 *   VLOAD(p) VSTORE(p, v) VSTREAM(p, v)   full-vector load / store / non-temporal store
 *   VLOADN(p, k) VSTOREN(p, v, k)         first k < W lanes; other lanes load as -inf
 *   VSET(c) VADD(a, b) VSUB(a, b) VMUL(a, b) VMAX(a, b) VMIN(a, b)
 *   VDIV(a, b)                            a / b, lane-wise, correctly rounded
 *   VFMA(a, b, c)                         a b + c, one rounding where the ISA has FMA
 *                                         (the scalar path: two)
 *   VCOLUMNS(x, n, t)                     the n <= FS_FEW_CLASSES columns of W rows of n
 *                                         contiguous elements at x (reading only those
 *                                         W n), column j's W lanes to t + j W; t holds
 *                                         FS_FEW_CLASSES W, the lanes past column n - 1
 *                                         may be overwritten
 *   VROWS(t, n, y)                        back: the W rows of n elements whose columns
 *                                         are at t (as VCOLUMNS left them) to y, writing
 *                                         only those W n elements
 *   VPERM(v, idx)                         lanes v[idx[0]], ..., v[idx[W - 1]], idx a
 *                                         const int32_t * to W lane numbers
 *   VSELECT_EQ(v, w, a, b)                w where a == b, else v (lane-wise)
 *   VINDEX(p, n)                          the W int64_t class indices at p as T lanes,
 *                                         -1 where one is outside [0, n)
 *   DV, DW                                a vector of double lanes and its number of lanes
 *                                         (W / DW of them hold the lanes of one V)
 *   DV_PART(v, k)                         lanes [k DW, (k + 1) DW) of v as double, k constant
 *   V_OF_DV(d)                            d[0], ..., d[W / DW - 1] rounded to T, as one V
 *   DVLOAD(p) DVSTORE(p, d)               DW doubles from / to p
 *   DVSET(c) DVADD(a, b) DVSUB(a, b) DVMUL(a, b) DVDIV(a, b)   as V's, in double
 *   DVKEEP_LT(v, a, b)                    v where a < b, else 0 (lane-wise, double)
 *   VHMAX(v) VHMIN(v)                     largest / smallest lane (NaN handled by the caller)
 *   VEXP(t)                               exp of any t
 *   VEXPN(t)                              exp of t <= 0 (or NaN) only
 *   VEXPN_FAST(t), VEXPN_FAST_MIN         VEXPN without its range check, right for
 *                                         VEXPN_FAST_MIN <= t <= 0
 *   VNAN_ACC(acc, a, b)                   acc | isnan(a) | isnan(b), lane-wise
 *   VNAN_APPLY(v, acc)                    v with the lanes flagged in acc turned to NaN
 *   VKEEP_LT(v, a, b)                     v where a < b, else 0 (lane-wise)
 *   VANY_GT(a, b)                         nonzero if a > b in any lane
 *   AZERO AADD(a, v) ACOMB(a, b)          block accumulators
 *   AHSUM(a)                              the lanes of a, added in double
 *   L, LN, LZERO                          lane sums: LN double sums (float64: each with its
 *                                         Neumaier compensation), and their zero initializer
 *   LADD(l, a)                            l += the lanes of block accumulator a, lane-wise
 *   LSPILL(l, s, c)                       the LN sums to s[], their compensations to c[]
 *                                         (0 where there are none); body/common.h's
 *                                         lanes_total() adds them up
 *   SACC(s, v)                            s[0..W) += v, s an array of double
 *   VHEAD(p)                              elements from p to the first address where
 *                                         VSTREAM may store (0 to W - 1)
 *   VFENCE()                              order the non-temporal stores
 *   VB                                    lane mask: one on/off bit per lane
 *   VBLOAD(b) VBLOADN(b, k)               the lanes on where the W (first k < W) bytes at b
 *                                         are non-zero (a NumPy bool mask); other lanes off
 *   VBSEL(mk, v, c)                       v in the lanes on in mk, c in the others
 */
#define FS_ISA_BUILT  1
#define FS_ISA_SUFFIX scalar
#define FS_TARGET

#if FS_DTYPE == 32
#define T       float
#define VEXP(t) expf(t)
#else
#define T       double
#define VEXP(t) exp(t)
#endif

/* Lane sums (L, see body/common.h): one Neumaier sum. */
typedef struct {
    double s, c;
} fs_lsum_scalar;

#define V                   T
#define W                   1
#define VREGS               16
#define A                   double
#define AZERO               0.0
#define AADD(a, v)          ((a) + (double)(v))
#define ACOMB(a, b)         ((a) + (b))
#define AHSUM(a)            (a)
#define SACC(s, v)          (*(s) += (double)(v))
#define L                   fs_lsum_scalar
#define LN                  1
#define LZERO               {0.0, 0.0}
#define LADD(l, v)          fs_neumaier(&(l).s, &(l).c, (double)(v))
#define LSPILL(l, s_, c_)   ((s_)[0] = (l).s, (c_)[0] = (l).c)
#define VLOAD(p)            (*(p))
#define VSTORE(p, v)        (*(p) = (v))
#define VSTREAM(p, v)       (*(p) = (v))
#define VLOADN(p, k)        (*(p))
#define VSTOREN(p, v, k)    (*(p) = (v))
#define VSET(c)             ((T)(c))
#define VADD(a, b)          ((a) + (b))
#define VSUB(a, b)          ((a) - (b))
#define VMUL(a, b)          ((a) * (b))
#define VFMA(a, b, c)       ((a) * (b) + (c))
#define VMAX(a, b)          ((a) > (b) ? (a) : (b))
#define VMIN(a, b)          ((a) < (b) ? (a) : (b))
#define VHMAX(v)            (v)
#define VHMIN(v)            (v)
#define VEXPN(t)            VEXP(t)
#define VEXPN_FAST(t)       VEXP(t)
#define VEXPN_FAST_MIN      (-INFINITY)
#define VNAN_ACC(acc, a, b) (((a) != (a) || (b) != (b)) ? (T)1 : (acc))
#define VNAN_APPLY(v, acc)  ((acc) != 0 ? (T)NAN : (v))
#define VKEEP_LT(v, a, b)   ((a) < (b) ? (v) : (T)0)
#define VANY_GT(a, b)       ((a) > (b))
#define VHEAD(p)            0
#define VFENCE()            ((void)0)
#define VB                  int
#define VBLOAD(b)           (*(b) != 0)
#define VBLOADN(b, k)       (*(b) != 0)
#define VBSEL(mk, v, c)     ((mk) ? (v) : (c))

/* lane-wise division, and moving elements across lanes (the few-class kernels) */
#define VDIV(a, b)             ((a) / (b))
#define VCOLUMNS(x, n, t)      memcpy((t), (x), (size_t)(n) * sizeof(T))
#define VROWS(t, n, y)         memcpy((y), (t), (size_t)(n) * sizeof(T))
#define VPERM(v, idx)          ((void)(idx), (v))
#define VSELECT_EQ(v, w, a, b) ((a) == (b) ? (w) : (v))
#define VINDEX(p, n)           (*(p) >= 0 && *(p) < (n) ? (T) * (p) : (T) - 1)

/* lanes in double (the few-class cross-entropy's per-row terms) */
#define DV                 double
#define DW                 1
#define DV_PART(v, k)      ((void)(k), (double)(v))
#define V_OF_DV(d)         ((T)(d)[0])
#define DVLOAD(p)          (*(p))
#define DVSTORE(p, d)      (*(p) = (d))
#define DVSET(c)           ((double)(c))
#define DVADD(a, b)        ((a) + (b))
#define DVSUB(a, b)        ((a) - (b))
#define DVMUL(a, b)        ((a) * (b))
#define DVDIV(a, b)        ((a) / (b))
#define DVKEEP_LT(v, a, b) ((a) < (b) ? (v) : 0.0)
