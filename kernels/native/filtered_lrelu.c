/* StyleGAN3's filtered leaky ReLU as one streaming pass over rows, for the float32 CPU inference path.

   For each block of CB channels (channels-last, so a block of one pixel is CB consecutive floats and every tap is
   one vector multiply-add), the input rows are upsampled along W as they are needed, combined along H into one
   row of the upsampled image, passed through the leaky ReLU, gain and clamp, and downsampled along W (or kept,
   for a 2-D downsampling filter); the output rows are then combined from the last few such rows. Only a ring of
   a few rows of each intermediate exists at a time, so the 2x-rate image is never written out whole: the eager
   composition writes and reads it several times (docs/BENCHMARKS.md).

   A downsampling filter comes as separable terms (one for a separable filter; StyleGAN3-R's radial 2-D filters as
   sums of 2-4, which the caller finds) or as 2-D taps. Symmetric terms of 12 taps, which all of StyleGAN3's are,
   run folded: each window's mirrored samples are added first, so every term has 6 multiply-adds along each axis.

   Every step is upfirdn along one axis with correlation taps t[0..K): insert up - 1 zeros after each sample, pad
   pad0 zeros before (a negative pad crops), correlate with t, keep every down-th output. No code here decides
   filters, gains or sizes: the caller (kernels/filtered_lrelu.py) passes them in. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The CPU's vector of floats. Each block of CB channels is NV such vectors, and the loops below keep CHAINS
   vectors of sums in registers at once (several output pixels of a block): a multiply-add waits for the one
   before it on the same sum, so one sum at a time would run at a quarter of the CPU's rate or less. */
#include "vectors.h"

#ifndef CB
#define CB 16   /* channels per block: measured as fast as 32 and 64, and less waste on counts like 181 */
#endif
#define NV (CB / LANES)
#define CHAINS 8
#define OUTS (CHAINS / NV > 0 ? CHAINS / NV : 1)
#define MAX_TAPS 64  /* taps per filter axis (StyleGAN3 uses 6 per factor of resampling: 12 or 24) */
#define MAX_RANK 4   /* separable terms of a 2-D downsampling filter given as a sum of them (kernels/filtered_lrelu.py) */


static inline int modulo(int a, int b) {
    int r = a % b;
    return r < 0 ? r + b : r;
}


/* out[q] = (out[q] if accumulate) + sum_k taps[k * tap_stride] * in[q * in_step + k], q < n; indices in blocks,
   every one inside `in` by the caller's sizes. */
static void fir(const vec_t *restrict in, ptrdiff_t in_step, const float *restrict taps, int tap_stride, int count,
                vec_t *restrict out, ptrdiff_t out_step, int n, int accumulate) {
    int q = 0;
    for (; q + OUTS <= n; q += OUTS) {
        vec_t acc[OUTS][NV];
#pragma GCC unroll 16
        for (int o = 0; o < OUTS; o++)
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++)
                acc[o][v] = accumulate ? out[(q + o) * out_step * NV + v] : (vec_t){0};
        for (int k = 0; k < count; k++) {
            const float t = taps[k * tap_stride];
            const vec_t *restrict src = in + (q * in_step + k) * NV;
#pragma GCC unroll 16
            for (int o = 0; o < OUTS; o++)
#pragma GCC unroll 16
                for (int v = 0; v < NV; v++) acc[o][v] += t * src[o * in_step * NV + v];
        }
#pragma GCC unroll 16
        for (int o = 0; o < OUTS; o++)
#pragma GCC unroll 16
            for (int v = 0; v < NV; v++) out[(q + o) * out_step * NV + v] = acc[o][v];
    }
    for (; q < n; q++) {
        vec_t acc[NV];
        for (int v = 0; v < NV; v++) acc[v] = accumulate ? out[q * out_step * NV + v] : (vec_t){0};
        for (int k = 0; k < count; k++)
            for (int v = 0; v < NV; v++) acc[v] += taps[k * tap_stride] * in[(q * in_step + k) * NV + v];
        for (int v = 0; v < NV; v++) out[q * out_step * NV + v] = acc[v];
    }
}


