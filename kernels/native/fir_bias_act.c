/* A separable FIR filter with everything that follows it in a StyleGAN2 upsampling layer, as one pass over rows,
   for the float32 CPU inference path: y = clamp(lrelu(fir(x) + bias + noise * noise_gain)).

   An upsampling layer runs a stride-2 transposed convolution and then this filter ([1, 3, 3, 1] scaled by 4, with
   the padding that centres it); the eager path then adds the bias, the noise, takes the leaky ReLU and the clamp:
   two depthwise passes and four elementwise passes over the layer's largest image. Here each output row is made
   from a ring of the last few rows filtered along W, and finished while it is in cache.

   Rows are channels-last: pixel after pixel, each a run of `channels` floats. upfirdn with correlation taps
   t[0..K) and no resampling: out[j] = sum_k t[k] * in[j + k - pad0] over the samples that exist (a negative pad
   crops). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "vectors.h"

#define CHAINS 4        /* vectors of sums kept in registers per inner loop */
#define MAX_TAPS 64

/* out[e] = sum_m weights[m] * rows[m][e], e < length (floats). */
static void combine(float *restrict out, const float *const *rows, const float *weights, int count, size_t length) {
    size_t e = 0;
    for (; e + CHAINS * LANES <= length; e += CHAINS * LANES) {
        vec_t acc[CHAINS];
        for (int a = 0; a < CHAINS; a++) acc[a] = (vec_t){0};
        for (int m = 0; m < count; m++)
            for (int a = 0; a < CHAINS; a++) acc[a] += weights[m] * load(rows[m] + e + a * LANES);
        for (int a = 0; a < CHAINS; a++) store(out + e + a * LANES, acc[a]);
    }
    for (; e + LANES <= length; e += LANES) {   /* runs shorter than CHAINS vectors (few channels) */
        vec_t acc = {0};
        for (int m = 0; m < count; m++) acc += weights[m] * load(rows[m] + e);
        store(out + e, acc);
    }
    for (; e < length; e++) {
        float acc = 0.0f;
        for (int m = 0; m < count; m++) acc += weights[m] * rows[m][e];
        out[e] = acc;
    }
}

/* One row filtered along W: out[j] (a run of channels) = sum over taps of t[k] * in[j + k - pad0]. */
static void filter_row(const float *restrict in, int width, int channels, float *restrict out, int out_width,
                       const float *taps, int count, int pad0) {
    const float *rows[MAX_TAPS];
    float weights[MAX_TAPS];
    for (int j = 0; j < out_width; j++) {
        int n = 0;
        for (int k = max_int(0, pad0 - j); k < min_int(count, width + pad0 - j); k++, n++) {
            rows[n] = in + (size_t)(j + k - pad0) * channels;
            weights[n] = taps[k];
        }
        combine(out + (size_t)j * channels, rows, weights, n, (size_t)channels);
    }
}

