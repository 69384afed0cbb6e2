/*
 * body/cross_entropy_cols.h -- the fused cross-entropy with the class axis
 * not last: one tile of `width` samples (columns) of the (outer, n, inner)
 * layout, class c of sample j at logits[c * stride + j].  Vectors run
 * across the samples, so the logits are read where they lie (no copy with
 * the class axis moved last) and the gradient is written in their layout.
 *
 * The same loss and gradient as the rows (body/cross_entropy.h), with the
 * per-class factor u_c of a row now the same for every lane of a class row
 * (u_c = weight[c], or 1) or, for probability targets, one per lane
 * (u_c = weight[c] ((1 - eps) q_c + eps / n)).  The column maxima and sums
 * come from cols_stats (body/softmax.h); one more pass writes the gradient
 * and adds up sum_c u_c (m - x_c); the target's entry of each sample is
 * then written again in double, as in the rows.
 */

/*
 * The pass over the tile's classes: grad = cp exp(x - m) - cw u (0 where a
 * sample is not live) when grad is not NULL, and acc += u (m - x) unless
 * FS_CE_PLAIN.  `mode` is a constant after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
cross_entropy_cols_pass(const T *logits, const T *q, const T *weight, T *grad, ptrdiff_t n,
                        ptrdiff_t stride, ptrdiff_t width, const T *m, const T *cp, const T *cw,
                        const T *live, T c1, T c2, double *acc, int mode)
{
    const V zero = VSET((T)0), one = VSET((T)1), vc1 = VSET(c1), vc2 = VSET(c2);
    for (ptrdiff_t c = 0; c < n; c++) {
        const T *xc = logits + c * stride, *qc = q ? q + c * stride : NULL;
        T *gc = grad ? grad + c * stride : NULL;
        const V wc = VSET(weight ? weight[c] : (T)1);
        cols_prefetch(logits, c, n, stride, width);
#define FS_CE_COL_STEP(LOAD, STORE)                                                                \
    do {                                                                                           \
        const V xv = LOAD(xc + j), vm = VLOAD(m + j);                                              \
        const V u = mode == FS_CE_PLAIN     ? zero                                                 \
                    : mode == FS_CE_UNIFORM ? one                                                  \
                    : mode == FS_CE_WEIGHT  ? wc                                                   \
                    : mode == FS_CE_SOFT    ? VADD(VMUL(LOAD(qc + j), vc1), vc2)                   \
                                            : VMUL(wc, VADD(VMUL(LOAD(qc + j), vc1), vc2));           \
        if (gc) {                                                                                  \
            const V g = VSUB(VMUL(VEXP(VSUB(xv, vm)), VLOAD(cp + j)), VMUL(u, VLOAD(cw + j)));     \
            STORE(gc + j, VKEEP_LT(g, zero, VLOAD(live + j)));                                     \
        }                                                                                          \
        if (mode != FS_CE_PLAIN)                                                                   \
            SACC(acc + j, VKEEP_LT(VMUL(u, VSUB(vm, xv)), zero, VLOAD(live + j)));                 \
    } while (0)
#define FS_CE_LOADN(p)     VLOADN((p), k)
#define FS_CE_STOREN(p, v) VSTOREN((p), (v), k)
        FS_FOR_TILE_ROW(
            width, { FS_CE_COL_STEP(VLOAD, VSTORE); },
            { FS_CE_COL_STEP(FS_CE_LOADN, FS_CE_STOREN); });
#undef FS_CE_COL_STEP
#undef FS_CE_LOADN
#undef FS_CE_STOREN
    }
}

static FS_TARGET void cross_entropy_cols(const T *logits, const int64_t *target,
                                         const T *target_probs, const T *weight, double weight_sum,
                                         double label_smoothing, const double *row_scale,
                                         double scale, double *loss, double *loss_sum, T *grad,
                                         ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width)
{
    T m[FS_TILE_PAD], cp[FS_TILE_PAD], cw[FS_TILE_PAD], live[FS_TILE_PAD];
    double s[FS_TILE_PAD], acc[FS_TILE_PAD], a[FS_TILE_PAD];
    const T *q = target_probs;
    const double e = label_smoothing / (double)n;
    const T c1 = (T)(1.0 - label_smoothing), c2 = (T)e;
    const int mode =
        q ? (weight ? FS_CE_SOFT_WEIGHT : FS_CE_SOFT)
          : (label_smoothing == 0.0 ? FS_CE_PLAIN : (weight ? FS_CE_WEIGHT : FS_CE_UNIFORM));
    cols_stats(logits, n, stride, width, m, s);
    for (ptrdiff_t j = 0; j < width + W; j++)
        acc[j] = a[j] = 0.0;
    if (q) {
        /* a = sum_c u_c, each sample's target mass */
        for (ptrdiff_t c = 0; c < n; c++) {
            const T *qc = q + c * stride;
            const V wc = VSET(weight ? weight[c] : (T)1), vc1 = VSET(c1), vc2 = VSET(c2);
            FS_FOR_TILE_ROW(
                width, { SACC(a + j, VMUL(wc, VADD(VMUL(VLOAD(qc + j), vc1), vc2))); },
                { SACC(a + j, VMUL(wc, VADD(VMUL(VLOADN(qc + j, k), vc1), vc2))); });
        }
    }
    /* per sample: the gradient's factors; ignored samples are not live (gradient 0) */
    for (ptrdiff_t j = 0; j < width + W; j++) {
        const int64_t t = q || j >= width ? 0 : target[j];
        const int finite = j < width && m[j] > (T)-INFINITY && m[j] < (T)INFINITY;
        live[j] = (T)(j < width && (q || (t >= 0 && t < n)));
        if (!finite) {
            cp[j] = cw[j] = (T)NAN;
            continue;
        }
        const double sc = row_scale ? scale * row_scale[j] : scale;
        if (q) {
            cp[j] = (T)(sc * a[j] / s[j]);
            cw[j] = (T)sc;
        } else {
            const double wt = weight && live[j] != 0 ? (double)weight[t] : 1.0;
            const double b = (1.0 - label_smoothing) * wt;
            a[j] = b + e * weight_sum;
            cp[j] = (T)(sc * a[j] / s[j]);
            cw[j] = (T)(sc * e);
        }
    }
    /* grad = cp exp(x - m) - cw u, and acc = sum_c u_c (m - x_c) */
    switch (mode) {
    case FS_CE_PLAIN:
        if (grad)
            cross_entropy_cols_pass(logits, q, weight, grad, n, stride, width, m, cp, cw, live, c1,
                                    c2, acc, FS_CE_PLAIN);
        break;
    case FS_CE_UNIFORM:
        cross_entropy_cols_pass(logits, q, weight, grad, n, stride, width, m, cp, cw, live, c1, c2,
                                acc, FS_CE_UNIFORM);
        break;
    case FS_CE_WEIGHT:
        cross_entropy_cols_pass(logits, q, weight, grad, n, stride, width, m, cp, cw, live, c1, c2,
                                acc, FS_CE_WEIGHT);
        break;
    case FS_CE_SOFT:
        cross_entropy_cols_pass(logits, q, weight, grad, n, stride, width, m, cp, cw, live, c1, c2,
                                acc, FS_CE_SOFT);
        break;
    default:
        cross_entropy_cols_pass(logits, q, weight, grad, n, stride, width, m, cp, cw, live, c1, c2,
                                acc, FS_CE_SOFT_WEIGHT);
    }
    /* per sample: the loss, and the target's entry of the gradient in double */
    double tot = 0.0, comp = 0.0;
    for (ptrdiff_t j = 0; j < width; j++) {
        if (live[j] == 0) {
            cross_entropy_put_loss(loss, row_scale, j, 0.0, &tot, &comp);
            continue;
        }
        if (!(m[j] > (T)-INFINITY && m[j] < (T)INFINITY)) {
            cross_entropy_put_loss(loss, row_scale, j, NAN, &tot, &comp);
            continue;
        }
        const double ls = log(s[j]);
        if (q) {
            cross_entropy_put_loss(loss, row_scale, j, a[j] * ls + acc[j], &tot, &comp);
            continue;
        }
        const int64_t t = target[j];
        const T xt = logits[t * stride + j];
        const double wt = weight ? (double)weight[t] : 1.0;
        const double b = (1.0 - label_smoothing) * wt;
        const double value = b * ((double)m[j] - (double)xt) + a[j] * ls + e * acc[j];
        cross_entropy_put_loss(loss, row_scale, j, value, &tot, &comp);
        if (grad) {
            /* a p_t - b cancels when p_t ~ 1: computed again in double */
            const double sc = row_scale ? scale * row_scale[j] : scale;
            const double pt = exp((double)xt - (double)m[j]) / s[j];
            grad[t * stride + j] = (T)(sc * (a[j] * pt - b - e * wt));
        }
    }
    if (loss_sum)
        *loss_sum = fs_neumaier_total(tot, comp);
}