/* What follows the upsampling: leaky ReLU, gain, clamp (clamp < 0: none). NaNs pass through, as in PyTorch.
   With a slope in (0, 1] and a positive gain (every StyleGAN3 layer), the gain goes into the weights of the
   upsampling's last pass (gain * lrelu(a) = lrelu(gain * a)) and the leaky ReLU is max(a * slope, a): two
   instructions where a comparison, a choice and a product took four, on four upsampled samples per output. */
typedef struct {
    float slope, gain, clamp;
    int gain_in_weights;
} Activation;

static inline vec_t activate(vec_t a, const Activation *act) {
    const vec_t zero = {0};
    if (act->gain_in_weights) {
        a = max_or_second(a * act->slope, a);          /* a NaN is the second operand: it passes */
        if (act->clamp >= 0.0f) a = min_or_second(zero + act->clamp, max_or_second(zero - act->clamp, a));
        return a;
    }
    a = choose(a < zero, a * act->slope, a) * act->gain;
    if (act->clamp >= 0.0f) {
        const vec_t high = zero + act->clamp, low = zero - act->clamp;
        a = choose(a > high, high, choose(a < low, low, a));
    }
    return a;
}

/* out[e] = sum_m weights[m] * rows[m][e] over `length` blocks: a row of the next axis from `count` rows, passed
   through `act` unless it is NULL. With `mirrored` (symmetric terms: see fir_folded), sum_m weights[m] *
   (rows[m][e] + mirrored[m][e]): each pair of rows mirrored about the output row added first. */
static void combine_rows(vec_t *restrict out, const vec_t *const *rows, const vec_t *const *mirrored,
                         const float *weights, int count, size_t length, const Activation *act) {
    const size_t vectors = length * NV;
    size_t e = 0;
    for (; e + CHAINS <= vectors; e += CHAINS) {
        vec_t acc[CHAINS];
#pragma GCC unroll 16
        for (int a = 0; a < CHAINS; a++) acc[a] = (vec_t){0};
        for (int m = 0; m < count; m++) {
            const float w = weights[m];
            const vec_t *restrict src = rows[m] + e;
            if (mirrored) {
                const vec_t *restrict other = mirrored[m] + e;
#pragma GCC unroll 16
                for (int a = 0; a < CHAINS; a++) acc[a] += w * (src[a] + other[a]);
            } else {
#pragma GCC unroll 16
                for (int a = 0; a < CHAINS; a++) acc[a] += w * src[a];
            }
        }
        if (act)
#pragma GCC unroll 16
            for (int a = 0; a < CHAINS; a++) acc[a] = activate(acc[a], act);
#pragma GCC unroll 16
        for (int a = 0; a < CHAINS; a++) out[e + a] = acc[a];
    }
    for (; e < vectors; e++) {
        vec_t acc = {0};
        for (int m = 0; m < count; m++) acc += weights[m] * (mirrored ? rows[m][e] + mirrored[m][e] : rows[m][e]);
        out[e] = act ? activate(acc, act) : acc;
    }
}

/* The symmetric terms of a downsampling filter (kernels/filtered_lrelu.py's sums of separable filters: every term
   of StyleGAN3-R's radial filters is symmetric, t[k] == t[K - 1 - k]). Each window's two mirrored samples are added
   once, on the CPU's adders, and every term multiplies the HALF sums: half the multiply-adds and loads per term.
   HALF and TERMS are constants at each call, so the sums and taps stay in registers. */
#define MAX_HALF 8

/* out[t][q] = sum_{k < 2 HALF} taps[t][k] in[q * step + k] for the TERMS terms, q < n (taps[t] [2 HALF],
   symmetric). */
static inline __attribute__((always_inline)) void fir_folded(const vec_t *restrict in, int step, const float *taps,
                                                             vec_t *const *out, int n, const int half,
                                                             const int terms) {
    vec_t w[MAX_RANK][MAX_HALF];
    for (int t = 0; t < terms; t++)
        for (int k = 0; k < half; k++) w[t][k] = (vec_t){0} + taps[t * 2 * half + k];
    for (int q = 0; q < n; q++)
        for (int v = 0; v < NV; v++) {
            const vec_t *src = in + (size_t)q * step * NV + v;
            vec_t folded[MAX_HALF];
#pragma GCC unroll 8
            for (int k = 0; k < half; k++) folded[k] = src[k * NV] + src[(2 * half - 1 - k) * NV];
#pragma GCC unroll 4
            for (int t = 0; t < terms; t++) {
                vec_t acc = folded[0] * w[t][0];
#pragma GCC unroll 8
                for (int k = 1; k < half; k++) acc += folded[k] * w[t][k];
                out[t][(size_t)q * NV + v] = acc;
            }
        }
}

