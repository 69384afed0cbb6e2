/*
 * body/cross_entropy_cols.h -- the fused cross-entropy with the class axis
 * not last: one tile of `width` samples (columns) of the (outer, n, inner)
 * layout, class c of sample j at logits[c * stride + j].  Vectors run
 * across the samples, so the logits are read where they lie (no copy of
 * the array with the class axis moved last) and the gradient is written in
 * their layout.
 *
 * The same loss and gradient as the rows (body/cross_entropy.h), with every
 * per-sample step lane-wise, W samples at a time (no call to libm):
 *  1. the column maxima m, the tile row by row: the one read from memory.
 *     The rows go on into a contiguous copy in the caller's scratch: the
 *     tile's own rows lie `stride` apart, often a multiple of 64 KiB, so on
 *     huge pages they all fall in one set of L2 (16 ways, 21 classes) and
 *     the tile does not stay there for the next sweeps (sweep 2 waited on
 *     its loads: 23% of the loss-only samples);
 *  2. each strip of W samples down its n classes, in registers: the sum of
 *     the exps of the classes other than the target (o), the target's
 *     logit xt -- the target picked by comparing the class with the
 *     sample's target index, both as T --, sum_c u_c (m - x_c) and, for
 *     probability targets, the mass sum_c u_c; then, in a pass over the
 *     strips, the target's exp (et), the losses and the gradient's
 *     factors, with a vector log.  The exps overwrite the copy;
 *  3. the gradient from the exps, row by row: one write, streamed past
 *     STREAM_BYTES.
 * So the logits are read from memory once and the gradient written once:
 * 2 n width elements (a copy's traffic), n width without the gradient.
 * While sweeps 2 and 3 compute, the next tile is fetched (ce_cols_ahead).
 *
 * Per sample, s = et + o, and with a, b, e and u as in cross_entropy.h:
 *   L = b (m - xt) + a log1p((et - 1) + o) + e sum_c u_c (m - x_c)
 *   dL/dx_c = cp exp(x_c - m) - cw u_c, cp = sc a / s, cw = sc e,
 *   at the target sc ((a - b) - a o / s - e w_t)
 * (sc the sample's scale): neither log(s) near 1 nor a p_t - b near 0
 * loses the small o when the target dominates.  A sample whose logits hold
 * a NaN or +inf, or are all -inf, has a NaN s (an exp of NaN, or of
 * inf - inf), hence a NaN loss and gradient; an ignored sample (target
 * outside [0, n)) is not live: loss and gradient 0 whatever its logits.
 *
 * Class indices are compared as T: exact for n <= 2^24 in float32 (the
 * caller sends more classes as rows).
 */

/* Classes per block of the strips' sums: FS_CE_COL_BLOCK terms in T, then a compensated add. */
#define FS_CE_COL_BLOCK 4

/* What every strip and sweep of one call reads. */
typedef struct {
    const T *logits, *q, *weight; /* the (sub-)tile's first column */
    const double *row_scale;
    double label_smoothing, weight_sum, scale;
    ptrdiff_t n, stride;
    T *xs; /* the copy (then the exps): class c of sample j at xs[c * xs_stride + j], or NULL */
    ptrdiff_t xs_stride;
    ptrdiff_t next; /* the next (sub-)tile starts `next` columns on (see ce_cols_ahead) */
} ce_cols_call;

/*
 * Sweep 1 is the one read from memory, sweeps 2 and 3 compute on cached
 * data: left to itself the memory would idle while they run.  So the strips
 * of sweep 2 ask for the next (sub-)tile's lines as they go, one line of
 * each class row per strip (the next tile the caller hands over is the
 * adjacent one, `next` columns on; at the end of a row of tiles the lines
 * asked for are not used, and a prefetch never faults).
 */
#if defined(__GNUC__) || defined(__clang__)
#define ce_cols_ahead(p) __builtin_prefetch((p), 0, 2)
#else
#define ce_cols_ahead(p) ((void)(p))
#endif

