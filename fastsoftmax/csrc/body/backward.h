/*
 * body/backward.h -- the vector-Jacobian products of softmax and
 * log_softmax, given the forward output y and the upstream gradient dy:
 *   softmax:      dx = y * (dy - sum(dy * y))
 *   log_softmax:  dx = dy - exp(y) * sum(dy)       (with FS_FLAG_LOG)
 */

/*
 * softmax:     dx = y * (dy - <dy, y>)
 * log_softmax: dx = dy - exp(y) * sum(dy)
 * The reduction is blocked and compensated like the forward sums.
 */
/* `dy_ahead`, `y_ahead`: the next row's, or NULL (see FS_PREFETCH). */
static FS_TARGET void softmax_backward_row(const T *dy, const T *y, T *dx, ptrdiff_t n, int flags,
                                           const T *dy_ahead, const T *y_ahead)
{
    const int log_ = flags & FS_FLAG_LOG;
    L lanes = LZERO;
    double tail = 0.0; /* the last block's elements past whole vectors */
    /* log_softmax: the range of y decides whether exp(y) may skip its check;
       taken only when dy and y stay in cache for the second pass, so that
       long rows do not read y from memory twice */
    const int track = log_ && (size_t)n * 2 * sizeof(T) <= FS_ROW_CACHE_BYTES;
    V ylo = VSET(INFINITY), yhi = VSET(-INFINITY);
    T tail_lo = (T)INFINITY, tail_hi = (T)-INFINITY;
    for (ptrdiff_t b = 0; b < n; b += FS_BLOCK) {
        const ptrdiff_t end = b + FS_BLOCK < n ? b + FS_BLOCK : n;
        A a0 = AZERO, a1 = AZERO;
        ptrdiff_t i = b;
        if (log_ && !track) {
            for (; i + 2 * W <= end; i += 2 * W) {
                a0 = AADD(a0, VLOAD(dy + i));
                a1 = AADD(a1, VLOAD(dy + i + W));
            }
            for (; i + W <= end; i += W)
                a0 = AADD(a0, VLOAD(dy + i));
        } else if (log_) {
            for (; i + 2 * W <= end; i += 2 * W) {
                const V y0 = VLOAD(y + i), y1 = VLOAD(y + i + W);
                a0 = AADD(a0, VLOAD(dy + i));
                a1 = AADD(a1, VLOAD(dy + i + W));
                ylo = VMIN(ylo, VMIN(y0, y1));
                yhi = VMAX(yhi, VMAX(y0, y1));
            }
            for (; i + W <= end; i += W) {
                const V y0 = VLOAD(y + i);
                a0 = AADD(a0, VLOAD(dy + i));
                ylo = VMIN(ylo, y0);
                yhi = VMAX(yhi, y0);
            }
            for (ptrdiff_t j = i; j < end; j++) {
                tail_lo = y[j] < tail_lo ? y[j] : tail_lo;
                tail_hi = y[j] > tail_hi ? y[j] : tail_hi;
            }
        } else {
            for (; i + 2 * W <= end; i += 2 * W) {
                a0 = AADD(a0, VMUL(VLOAD(dy + i), VLOAD(y + i)));
                a1 = AADD(a1, VMUL(VLOAD(dy + i + W), VLOAD(y + i + W)));
            }
            for (; i + W <= end; i += W)
                a0 = AADD(a0, VMUL(VLOAD(dy + i), VLOAD(y + i)));
        }
        LADD(lanes, ACOMB(a0, a1));
        for (; i < end; i++)
            tail += log_ ? (double)dy[i] : (double)dy[i] * (double)y[i];
    }
    const V vs = VSET((T)(lanes_total(lanes) + tail));
    const int stream = flags & FS_FLAG_STREAM;
    if (log_) {
        const T lo = VHMIN(ylo) < tail_lo ? VHMIN(ylo) : tail_lo;
        const T hi = VHMAX(yhi) > tail_hi ? VHMAX(yhi) : tail_hi;
        /* NaN in y fails both tests and takes the checked exp */
        if (track && lo >= (T)VEXPN_FAST_MIN && hi <= 0)
            FS_ROW_APPLY_AHEAD(dx, n, stream, dy, y, VSUB(a, VMUL(VEXPN_FAST(b), vs)), dy_ahead,
                               y_ahead);
        else
            FS_ROW_APPLY_AHEAD(dx, n, stream, dy, y, VSUB(a, VMUL(VEXP(b), vs)), dy_ahead, y_ahead);
    } else {
        FS_ROW_APPLY_AHEAD(dx, n, stream, dy, y, VMUL(b, VSUB(a, vs)), dy_ahead, y_ahead);
    }
}