/* fir_folded with its sizes as constants for the filters StyleGAN3 has (12 taps: 6 per factor of 2, 1-4 terms):
   the only sizes filtered_lrelu_down_pass sends here. */
static void fir_folded_12(const vec_t *in, int step, const float *taps, vec_t *const *out, int n, int terms) {
    switch (terms) {
        case 1: fir_folded(in, step, taps, out, n, 6, 1); break;
        case 2: fir_folded(in, step, taps, out, n, 6, 2); break;
        case 3: fir_folded(in, step, taps, out, n, 6, 3); break;
        default: fir_folded(in, step, taps, out, n, 6, 4); break;    /* terms <= MAX_RANK: checked by the plan */
    }
}

static int symmetric_taps(const float *taps, int count, int terms) {
    for (int t = 0; t < terms; t++)
        for (int k = 0; k < count / 2; k++)
            if (taps[t * count + k] != taps[t * count + count - 1 - k]) return 0;
    return count % 2 == 0 && count / 2 <= MAX_HALF;
}

/* out[j] = sum_k taps[k] * zero_inserted(in)[j + k - pad0], j < n_out: each phase (j mod up) is a correlation of
   `in` with every up-th tap; its outputs whose taps all land inside `in` go through fir, the few at the edges
   sum only the taps that land inside. */
static void upsample_line(const vec_t *restrict in, int n, vec_t *restrict out, int n_out, const float *restrict taps,
                          int count, int up, int pad0) {
    for (int r = 0; r < up && r < n_out; r++) {
        int k0 = modulo(pad0 - r, up);            /* first tap that lands on a real (not inserted) sample */
        int i0 = (r + k0 - pad0) / up;            /* exact: r + k0 - pad0 is a multiple of up */
        int taps_in_phase = (count - k0 + up - 1) / up;
        int outputs = (n_out - r + up - 1) / up;  /* j = r + q * up, q < outputs */
        int q_lo = min_int(max_int(0, -i0), outputs);
        int q_hi = max_int(q_lo, min_int(outputs, n - taps_in_phase + 1 - i0));
        if (q_hi > q_lo)
            fir(in + (ptrdiff_t)(i0 + q_lo) * NV, 1, taps + k0, up, taps_in_phase,
                out + (ptrdiff_t)(r + q_lo * up) * NV,
                up, q_hi - q_lo, 0);
        for (int q = 0; q < outputs; q++) {
            if (q == q_lo) q = q_hi;
            if (q >= outputs) break;
            vec_t acc[NV];
            for (int v = 0; v < NV; v++) acc[v] = (vec_t){0};
            for (int m = max_int(0, -(i0 + q)); m < min_int(taps_in_phase, n - i0 - q); m++)
                for (int v = 0; v < NV; v++) acc[v] += taps[k0 + m * up] * in[(ptrdiff_t)(i0 + q + m) * NV + v];
            for (int v = 0; v < NV; v++) out[(ptrdiff_t)(r + q * up) * NV + v] = acc[v];
        }
    }
}

typedef struct {
    int channels, height, width;                 /* input [height, width, channels], channels-last */
    const float *up_x, *up_y;                    /* 1-D upsampling taps along W and H */
    int up_count, up;
    int pad_x0, pad_x1, pad_y0, pad_y1;
    const float *down_x, *down_y;                /* 1-D downsampling taps, [down_rank][down_count] each: the filter is
                                                    the sum of down_rank separable ones, or ... */
    const float *down_2d;                        /* ... 2-D taps [down_count, down_count] (NULL if separable) */
    int down_count, down, down_rank;
    Activation act;
    int up_width, up_height, out_width, out_height;
    int stream_out;                              /* whole blocks of the output stored past the cache */
    int down_folded;                             /* the separable terms are symmetric: folded passes */
} Plan;