/* Output rows [row_begin, row_end) of one sample, with this thread's ring and row. */
static void rows_of_sample(const float *xs, float *ys, int height, int width, int channels, int out_w,
                           const float *taps_x, const float *taps_y, int count, int pad_x0, int pad_y0,
                           const float *bias, const float *noise_map, float noise_gain, float slope, float clamp,
                           int streamed, int row_begin, int row_end, float *ring, float *out_row) {
    const size_t row = (size_t)out_w * channels;
    const vec_t zero = {0}, high = zero + clamp, low = zero - clamp;
    int next = -(1 << 30);   /* input rows below this one are in the ring (none yet) */
    for (int yo = row_begin; yo < row_end; yo++) {
        /* Input rows yo - pad_y0 + k, k < count, that exist. */
        int first = max_int(0, yo - pad_y0), last = min_int(height, yo - pad_y0 + count);
        for (int i = max_int(first, next); i < last; i++)
            filter_row(xs + (size_t)i * width * channels, width, channels, ring + (size_t)(i % count) * row, out_w,
                       taps_x, count, pad_x0);
        next = max_int(next, last);
        const float *rows[MAX_TAPS];
        float weights[MAX_TAPS];
        int m = 0;
        for (int i = first; i < last; i++, m++) {
            rows[m] = ring + (size_t)(i % count) * row;
            weights[m] = taps_y[i - yo + pad_y0];
        }
        combine(out_row, rows, weights, m, row);
        float *dst = ys + (size_t)yo * row;
        for (int j = 0; j < out_w; j++) {
            const float *src = out_row + (size_t)j * channels;
            float *out = dst + (size_t)j * channels;
            const float added = noise_map ? noise_map[(size_t)yo * out_w + j] * noise_gain : 0.0f;
            int c = 0;
            for (; c + LANES <= channels; c += LANES) {
                vec_t v = load(src + c) + added;
                if (bias) v += load(bias + c);
                if (slope >= 0.0f) v = choose(v < zero, v * slope, v);
                if (clamp >= 0.0f) v = choose(v > high, high, choose(v < low, low, v));
                if (streamed)
                    stream(out + c, v);
                else
                    store(out + c, v);
            }
            for (; c < channels; c++) {
                float v = src[c] + added + (bias ? bias[c] : 0.0f);
                if (slope >= 0.0f && v < 0.0f) v *= slope;
                if (clamp >= 0.0f) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
                out[c] = v;
            }
        }
    }
}

/* x: [batch, height, width, channels]; y: [batch, out_h, out_w, channels] with out_h = height + pad_y0 + pad_y1 -
   count + 1 (out_w alike). bias [channels] or NULL; noise [.., out_h, out_w] with noise_batch_stride floats between
   samples (0: one map for all) or NULL; slope < 0: no leaky ReLU; clamp < 0: none. Output rows [row_begin,
   row_end) of every sample, spread over `threads` OpenMP threads in contiguous runs (each thread refills its ring
   once per run) where the library has OpenMP. Outputs of STREAM_MIN_BYTES or more whose pixels are whole 64-byte
   lines of channels are stored past the cache (read again only by the next layer). Returns 0, or -1 when memory
   ran out or the sizes do not fit. */
int fir_bias_act(const float *x, float *y, int batch, int height, int width, int channels, const float *taps_x,
                 const float *taps_y, int count, int pad_x0, int pad_x1, int pad_y0, int pad_y1, const float *bias,
                 const float *noise, ptrdiff_t noise_batch_stride, float noise_gain, float slope, float clamp,
                 int row_begin, int row_end, int threads) {
    const int out_h = height + pad_y0 + pad_y1 - count + 1, out_w = width + pad_x0 + pad_x1 - count + 1;
    if (out_h <= 0 || out_w <= 0 || count > MAX_TAPS || count < 1) return -1;
    const size_t row = (size_t)out_w * channels;
    const int streamed = output_streamed(y, (size_t)batch * out_h * out_w, channels);
    int failed = 0;
    (void)threads;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        /* Ring of the input rows filtered along W: one output row reads `count` consecutive input rows. */
        float *ring = malloc(sizeof(float) * row * count);
        float *out_row = malloc(sizeof(float) * row);
        int ready = ring && out_row;
        failed |= !ready;
        int parts = 1, part = 0;
#ifdef _OPENMP
        parts = omp_get_num_threads();
        part = omp_get_thread_num();
#endif
        int begin = row_begin + (int)((long long)(row_end - row_begin) * part / parts);
        int end = row_begin + (int)((long long)(row_end - row_begin) * (part + 1) / parts);
        for (int n = 0; ready && n < batch; n++)
            rows_of_sample(x + (size_t)n * height * width * channels, y + (size_t)n * out_h * row, height, width,
                           channels, out_w, taps_x, taps_y, count, pad_x0, pad_y0, bias,
                           noise ? noise + (ptrdiff_t)n * noise_batch_stride : NULL, noise_gain, slope, clamp,
                           streamed, begin, end, ring, out_row);
        if (streamed) stream_fence();
        free(ring);
        free(out_row);
    }
    (void)pad_x1;
    return failed ? -1 : 0;
}