static FS_TARGET void softmax_backward_rows(const T *dy, const T *y, T *dx, ptrdiff_t n_rows,
                                            ptrdiff_t n, int flags)
{
    /* the next row is asked for only when this one is read back from cache */
    const int ahead = (size_t)n * 2 * sizeof(T) <= FS_ROW_CACHE_BYTES;
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        const int more = ahead && r + 1 < n_rows;
        softmax_backward_row(dy + r * n, y + r * n, dx + r * n, n, fs_stream_pays(n, flags),
                             more ? dy + (r + 1) * n : NULL, more ? y + (r + 1) * n : NULL);
    }
    if (flags & FS_FLAG_STREAM)
        VFENCE();
}

static FS_TARGET void softmax_backward_cols(const T *dy, const T *y, T *dx, ptrdiff_t n,
                                            ptrdiff_t stride, ptrdiff_t width, int flags)
{
    const int log_ = flags & FS_FLAG_LOG;
    T sv[FS_TILE_PAD];
    double s[FS_TILE_PAD], c[FS_TILE_PAD], bs[FS_TILE_PAD];
    for (ptrdiff_t j = 0; j < width + W; j++)
        s[j] = c[j] = 0.0;
    for (ptrdiff_t rb = 0; rb < n; rb += FS_CBLOCK) {
        const ptrdiff_t re = rb + FS_CBLOCK < n ? rb + FS_CBLOCK : n;
        for (ptrdiff_t j = 0; j < width + W; j++)
            bs[j] = 0.0;
        for (ptrdiff_t i = rb; i < re; i++) {
            const T *dyi = dy + i * stride, *yi = y + i * stride;
            cols_prefetch(dy, i, n, stride, width);
            if (!log_)
                cols_prefetch(y, i, n, stride, width);
            if (log_) {
                FS_FOR_TILE_ROW(
                    width, { SACC(bs + j, VLOAD(dyi + j)); },
                    { SACC(bs + j, VLOADN(dyi + j, k)); });
            } else {
                FS_FOR_TILE_ROW(
                    width, { SACC(bs + j, VMUL(VLOAD(dyi + j), VLOAD(yi + j))); },
                    { SACC(bs + j, VMUL(VLOADN(dyi + j, k), VLOADN(yi + j, k))); });
            }
        }
        for (ptrdiff_t j = 0; j < width; j++)
            fs_neumaier(&s[j], &c[j], bs[j]);
    }
    for (ptrdiff_t j = 0; j < width + W; j++)
        sv[j] = (T)fs_neumaier_total(s[j], c[j]);
    for (ptrdiff_t i = 0; i < n; i++) {
        const T *dyi = dy + i * stride, *yi = y + i * stride;
        T *dxi = dx + i * stride;
        cols_prefetch(dy, i, n, stride, width);
        cols_prefetch(y, i, n, stride, width);
        if (log_) {
            FS_FOR_TILE_ROW(
                width,
                {
                    VSTORE(dxi + j, VSUB(VLOAD(dyi + j), VMUL(VEXP(VLOAD(yi + j)), VLOAD(sv + j))));
                },
                {
                    VSTOREN(dxi + j,
                            VSUB(VLOADN(dyi + j, k), VMUL(VEXP(VLOADN(yi + j, k)), VLOAD(sv + j))),
                            k);
                });
        } else {
            FS_FOR_TILE_ROW(
                width,
                { VSTORE(dxi + j, VMUL(VLOAD(yi + j), VSUB(VLOAD(dyi + j), VLOAD(sv + j)))); },
                {
                    VSTOREN(dxi + j,
                            VMUL(VLOADN(yi + j, k), VSUB(VLOADN(dyi + j, k), VLOAD(sv + j))), k);
                });
        }
    }
}