/* The (sub-)tile's per-sample lanes, FS_TILE_PAD long: the strips' inputs and results. */
typedef struct {
    T m[FS_TILE_PAD];    /* column maxima */
    T tv[FS_TILE_PAD];   /* target class as T; -1: none (ignored, soft targets, past width) */
    T live[FS_TILE_PAD]; /* 1 for samples with a loss and gradient, else 0 */
    T wt[FS_TILE_PAD];   /* the target class's weight (with weights) */
    T rs[FS_TILE_PAD];   /* the sample's weight row_scale (with row_scale) */
    T cp[FS_TILE_PAD], cw[FS_TILE_PAD], gt[FS_TILE_PAD]; /* the gradient's factors */
    T loss[FS_TILE_PAD];
    T o[FS_TILE_PAD], xt[FS_TILE_PAD], acc[FS_TILE_PAD], mass[FS_TILE_PAD]; /* the strips' sums */
    double tot[W]; /* the losses times rs, per lane */
} ce_cols_lanes;

/* s + c += v by Kahan's compensated sum; once s is inf or NaN it stays so and c is 0. */
static FS_TARGET inline __attribute__((always_inline)) void ce_cols_add(V *s, V *c, V v)
{
    const V zero = VSET((T)0);
    const V y = VSUB(v, *c), t = VADD(*s, y);
    *c = VSELECT_EQ(zero, VSUB(VSUB(t, *s), y), VSUB(t, t), zero);
    *s = t;
}

/* u for class c of the k lanes at qc; `mode` is a constant after inlining. */
static FS_TARGET inline __attribute__((always_inline)) V ce_cols_u(int mode, const T *weight,
                                                                   const T *qc, ptrdiff_t c,
                                                                   ptrdiff_t k, V c1, V c2)
{
    switch (mode) {
    case FS_CE_UNIFORM:
        return VSET((T)1);
    case FS_CE_WEIGHT:
        return VSET(weight[c]);
    case FS_CE_SOFT:
        return VADD(VMUL(load_k(qc, k), c1), c2);
    default: /* FS_CE_SOFT_WEIGHT */
        return VMUL(VSET(weight[c]), VADD(VMUL(load_k(qc, k), c1), c2));
    }
}

/*
 * Sweep 2, first pass, for the strip of k <= W samples at j: down its n
 * classes, the sums to l->o (the other classes' exps; all of them for
 * probability targets), l->xt, l->acc and l->mass.  With `copy` the logits
 * are read from cl->xs, and with `grad` too the exps overwrite them there.
 * `mode`, `grad`, `copy` and k == W are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
ce_cols_sums(const ce_cols_call *cl, ce_cols_lanes *l, ptrdiff_t j, ptrdiff_t k, int mode, int grad,
             int copy)
{
    const int soft = mode == FS_CE_SOFT || mode == FS_CE_SOFT_WEIGHT;
    /* locals: the stores to the copy could alias *cl, and its fields would be read per class */
    const ptrdiff_t n = cl->n, stride = cl->stride, xs_stride = cl->xs_stride;
    const T *const logits = cl->logits + j, *const ahead = cl->logits + cl->next + j;
    const T *const q = soft ? cl->q + j : NULL, *const q_ahead = soft ? cl->q + cl->next + j : NULL;
    const T *const weight = cl->weight;
    T *const xs = copy ? cl->xs + j : NULL;
    const double e = cl->label_smoothing / (double)n;
    const V zero = VSET((T)0), one = VSET((T)1), vm = VLOAD(l->m + j), tv = VLOAD(l->tv + j);
    const V c1 = VSET((T)(1.0 - cl->label_smoothing)), c2 = VSET((T)e);
    V o = zero, oc = zero, acc = zero, accc = zero, mass = zero, massc = zero;
    V xt = vm, cv = zero; /* cv: the class c, in every lane */
    for (ptrdiff_t c0 = 0; c0 < n; c0 += FS_CE_COL_BLOCK) {
        const ptrdiff_t c_end = c0 + FS_CE_COL_BLOCK < n ? c0 + FS_CE_COL_BLOCK : n;
        V ob = zero, accb = zero, massb = zero;
        for (ptrdiff_t c = c0; c < c_end; c++, cv = VADD(cv, one)) {
            T *xc = copy ? xs + c * xs_stride : NULL;
            ce_cols_ahead(ahead + c * stride);
            if (soft)
                ce_cols_ahead(q_ahead + c * stride);
            /* lanes past k: another strip's samples, or past width -inf (as load_k's) */
            const V x = copy ? VLOAD(xc) : load_k(logits + c * stride, k);
            const V ex = VEXPN(VSUB(x, vm));
            /* a strip of k < W lanes leaves the others' logits to their own strip */
            if (copy && grad && k == W)
                VSTORE(xc, ex);
            else if (copy && grad)
                VSTOREN(xc, ex, k);
            if (soft) {
                ob = VADD(ob, ex);
            } else {
                xt = VSELECT_EQ(xt, x, tv, cv);
                ob = VADD(ob, VSELECT_EQ(ex, zero, tv, cv));
            }
            if (mode != FS_CE_PLAIN) {
                const T *qc = soft ? q + c * stride : NULL;
                const V u = ce_cols_u(mode, weight, qc, c, k, c1, c2);
                accb = VADD(accb, VMUL(u, VSUB(vm, x)));
                if (soft)
                    massb = VADD(massb, u);
            }
        }
        ce_cols_add(&o, &oc, ob);
        if (mode != FS_CE_PLAIN)
            ce_cols_add(&acc, &accc, accb);
        if (soft)
            ce_cols_add(&mass, &massc, massb);
    }
    /* the compensated sums (inf and NaN as they are); lanes past k are the next strip's */
    VSTORE(l->o + j, VSELECT_EQ(o, VADD(o, oc), VSUB(o, o), zero));
    if (!soft)
        VSTORE(l->xt + j, xt);
    if (mode != FS_CE_PLAIN)
        VSTORE(l->acc + j, VSELECT_EQ(acc, VADD(acc, accc), VSUB(acc, acc), zero));
    if (soft)
        VSTORE(l->mass + j, VSELECT_EQ(mass, VADD(mass, massc), VSUB(mass, mass), zero));
}