/* Rows are arrays of blocks, a block NV vectors. */
typedef struct {
    vec_t *input_row;   /* one input row of the block, bias added: [width] */
    vec_t *up_rows;     /* ring of input rows upsampled along W: [ring_up][up_width] */
    vec_t *act_rows;    /* ring of upsampled, activated rows: [ring_act][up_width] */
    vec_t *down_rows;   /* rings of activated rows downsampled along W: [down_rank][down_count][out_width] */
    vec_t *out_row;     /* one output row: [out_width] */
    int ring_up, ring_act;
} Buffers;

static void free_buffers(Buffers *b) {
    free(b->input_row);
    free(b->up_rows);
    free(b->act_rows);
    free(b->down_rows);
    free(b->out_row);
}

static vec_t *alloc_blocks(size_t blocks) {
    return aligned_alloc(64, (blocks * NV * sizeof(vec_t) + 63) / 64 * 64);
}

static int alloc_buffers(const Plan *p, Buffers *b) {
    memset(b, 0, sizeof *b);
    /* One upsampled row reads input rows i0 .. i0 + ceil(up_count / up) - 1; one more slot keeps the ring from
       overwriting a row the current one still reads. */
    b->ring_up = (p->up_count + p->up - 1) / p->up + 1;
    b->ring_act = p->down_2d ? p->down_count : 1;
    b->input_row = alloc_blocks((size_t)p->width);
    b->up_rows = alloc_blocks((size_t)p->up_width * b->ring_up);
    b->act_rows = alloc_blocks((size_t)p->up_width * b->ring_act);
    b->down_rows = alloc_blocks((size_t)p->out_width * p->down_count * p->down_rank);
    b->out_row = alloc_blocks((size_t)p->out_width);
    if (!b->input_row || !b->up_rows || !b->act_rows || !b->down_rows || !b->out_row) {
        free_buffers(b);
        return -1;
    }
    return 0;
}

/* Input row `row` of channels [c0, c0 + CB) (zeros past the last channel) plus the bias, upsampled along W. */
static void upsample_input_row(const Plan *p, const float *x, const float *bias, int c0, int row, Buffers *b,
                               vec_t *out) {
    int n = min_int(CB, p->channels - c0);
    float *restrict line = (float *)b->input_row;
    for (int i = 0; i < p->width; i++) {
        const float *src = x + ((size_t)row * p->width + i) * p->channels + c0;
        float *restrict dst = line + (size_t)i * CB;
        if (n == CB) {
            memcpy(dst, src, sizeof(float) * CB);   /* a fixed size: a few vector moves, no call */
        } else {
            memcpy(dst, src, sizeof(float) * n);
            for (int c = n; c < CB; c++) dst[c] = 0.0f;
        }
        if (bias)
            for (int c = 0; c < n; c++) dst[c] += bias[c0 + c];
    }
    upsample_line(b->input_row, p->width, out, p->up_width, p->up_x, p->up_count, p->up, p->pad_x0);
}

