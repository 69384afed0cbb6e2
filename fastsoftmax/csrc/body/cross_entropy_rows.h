/*
 * body/cross_entropy_rows.h -- the cross-entropy kernels of kernel_list.h:
 * class-index and class-probability targets, on the helpers of
 * body/cross_entropy.h (included before this file by kernels.h).
 */

/*
 * Both kernels may write the gradient over the logits (grad == logits): each
 * value is read before its gradient is stored.
 *
 * Class-index targets.  target[r] outside [0, n) marks an ignored row: loss
 * 0, gradient 0, the row is not read.  `weight` (per class) may be NULL,
 * weight_sum = sum(weight) (n without weights).  The gradient row is scaled
 * by scale * (row_scale ? row_scale[r] : 1); loss[r] (when loss is not
 * NULL) is the row's own (class-weighted) loss, and *loss_sum (when not
 * NULL) the sum of the losses times row_scale.  Without grad (NULL) only
 * the loss is computed: the logits are read, nothing of their size is
 * written.
 */
static FS_TARGET void cross_entropy_rows(const T *logits, const int64_t *target, const T *weight,
                                         double weight_sum, double label_smoothing,
                                         const double *row_scale, double scale, double *loss,
                                         double *loss_sum, T *grad, T *work, ptrdiff_t n_rows,
                                         ptrdiff_t n, int flags)
{
    if (n <= FS_CE_SMALL) {
        const double total =
            cross_entropy_small_rows(logits, target, weight, weight_sum, label_smoothing, row_scale,
                                     scale, loss, grad, n_rows, n, flags);
        if (loss_sum)
            *loss_sum = total;
        return;
    }
    const int stream = fs_stream_pays(n, flags) & FS_FLAG_STREAM;
    const double e = label_smoothing / (double)n;
    const int mode = label_smoothing == 0.0 ? FS_CE_PLAIN : weight ? FS_CE_WEIGHT : FS_CE_UNIFORM;
    double tot = 0.0, comp = 0.0;
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const T *xr = logits + r * n;
        T *gr = grad ? grad + r * n : NULL;
        const int64_t t = target[r];
        T m = (T)NAN, lo, xt = (T)0;
        double s = NAN;
        const T *ex = NULL;
        if (t >= 0 && t < n) {
            xt = xr[t]; /* before the gradient overwrites it, when grad is logits */
            const T *ahead = r + 1 < n_rows ? xr + n : NULL;
            if (gr)
                cross_entropy_stats(xr, gr, work, n, stream, &m, &s, &ex, ahead);
            else
                row_stats(xr, n, &m, &s, &lo, ahead);
        }
        if (t < 0 || t >= n || !(m > (T)-INFINITY && m < (T)INFINITY)) {
            const double value = t < 0 || t >= n ? 0.0 : NAN;
            cross_entropy_put_loss(loss, row_scale, r, value, &tot, &comp);
            if (gr)
                fill(gr, n, (T)value);
            continue;
        }
        const double sc = row_scale ? scale * row_scale[r] : scale;
        const double wt = weight ? (double)weight[t] : 1.0;
        const double b = (1.0 - label_smoothing) * wt, a = b + e * weight_sum;
        double acc;
        if (gr) {
            acc = cross_entropy_grad(xr, ex, weight, NULL, gr, n, m, (T)(sc * a / s), (T)(sc * e),
                                     0, 0, mode, stream);
            /* the target's entry again in double: a p_t - b cancels when p_t ~ 1 */
            const double pt = exp((double)xt - (double)m) / s;
            gr[t] = (T)(sc * (a * pt - b - (mode == FS_CE_PLAIN ? 0.0 : e * wt)));
        } else {
            acc =
                mode == FS_CE_PLAIN ? 0.0 : cross_entropy_usum(xr, weight, NULL, n, m, 0, 0, mode);
        }
        const double value =
            b * ((double)m - (double)xt) + a * log(s) + (mode == FS_CE_PLAIN ? 0.0 : e * acc);
        cross_entropy_put_loss(loss, row_scale, r, value, &tot, &comp);
    }
    if (grad && stream)
        VFENCE();
    if (loss_sum)
        *loss_sum = fs_neumaier_total(tot, comp);
}

/*
 * Probability targets q (rows like x): u_c = weight_c ((1 - eps) q_c + eps / n),
 * a = sum_c u_c, b = 0, e = 1.  Scaling, loss, loss_sum and grad as
 * cross_entropy_rows.
 */
static FS_TARGET void cross_entropy_probs_rows(const T *logits, const T *target_probs,
                                               const T *weight, double label_smoothing,
                                               const double *row_scale, double scale, double *loss,
                                               double *loss_sum, T *grad, T *work, ptrdiff_t n_rows,
                                               ptrdiff_t n, int flags)
{
    const int stream = fs_stream_pays(n, flags) & FS_FLAG_STREAM;
    const T c1 = (T)(1.0 - label_smoothing), c2 = (T)(label_smoothing / (double)n);
    const int mode = weight ? FS_CE_SOFT_WEIGHT : FS_CE_SOFT;
    double tot = 0.0, comp = 0.0;
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const T *xr = logits + r * n, *qr = target_probs + r * n;
        T *gr = grad ? grad + r * n : NULL;
        T m, lo;
        double s = NAN;
        const T *ex = NULL;
        const T *ahead = r + 1 < n_rows ? xr + n : NULL;
        if (gr)
            cross_entropy_stats(xr, gr, work, n, stream, &m, &s, &ex, ahead);
        else
            row_stats(xr, n, &m, &s, &lo, ahead);
        if (!(m > (T)-INFINITY && m < (T)INFINITY)) {
            cross_entropy_put_loss(loss, row_scale, r, NAN, &tot, &comp);
            if (gr)
                fill(gr, n, (T)NAN);
            continue;
        }
        const double sc = row_scale ? scale * row_scale[r] : scale;
        const double a = cross_entropy_usum(NULL, weight, qr, n, m, c1, c2, mode);
        const double acc = gr ? cross_entropy_grad(xr, ex, weight, qr, gr, n, m, (T)(sc * a / s),
                                                   (T)sc, c1, c2, mode, stream)
                              : cross_entropy_usum(xr, weight, qr, n, m, c1, c2, mode);
        cross_entropy_put_loss(loss, row_scale, r, a * log(s) + acc, &tot, &comp);
    }
    if (grad && stream)
        VFENCE();
    if (loss_sum)
        *loss_sum = fs_neumaier_total(tot, comp);
}