/*
 * Sweep 2, second pass, for the strip of k <= W samples at j, from its
 * sums: its losses to l->loss and l->tot, and with `grad` its gradient's
 * factors to l->cp, l->cw, l->gt.  A pass of its own: the vector log and
 * the divisions are one long chain per strip, which the strips of a round
 * then run side by side rather than each after its class loop (float64,
 * Zen 5: the log took a quarter of the class loops' time when it ended
 * them).  `mode`, `grad` and k == W are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void ce_cols_finish(const ce_cols_call *cl,
                                                                           ce_cols_lanes *l,
                                                                           ptrdiff_t j, ptrdiff_t k,
                                                                           int mode, int grad)
{
    const int soft = mode == FS_CE_SOFT || mode == FS_CE_SOFT_WEIGHT;
    const double e = cl->label_smoothing / (double)cl->n;
    const V zero = VSET((T)0), one = VSET((T)1), vm = VLOAD(l->m + j);
    const V c1 = VSET((T)(1.0 - cl->label_smoothing)), c2 = VSET((T)e);
    const V o = VLOAD(l->o + j), xt = soft ? vm : VLOAD(l->xt + j);
    const V acc = mode != FS_CE_PLAIN ? VLOAD(l->acc + j) : zero;
    /* the target's exp, the same bits as the class loop's (ignored lanes: any value) */
    const V et = soft ? zero : VEXPN(VSUB(xt, vm));
    /* lanes past k (-inf) are another strip's: no loss here */
    const V s = VADD(et, o), live = load_k(l->live + j, k);
    const V rs = cl->row_scale ? VLOAD(l->rs + j) : one;
    const V wt = cl->weight && !soft ? VLOAD(l->wt + j) : one;
    const V lg = vlog1p(VADD(VSUB(et, one), o)); /* log(s) */
    V a, loss;
    if (soft) {
        a = VLOAD(l->mass + j);
        loss = VADD(VMUL(a, lg), acc);
    } else {
        /* b = (1 - eps) w_t, a = b + e sum(weight) */
        const V b = VMUL(c1, wt);
        a = VADD(b, VSET((T)(e * cl->weight_sum)));
        loss = VADD(VMUL(b, VSUB(vm, xt)), VMUL(a, lg));
        if (mode != FS_CE_PLAIN)
            loss = VADD(loss, VMUL(c2, acc));
    }
    loss = VKEEP_LT(loss, zero, live);
    VSTORE(l->loss + j, loss);
    SACC(l->tot, VMUL(loss, rs));
    if (!grad)
        return;
    const V sc = VMUL(VSET((T)cl->scale), rs), inv_s = VDIV(one, s);
    VSTORE(l->cp + j, VMUL(VMUL(a, sc), inv_s));
    VSTORE(l->cw + j, soft ? sc : VMUL(sc, c2));
    if (!soft) {
        /* (a - b) - a o / s - e w_t, a - b = e sum(weight) */
        const V r = VSUB(VSET((T)(e * cl->weight_sum)), VMUL(c2, wt));
        VSTORE(l->gt + j, VMUL(sc, VSUB(r, VMUL(a, VMUL(o, inv_s)))));
    }
}