/* Rows of one channel block of one sample: x [height, width, channels] -> y [out_height, out_width, channels]. */
static void run_block(const Plan *p, const float *x, const float *bias, float *y, int c0, Buffers *b) {
    const size_t up_row = (size_t)p->up_width * NV, down_row = (size_t)p->out_width * NV;   /* in vectors */
    const vec_t *rows[MAX_TAPS * MAX_RANK];
    float weights[MAX_TAPS * MAX_RANK];
    const int ring_down = p->down_count;    /* rows of each term's ring */
    int next_input = 0;   /* input rows upsampled along W so far */
    int next_act = 0;     /* upsampled, activated rows made so far */
    int n = min_int(CB, p->channels - c0);
    const int stream_out = p->stream_out && n == CB;
    for (int yo = 0; yo < p->out_height; yo++) {
        int last_needed = yo * p->down + p->down_count;   /* activated rows [yo * down, last_needed) */
        for (; next_act < last_needed; next_act++) {
            int ya = next_act;
            int k0 = modulo(p->pad_y0 - ya, p->up);
            int i0 = (ya + k0 - p->pad_y0) / p->up;
            int taps_in_phase = (p->up_count - k0 + p->up - 1) / p->up;
            int m_lo = i0 < 0 ? -i0 : 0;
            int m_hi = min_int(taps_in_phase, p->height - i0);
            for (; m_hi > m_lo && next_input < i0 + m_hi; next_input++)
                upsample_input_row(p, x, bias, c0, next_input, b, b->up_rows + (next_input % b->ring_up) * up_row);
            int count = 0;
            for (int m = m_lo; m < m_hi; m++, count++) {
                rows[count] = b->up_rows + ((i0 + m) % b->ring_up) * up_row;
                weights[count] = p->up_y[k0 + m * p->up] * (p->act.gain_in_weights ? p->act.gain : 1.0f);
            }
            vec_t *act = b->act_rows + (ya % b->ring_act) * up_row;
            combine_rows(act, rows, NULL, weights, count, (size_t)p->up_width, &p->act);
            if (p->down_folded) {
                vec_t *term_rows[MAX_RANK];
                for (int r = 0; r < p->down_rank; r++)
                    term_rows[r] = b->down_rows + ((size_t)r * ring_down + ya % ring_down) * down_row;
                fir_folded_12(act, p->down, p->down_x, term_rows, p->out_width, p->down_rank);
            } else if (!p->down_2d)
                for (int r = 0; r < p->down_rank; r++)
                    fir(act, p->down, p->down_x + (size_t)r * p->down_count, 1, p->down_count,
                        b->down_rows + ((size_t)r * ring_down + ya % ring_down) * down_row, 1, p->out_width, 0);
        }
        if (p->down_folded) {
            const vec_t *second[MAX_TAPS * MAX_RANK];
            int count = 0;
            for (int r = 0; r < p->down_rank; r++)
                for (int k = 0; k < p->down_count / 2; k++, count++) {
                    const vec_t *ring = b->down_rows + (size_t)r * ring_down * down_row;
                    rows[count] = ring + ((yo * p->down + k) % ring_down) * down_row;
                    second[count] = ring + ((yo * p->down + p->down_count - 1 - k) % ring_down) * down_row;
                    weights[count] = p->down_y[(size_t)r * p->down_count + k];
                }
            combine_rows(b->out_row, rows, second, weights, count, (size_t)p->out_width, NULL);
        } else if (!p->down_2d) {
            int count = 0;
            for (int r = 0; r < p->down_rank; r++)
                for (int k = 0; k < p->down_count; k++, count++) {
                    rows[count] = b->down_rows + ((size_t)r * ring_down + (yo * p->down + k) % ring_down) * down_row;
                    weights[count] = p->down_y[(size_t)r * p->down_count + k];
                }
            combine_rows(b->out_row, rows, NULL, weights, count, (size_t)p->out_width, NULL);
        } else {
            /* Row k of the 2-D filter is a 1-D downsampling of activated row yo * down + k; their sum. */
            for (int k = 0; k < p->down_count; k++)
                fir(b->act_rows + ((yo * p->down + k) % b->ring_act) * up_row, p->down,
                    p->down_2d + (size_t)k * p->down_count, 1, p->down_count, b->out_row, 1, p->out_width, k > 0);
        }
        float *dst = y + (size_t)yo * p->out_width * p->channels + c0;
        const float *row = (const float *)b->out_row;
        /* The output is read again only by the next op, after this pass: whole blocks on aligned vectors go past
           the cache (a plain store first reads each line it writes: a 4 KB stride between pixels here). */
        if (stream_out) {
            for (int j = 0; j < p->out_width; j++)
#pragma GCC unroll 16
                for (int v = 0; v < NV; v++) stream(dst + (size_t)j * p->channels + v * LANES, b->out_row[(size_t)j * NV + v]);
            continue;
        }
        /* A whole block is a copy of fixed size (a few vector moves, no call); a short last block is not. */
        for (int j = 0; j < p->out_width; j++) {
            if (n == CB)
                memcpy(dst + (size_t)j * p->channels, row + (size_t)j * CB, sizeof(float) * CB);
            else
                memcpy(dst + (size_t)j * p->channels, row + (size_t)j * CB, sizeof(float) * n);
        }
    }
}

/* The output's size along one axis, as upfirdn gives it: (n * up + pad0 + pad1 - up_count + 1) samples at the
   upsampled rate, then (that - down_count) / down + 1 kept. */
