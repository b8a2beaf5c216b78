/* A 1x1 convolution to a few output channels (StyleGAN2's ToRGB: 3) from a channels-last input to the plain
   layout, for the float32 CPU inference path: y[n][k][p] = clamp(bias[k] + sum_c x[n][p][c] * w[n][k][c]).

   The layer reads every activation once and writes only 3 numbers a pixel, so it should run at memory speed;
   oneDNN's 1x1 convolution and MKL's product with 3 columns ran it at 6-8 GB/s (config F's 1024 px ToRGB: 14-16 ms
   for a 128 MB input). Here LANES pixels at a time: each pixel's products summed along its channels into one
   vector, then the LANES vectors reduced to one vector of LANES sums (a tree of two-source permutes and adds),
   which is LANES consecutive outputs of the plain layout. */
#include <stddef.h>
#include <string.h>

#include "vectors.h"

#define MOST_OUTPUTS 4       /* output channels (ToRGB: 3, or 1 for a grey image, 4 with alpha) */

/* The permutes of the reduction tree: level j (j = 0 first) combines pairs of vectors whose lanes hold groups of
   g = LANES >> j partial sums a pixel into vectors of groups of g / 2: lane i of the result takes group i / (g/2)
   from the first vector (the first LANES / g groups) or the second, `low` its first half, `high` its second. */
typedef struct {
    ivec_t low[8], high[8];
    int levels;
} Tree;

static Tree reduction_tree(void) {
    Tree tree;
    tree.levels = 0;
    for (int g = LANES; g > 1; g /= 2, tree.levels++) {
        int half = g / 2, groups = LANES / g;
        for (int i = 0; i < LANES; i++) {
            int group = i / half, within = i % half;
            int source = group < groups ? 0 : LANES;      /* first vector's lanes, or the second's */
            int index = source + (group % groups) * g + within;
            tree.low[tree.levels][i] = index;
            tree.high[tree.levels][i] = index + half;
        }
    }
    return tree;
}

/* v[0..LANES) (pixel p's partial sums in v[p]) -> one vector whose lane p is the sum of v[p]'s lanes. */
static inline vec_t reduce(vec_t v[LANES], const Tree *tree) {
    int count = LANES;
    for (int level = 0; level < tree->levels; level++, count /= 2)
        for (int j = 0; j < count / 2; j++)
            v[j] = __builtin_shuffle(v[2 * j], v[2 * j + 1], tree->low[level]) +
                   __builtin_shuffle(v[2 * j], v[2 * j + 1], tree->high[level]);
    return v[0];
}

/* x: [batch, pixels, channels] (channels-last); w: [batch, outputs, channels]; bias: [outputs] or NULL; clamp < 0:
   none; y: [batch, outputs, pixels]. Pixel blocks of LANES [block_begin, block_end) of every sample, spread over
   `threads` OpenMP threads where the library has OpenMP. Returns 0, or -1 when the sizes do not fit. */
int few_outputs(const float *x, int batch, ptrdiff_t pixels, int channels, const float *w, int outputs,
                const float *bias, float clamp, float *y, ptrdiff_t block_begin, ptrdiff_t block_end, int threads) {
    if (outputs < 1 || outputs > MOST_OUTPUTS || channels < 1) return -1;
    const Tree tree = reduction_tree();
    const vec_t zero = {0}, high = zero + clamp, low = zero - clamp;
    (void)threads;
    for (int n = 0; n < batch; n++) {
        const float *xs = x + (size_t)n * pixels * channels;
        const float *ws = w + (size_t)n * outputs * channels;
        float *ys = y + (size_t)n * outputs * pixels;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (ptrdiff_t b = block_begin; b < block_end; b++) {
            ptrdiff_t p0 = b * LANES;
            if (p0 >= pixels) continue;
            int count = pixels - p0 < LANES ? (int)(pixels - p0) : LANES;
            const int whole = channels / LANES * LANES;
            for (int k = 0; k < outputs; k++) {
                const float *wk = ws + (size_t)k * channels;
                vec_t sums[LANES];
                /* Pixel by pixel along its channels (a run of whole vectors, then the last part): each pixel's
                   vector of partial sums is written once, so the LANES of them stay in registers. */
#pragma GCC unroll 16
                for (int p = 0; p < LANES; p++) {
                    vec_t sum = zero;
                    if (p < count) {
                        const float *px = xs + (size_t)(p0 + p) * channels;
                        for (int c = 0; c < whole; c += LANES) sum += load(px + c) * load(wk + c);
                        if (whole < channels)
                            sum += load_part(px + whole, channels - whole) * load_part(wk + whole, channels - whole);
                    }
                    sums[p] = sum;
                }
                vec_t out = reduce(sums, &tree);
                if (bias) out += bias[k];
                if (clamp >= 0.0f) out = choose(out > high, high, choose(out < low, low, out));   /* NaN stays NaN */
                float *dst = ys + (size_t)k * pixels + p0;
                if (count == LANES)
                    store(dst, out);
                else
                    store_part(dst, out, count);
            }
        }
    }
    return 0;
}

/* For the caller: the pixels a block holds. */
int few_outputs_lanes(void) { return LANES; }