/* Vectors per 64-byte line (one where a vector is a line or more). */
#define FS_CE_LINE_VECS ((64 / (int)sizeof(T)) > W ? (64 / (int)sizeof(T)) / W : 1)

/*
 * Sweep 2 for the samples [j0, j1) (j0 == 0 or a line boundary: head + i
 * line): the sums of every strip, then their losses and factors.  Strips
 * lie within a line, so that a partial one (the head) ends at its end; a
 * partial strip's stores to the lanes past it come before the next
 * strip's.  `mode`, `grad` and `copy` are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
ce_cols_strips(const ce_cols_call *cl, ce_cols_lanes *l, ptrdiff_t j0, ptrdiff_t j1, ptrdiff_t head,
               int mode, int grad, int copy)
{
    const ptrdiff_t line = FS_CE_LINE_VECS * W;
    ptrdiff_t j;
    for (ptrdiff_t i0 = j0; i0 < j1;) {
        const ptrdiff_t e = i0 < head ? head : i0 + line, i1 = e < j1 ? e : j1;
        for (j = i0; j + W <= i1; j += W)
            ce_cols_sums(cl, l, j, W, mode, grad, copy);
        if (j < i1)
            ce_cols_sums(cl, l, j, i1 - j, mode, grad, copy);
        i0 = i1;
    }
    for (ptrdiff_t i0 = j0; i0 < j1;) {
        const ptrdiff_t e = i0 < head ? head : i0 + line, i1 = e < j1 ? e : j1;
        for (j = i0; j + W <= i1; j += W)
            ce_cols_finish(cl, l, j, W, mode, grad);
        if (j < i1)
            ce_cols_finish(cl, l, j, i1 - j, mode, grad);
        i0 = i1;
    }
}

#ifndef FS_CE_GRAD_LINES
/*
 * Lines of samples per round of sweep 3: each of the n gradient rows gets
 * a run of this many lines at a time.  One line per round spread the writes
 * best over the strips, but at 150 classes (rows 16 KiB apart) the memory
 * took the 150 interleaved single-line writes at half speed.
 */
#define FS_CE_GRAD_LINES 8
#endif

/*
 * Sweep 3 for the lines [j0, j1) of samples (j0 == 0 or a line boundary:
 * head + i line), the gradient: grad = cp exp(x - m) - cw u (the exps from
 * cl->xs with `copy`, else computed again), gt at the target, 0 where a
 * sample is not live.  With `stream` the whole lines go out with
 * non-temporal stores (no read of the gradient's lines before they are
 * written).  `mode` and `copy` are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) V
ce_cols_grad_vec(const ce_cols_call *cl, const ce_cols_lanes *l, const T *xc, const T *qc,
                 const T *ec, ptrdiff_t c, V cv, ptrdiff_t j, ptrdiff_t k, int mode, int copy)
{
    const int soft = mode == FS_CE_SOFT || mode == FS_CE_SOFT_WEIGHT;
    const V c1 = VSET((T)(1.0 - cl->label_smoothing)),
            c2 = VSET((T)(cl->label_smoothing / (double)cl->n));
    const V ex = copy ? VLOAD(ec + j) : VEXPN(VSUB(load_k(xc + j, k), VLOAD(l->m + j)));
    V g = VMUL(ex, VLOAD(l->cp + j));
    if (mode != FS_CE_PLAIN)
        g = VSUB(g, VMUL(ce_cols_u(mode, cl->weight, qc ? qc + j : NULL, c, k, c1, c2),
                         VLOAD(l->cw + j)));
    if (!soft)
        g = VSELECT_EQ(g, VLOAD(l->gt + j), VLOAD(l->tv + j), cv);
    return VKEEP_LT(g, VSET((T)0), VLOAD(l->live + j));
}

/* The gradient of class c for the samples [j, end) of a part that is no whole line: stored, masked
 * at its end. */