int filtered_lrelu_out_size(int n, int up, int pad0, int pad1, int up_count, int down, int down_count) {
    int upsampled = n * up + pad0 + pad1 - up_count + 1;
    if (upsampled < down_count) return 0;
    return (upsampled - down_count) / down + 1;
}

/* How the downsampling runs: one 2-D pass, separable terms, or symmetric terms folded (fir_folded's sizes). */
enum { DOWN_2D = 0, DOWN_TERMS = 1, DOWN_FOLDED = 2 };
int filtered_lrelu_down_pass(const float *down_x, const float *down_y, const float *down_2d, int down_count,
                             int down_rank) {
    if (down_2d) return DOWN_2D;
    if (down_count == 12 && down_rank <= MAX_RANK && symmetric_taps(down_x, down_count, down_rank) &&
        symmetric_taps(down_y, down_count, down_rank))
        return DOWN_FOLDED;
    return DOWN_TERMS;
}

/* x: [batch, height, width, channels] float32, channels-last; y: [batch, out_height, out_width, channels].
   down_x, down_y: [down_rank][down_count] (the filter is the sum of down_rank separable ones), or down_2d
   [down_count][down_count]. Channels [c_begin, c_end) only (c_begin a multiple of CB), spread over `threads` OpenMP threads (one block of
   channels of one sample at a time; each thread has its own rings), or run on the caller's thread where the
   library was built without OpenMP (the caller then gives each of its threads a range). Returns 0, or -1 when
   the sizes are not positive or memory ran out. */
int filtered_lrelu_channels_last(const float *x, const float *bias, float *y, int batch, int channels, int height,
                                 int width, const float *up_x, const float *up_y, int up_count, int up, int pad_x0,
                                 int pad_x1, int pad_y0, int pad_y1, const float *down_x, const float *down_y,
                                 const float *down_2d, int down_count, int down, int down_rank, float slope,
                                 float gain, float clamp, int c_begin, int c_end, int threads) {
    Plan p = {channels, height, width, up_x, up_y, up_count, up, pad_x0, pad_x1, pad_y0, pad_y1,
              down_x, down_y, down_2d, down_count, down, down_2d ? 1 : down_rank,
              {slope, gain, clamp, slope > 0.0f && slope <= 1.0f && gain > 0.0f}, 0, 0, 0, 0, 0};
    p.up_width = width * up + pad_x0 + pad_x1 - up_count + 1;
    p.up_height = height * up + pad_y0 + pad_y1 - up_count + 1;
    p.out_width = filtered_lrelu_out_size(width, up, pad_x0, pad_x1, up_count, down, down_count);
    p.out_height = filtered_lrelu_out_size(height, up, pad_y0, pad_y1, up_count, down, down_count);
    if (p.out_width <= 0 || p.out_height <= 0 || up < 1 || down < 1 || c_begin % CB != 0) return -1;
    /* Threads split the channels in blocks of CB: each block of a pixel must be whole 64-byte lines too. */
    p.stream_out = channels % CB == 0 && CB * sizeof(float) % 64 == 0 &&
                   output_streamed(y, (size_t)batch * p.out_height * p.out_width, channels);
    if (up_count > MAX_TAPS || down_count > MAX_TAPS || p.down_rank < 1 || p.down_rank > MAX_RANK) return -1;
    p.down_folded = filtered_lrelu_down_pass(down_x, down_y, down_2d, down_count, p.down_rank) == DOWN_FOLDED;
    const int blocks = (c_end - c_begin + CB - 1) / CB;
    int failed = 0;
    (void)threads;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        Buffers b;
        int ready = alloc_buffers(&p, &b) == 0;
        failed |= !ready;
#pragma omp for schedule(static)
        for (int task = 0; task < batch * blocks; task++) {
            if (!ready) continue;
            int n = task / blocks, c0 = c_begin + (task % blocks) * CB;
            run_block(&p, x + (size_t)n * height * width * channels, bias,
                      y + (size_t)n * p.out_height * p.out_width * channels, c0, &b);
        }
        if (ready) free_buffers(&b);
        stream_fence();
    }
    return failed ? -1 : 0;
}

/* Channels per block, for the caller's split of channels among threads. */
int filtered_lrelu_channel_block(void) { return CB; }