static FS_TARGET inline __attribute__((always_inline)) void
ce_cols_grad_part(const ce_cols_call *cl, const ce_cols_lanes *l, const T *xc, const T *qc,
                  const T *ec, T *gc, ptrdiff_t c, V cv, ptrdiff_t j, ptrdiff_t end, int mode,
                  int copy)
{
    for (; j < end; j += W) {
        const ptrdiff_t k = end - j < W ? end - j : W;
        const V g = ce_cols_grad_vec(cl, l, xc, qc, ec, c, cv, j, k, mode, copy);
        if (k == W)
            VSTORE(gc + j, g);
        else
            VSTOREN(gc + j, g, k);
    }
}

static FS_TARGET inline __attribute__((always_inline)) void
ce_cols_grad(const ce_cols_call *cl, const ce_cols_lanes *l, T *grad, ptrdiff_t j0, ptrdiff_t j1,
             ptrdiff_t head, int mode, int copy, int stream)
{
    const int soft = mode == FS_CE_SOFT || mode == FS_CE_SOFT_WEIGHT;
    const ptrdiff_t n = cl->n, stride = cl->stride, line = FS_CE_LINE_VECS * W;
    /* [j0, a) the head (before the first line boundary), [a, b) whole lines, [b, j1) the rest */
    const ptrdiff_t a = j0 < head ? (head < j1 ? head : j1) : j0, b = a + (j1 - a) / line * line;
    for (ptrdiff_t c = 0; c < n; c++) {
        const T *xc = cl->logits + c * stride, *qc = soft ? cl->q + c * stride : NULL;
        const T *ec = copy ? cl->xs + c * cl->xs_stride : NULL;
        T *gc = grad + c * stride;
        const V cv = VSET((T)c);
        ce_cols_grad_part(cl, l, xc, qc, ec, gc, c, cv, j0, a, mode, copy);
        for (ptrdiff_t j = a; j < b; j += W) {
            const V g = ce_cols_grad_vec(cl, l, xc, qc, ec, c, cv, j, W, mode, copy);
            if (stream)
                VSTREAM(gc + j, g);
            else
                VSTORE(gc + j, g);
        }
        ce_cols_grad_part(cl, l, xc, qc, ec, gc, c, cv, b, j1, mode, copy);
    }
}

/*
 * Sweeps 2 and 3 of one (sub-)tile, FS_CE_GRAD_LINES lines of samples at a
 * time: the strips of round i, then the gradient of round i - 1, whose
 * factors are ready -- the gradient's writes spread over the computation
 * rather than after it, and they need not wait on the strips' long chains
 * (the vector log).  With `stream` the lines are the gradient's (the first
 * one `head` samples long), and the whole ones are streamed.  `mode` and
 * `copy` are constants after inlining.
 */
static FS_TARGET inline __attribute__((always_inline)) void
ce_cols_sweeps(const ce_cols_call *cl, ce_cols_lanes *l, T *grad, ptrdiff_t width, int mode,
               int copy, int stream)
{
    if (!grad) {
        ce_cols_strips(cl, l, 0, width, 0, mode, 0, copy);
        return;
    }
    const ptrdiff_t line = FS_CE_LINE_VECS * W;
    const ptrdiff_t head = stream ? VHEAD(grad) % line : 0;
    ptrdiff_t prev0 = 0, prev1 = 0; /* the round whose gradient is due */
    for (ptrdiff_t j0 = 0; j0 < width;) {
        /* a round ends on a line boundary (the first one after the head) */
        ptrdiff_t j1 = (j0 < head ? head : j0) + FS_CE_GRAD_LINES * line;
        j1 = j1 < width ? j1 : width;
        ce_cols_strips(cl, l, j0, j1, head, mode, 1, copy);
        if (prev1 > prev0)
            ce_cols_grad(cl, l, grad, prev0, prev1, head, mode, copy, stream);
        prev0 = j0;
        prev1 = j1;
        j0 = j1;
    }
    ce_cols_grad(cl, l, grad, prev0, prev1, head, mode, copy, stream);
}

/*
 * Sweeps 2 and 3, one function per mode, copy and stream: inlined, all
 * twenty made the tile's function so large that the register allocator
 * spilled a vector in the inner loops of sweeps 1 and 3 (float64, Zen 5,
 * one thread, from memory: 3.7 -> 3.1 TSC cycles an element for the tile).
 */
#define FS_CE_SWEEPS_FN(name, M, C, S)                                                             \
    static FS_TARGET __attribute__((noinline)) void ce_cols_sweeps_##name##_##C##_##S(             \
        const ce_cols_call *cl, ce_cols_lanes *l, T *grad, ptrdiff_t width)                        \
    {                                                                                              \
        ce_cols_sweeps(cl, l, grad, width, M, C, S);                                               \
    }
#define FS_CE_SWEEPS_FNS(name, M)                                                                  \
    FS_CE_SWEEPS_FN(name, M, 1, 1)                                                                 \
    FS_CE_SWEEPS_FN(name, M, 1, 0) FS_CE_SWEEPS_FN(name, M, 0, 1) FS_CE_SWEEPS_FN(name, M, 0, 0)
FS_CE_SWEEPS_FNS(plain, FS_CE_PLAIN)
FS_CE_SWEEPS_FNS(uniform, FS_CE_UNIFORM)
FS_CE_SWEEPS_FNS(weight, FS_CE_WEIGHT)
FS_CE_SWEEPS_FNS(soft, FS_CE_SOFT)
FS_CE_SWEEPS_FNS(soft_weight, FS_CE_SOFT_WEIGHT)
#undef FS_CE_SWEEPS_FNS
#undef FS_CE_SWEEPS_FN

/*
 * One sub-tile of `width` samples (cl's pointers at its first column):
 * sweeps 1 to 3, its losses to loss[0..width), their sum per lane added to
 * l->tot.
 */
static FS_TARGET void ce_cols_tile(const ce_cols_call *cl, ce_cols_lanes *l, const int64_t *target,
                                   double *loss, T *grad, ptrdiff_t width, int mode, int stream)
{
    const ptrdiff_t n = cl->n, stride = cl->stride;
    const T *logits = cl->logits, *weight = cl->weight;
    /* the samples' lanes; those past width are not live (loops the compiler vectorises) */
    if (cl->q) {
        for (ptrdiff_t j = 0; j < width + W; j++) {
            l->tv[j] = (T)-1;
            l->live[j] = (T)(j < width);
        }
    } else {
        for (ptrdiff_t j = 0; j < width; j++) {
            const int64_t t = target[j];
            l->tv[j] = t >= 0 && t < n ? (T)t : (T)-1;
        }
        for (ptrdiff_t j = width; j < width + W; j++)
            l->tv[j] = (T)-1;
        for (ptrdiff_t j = 0; j < width + W; j++)
            l->live[j] = (T)(l->tv[j] >= 0);
        if (weight) {
            for (ptrdiff_t j = 0; j < width + W; j++)
                l->wt[j] = l->live[j] != 0 ? weight[target[j]] : (T)1;
        }
    }
    if (cl->row_scale) {
        for (ptrdiff_t j = 0; j < width + W; j++)
            l->rs[j] = j < width ? (T)cl->row_scale[j] : (T)1;
    }
    /* the next tile's targets and sample weights (this loop waited on this tile's: 9%) */
    for (ptrdiff_t j = 0; j < width; j += 8) {
        if (target)
            ce_cols_ahead(target + cl->next + j);
        if (cl->row_scale)
            ce_cols_ahead(cl->row_scale + cl->next + j);
    }
    /* sweep 1: the column maxima (lanes past width -inf), and the copy */
    T *xs = cl->xs;
    const ptrdiff_t xs_stride = cl->xs_stride;
    for (ptrdiff_t c = 0; c < n; c++) {
        const T *xc = logits + c * stride;
        cols_prefetch(logits, c, n, stride, width);
        if (c == 0 && xs)
            FS_FOR_TILE_ROW(
                width,
                {
                    const V v = VLOAD(xc + j);
                    VSTORE(xs + j, v);
                    VSTORE(l->m + j, v);
                },
                {
                    const V v = VLOADN(xc + j, k);
                    VSTORE(xs + j, v);
                    VSTORE(l->m + j, v);
                });
        else if (c == 0)
            FS_FOR_TILE_ROW(
                width, { VSTORE(l->m + j, VLOAD(xc + j)); },
                { VSTORE(l->m + j, VLOADN(xc + j, k)); });
        else if (xs)
            FS_FOR_TILE_ROW(
                width,
                {
                    const V v = VLOAD(xc + j);
                    VSTORE(xs + c * xs_stride + j, v);
                    VSTORE(l->m + j, VMAX(VLOAD(l->m + j), v));
                },
                {
                    const V v = VLOADN(xc + j, k);
                    VSTORE(xs + c * xs_stride + j, v);
                    VSTORE(l->m + j, VMAX(VLOAD(l->m + j), v));
                });
        else
            FS_FOR_TILE_ROW(
                width, { VSTORE(l->m + j, VMAX(VLOAD(l->m + j), VLOAD(xc + j))); },
                { VSTORE(l->m + j, VMAX(VLOAD(l->m + j), VLOADN(xc + j, k))); });
    }
#define FS_CE_SWEEPS(name, M)                                                                      \
    case M:                                                                                        \
        if (xs && stream)                                                                          \
            ce_cols_sweeps_##name##_1_1(cl, l, grad, width);                                       \
        else if (xs)                                                                               \
            ce_cols_sweeps_##name##_1_0(cl, l, grad, width);                                       \
        else if (stream)                                                                           \
            ce_cols_sweeps_##name##_0_1(cl, l, grad, width);                                       \
        else                                                                                       \
            ce_cols_sweeps_##name##_0_0(cl, l, grad, width);                                       \
        break;
    switch (mode) {
        FS_CE_SWEEPS(plain, FS_CE_PLAIN)
        FS_CE_SWEEPS(uniform, FS_CE_UNIFORM)
        FS_CE_SWEEPS(weight, FS_CE_WEIGHT)
        FS_CE_SWEEPS(soft, FS_CE_SOFT)
    default:
        FS_CE_SWEEPS(soft_weight, FS_CE_SOFT_WEIGHT)
    }
#undef FS_CE_SWEEPS
    if (loss) {
        for (ptrdiff_t j = 0; j < width; j++)
            loss[j] = (double)l->loss[j];
    }
}

/*
 * The tile, in sub-tiles whose copy fits in half of `work`
 * (FS_ROW_CACHE_BYTES): the sub-tile, its copy and the next one's logits
 * then stay in L2.  Rows of the copy are a line longer than the sub-tile,
 * so that they do not lie a multiple of 4 KiB apart (the strips read down
 * them).  Without `work`, or with too many classes for one strip in it, the
 * logits are read in place and their exps computed twice.
 */
static FS_TARGET void cross_entropy_cols(const T *logits, const int64_t *target,
                                         const T *target_probs, const T *weight, double weight_sum,
                                         double label_smoothing, const double *row_scale,
                                         double scale, double *loss, double *loss_sum, T *grad,
                                         T *work, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t width,
                                         int flags)
{
    ce_cols_lanes l;
    const ptrdiff_t line = 64 / (ptrdiff_t)sizeof(T);
    /* rows whole lines apart: each starts as far before a line boundary */
    const int stream = (flags & FS_FLAG_STREAM) && ((size_t)stride * sizeof(T)) % 64 == 0;
    const T *q = target_probs;
    const int mode =
        q ? (weight ? FS_CE_SOFT_WEIGHT : FS_CE_SOFT)
          : (label_smoothing == 0.0 ? FS_CE_PLAIN : (weight ? FS_CE_WEIGHT : FS_CE_UNIFORM));
    ce_cols_call cl = {logits, q,    weight, row_scale, label_smoothing, weight_sum, scale, n,
                       stride, NULL, 0,      width};
    ptrdiff_t sub = width;
    if (work) {
        const ptrdiff_t fit = ((ptrdiff_t)(FS_ROW_CACHE_BYTES / 2 / sizeof(T)) / n - line) / W * W;
        if (fit >= W) {
            const ptrdiff_t parts = (width + fit - 1) / fit;
            sub = ((width + parts - 1) / parts + W - 1) / W * W; /* balanced, <= fit */
            cl.xs = work;
            cl.xs_stride = sub + line;
        }
    }
    for (ptrdiff_t j = 0; j < W; j++)
        l.tot[j] = 0.0;
    for (ptrdiff_t j0 = 0; j0 < width; j0 += sub) {
        const ptrdiff_t w = sub < width - j0 ? sub : width - j0;
        cl.logits = logits + j0;
        cl.q = q ? q + j0 : NULL;
        cl.row_scale = row_scale ? row_scale + j0 : NULL;
        cl.next = w;
        ce_cols_tile(&cl, &l, q ? NULL : target + j0, loss ? loss + j0 : NULL,
                     grad ? grad + j0 : NULL, w, mode, stream);
    }
    if (stream && grad)
        VFENCE();
    if (loss_sum) {
        double tot = 0.0, comp = 0.0;
        for (ptrdiff_t j = 0; j < W; j++)
            fs_neumaier(&tot, &comp, l.tot[j]);
        *loss_sum = fs_neumaier_total(tot, comp);
    }
}
