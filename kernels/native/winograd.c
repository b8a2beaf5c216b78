/* The two transforms of Winograd's F(4x4, 3x3) and F(6x6, 3x3) (kernels/winograd.py) as single passes over
   memory, for the float32 CPU inference path; the matrix products between them stay with PyTorch, except in
   winograd_fused, which does all three for a few tiles at a time while they are in the cache.

   winograd_input_T reads each input tile once (channels-last, so a tile's pixel is a run of channels), scales the
   channels by the styles, and writes its SPAN^2 transformed values B^T d B into SPAN^2 matrices [tiles, channels].
   winograd_output_T reads the products of a tile, writes its T x T outputs A^T m A with everything that follows
   the convolution in StyleGAN2 applied while they are in registers: the demodulation, the bias, the noise, the
   leaky ReLU and the clamp. The eager form needs a dense [36, 36] product for the input transform and five
   passes over the output for the rest (docs/BENCHMARKS.md).

   The transforms' coefficients are written out below, one axis at a time; kernels/winograd.py holds the same
   matrices, and the tests hold both against a direct convolution. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

static inline size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

/* The fused pass's products, m[t][o] = sum_k v[t][k] u[k][o] (v [rows, k_count], u [k_count, padded], m [rows,
   padded]), in register blocks of `rows` x `vectors` accumulators: each step of k loads `vectors` of u and
   broadcasts `rows` values of v, for rows * vectors multiply-adds. Called with constants, so the compiler unrolls
   both loops and keeps the accumulators in registers. */
#if LANES == 16
#define ACCUMULATORS 24         /* of AVX-512's 32 registers; the rest hold u's vectors and v's broadcast */
#define MOST_VECTORS 4
#else
#define ACCUMULATORS 12         /* of AVX2's 16 */
#define MOST_VECTORS 2
#endif
/* Floats in a cache line (64 bytes). */
#define LINE_FLOATS 16
/* A fused block's tiles must be a multiple of this (every register block's rows). */
#define BLOCK_MULTIPLE 24

static inline __attribute__((always_inline)) void product_rows(const float *v, int k_count, const float *u,
                                                               int padded, float *m, const int rows,
                                                               const int vectors) {
    vec_t acc[ACCUMULATORS][MOST_VECTORS];
#pragma GCC unroll 24
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 4
        for (int j = 0; j < vectors; j++) acc[r][j] = (vec_t){0};
    for (int k = 0; k < k_count; k++) {
        vec_t b[MOST_VECTORS];
#pragma GCC unroll 4
        for (int j = 0; j < vectors; j++) b[j] = load(u + (size_t)k * padded + j * LANES);
#pragma GCC unroll 24
        for (int r = 0; r < rows; r++) {
            vec_t a = (vec_t){0} + v[(size_t)r * k_count + k];
#pragma GCC unroll 4
            for (int j = 0; j < vectors; j++) acc[r][j] += a * b[j];
        }
    }
#pragma GCC unroll 24
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 4
        for (int j = 0; j < vectors; j++) store(m + (size_t)r * padded + j * LANES, acc[r][j]);
}

/* m = v u for `count` rows, rounded up to whole register blocks (v and m hold a multiple of BLOCK_MULTIPLE rows);
   padded: a multiple of LANES. The output channels go in strips of as many vectors as the registers hold (4 with
   AVX-512), the rest in strips of 2 and 1: 23 vectors (368 channels) as 5 x 4 + 2 + 1, not 23 strips of 1. */
static void block_product(const float *v, int count, int k_count, const float *u, int padded, float *m) {
    int o = 0;
#if MOST_VECTORS >= 4
    for (; o + 4 * LANES <= padded; o += 4 * LANES)
        for (int r = 0; r < count; r += ACCUMULATORS / 4)
            product_rows(v + (size_t)r * k_count, k_count, u + o, padded, m + (size_t)r * padded + o,
                         ACCUMULATORS / 4, 4);
#endif
    for (; o + 2 * LANES <= padded; o += 2 * LANES)
        for (int r = 0; r < count; r += ACCUMULATORS / 2)
            product_rows(v + (size_t)r * k_count, k_count, u + o, padded, m + (size_t)r * padded + o,
                         ACCUMULATORS / 2, 2);
    for (; o < padded; o += LANES)
        for (int r = 0; r < count; r += ACCUMULATORS)
            product_rows(v + (size_t)r * k_count, k_count, u + o, padded, m + (size_t)r * padded + o, ACCUMULATORS,
                         1);
}

/* The fused passes number their tiles sample by sample and row by row, and take them in blocks. */
typedef struct {
    size_t sample;
    int row, column;
} TilePlace;

static inline TilePlace tile_place(size_t tile, size_t sample_tiles, int tiles_x) {
    TilePlace at = {tile / sample_tiles, (int)(tile % sample_tiles / tiles_x), (int)(tile % tiles_x)};
    return at;
}

/* The tiles of the block that starts at tile `first`: `block`, fewer for the last, 0 past the layer's tiles. */
static inline int block_tiles(size_t first, size_t tiles, int block) {
    return first >= tiles ? 0 : (int)(tiles - first < (size_t)block ? tiles - first : (size_t)block);
}

/* The separate passes' products with the fused pass's register blocks: m[p] = v[p] u[p] for `count` products,
   v [count, rows, k], u [count, k, padded] (the kernels transposed, padded to whole vectors), m [count, rows, padded].
   Measured against PyTorch's batched product and oneDNN's 1x1 convolution for Winograd's shapes (2-core AMD EPYC,
   Zen 4): 85-92 against 55-74 GMAC/s (625 x 512 x 512, 256 x 512 x 512, 484 x 256 x 256, 2209 x 181 x 128). The
   work goes in pieces of a product's PRODUCT_ROWS rows (its kernels stay in the cache while the rows pass); a last
   piece of fewer rows than a register block goes through a zero-padded copy, so nothing past a product's rows is
   read or written. Returns 0, or 1 where a thread's copy could not be allocated. */
#define PRODUCT_ROWS 96

int winograd_products(const float *v, const float *u, float *m, int count, int rows, int k, int padded, int threads) {
    const int pieces = (rows + PRODUCT_ROWS - 1) / PRODUCT_ROWS;
    int failed = 0;
    (void)threads;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *tail_v = NULL, *tail_m = NULL;
#pragma omp for schedule(static)
        for (long piece = 0; piece < (long)count * pieces; piece++) {
            int p = (int)(piece / pieces), first = (int)(piece % pieces) * PRODUCT_ROWS;
            int n = rows - first < PRODUCT_ROWS ? rows - first : PRODUCT_ROWS;
            int whole = n / BLOCK_MULTIPLE * BLOCK_MULTIPLE;    /* rows in whole register blocks of any width */
            const float *vp = v + ((size_t)p * rows + first) * k, *up = u + (size_t)p * k * padded;
            float *mp = m + ((size_t)p * rows + first) * padded;
            if (whole) block_product(vp, whole, k, up, padded, mp);
            if (whole == n) continue;
            if (!tail_v) tail_v = malloc(sizeof(float) * BLOCK_MULTIPLE * k);
            if (!tail_m) tail_m = malloc(sizeof(float) * BLOCK_MULTIPLE * padded);
            if (!tail_v || !tail_m) {
                failed = 1;
                continue;
            }
            memcpy(tail_v, vp + (size_t)whole * k, sizeof(float) * (n - whole) * k);
            memset(tail_v + (size_t)(n - whole) * k, 0, sizeof(float) * (BLOCK_MULTIPLE - (n - whole)) * k);
            block_product(tail_v, BLOCK_MULTIPLE, k, up, padded, tail_m);
            memcpy(mp + (size_t)whole * padded, tail_m, sizeof(float) * (n - whole) * padded);
        }
        free(tail_v);
        free(tail_m);
    }
    return failed;
}

/* For the caller: the number a fused block's tile count must be a multiple of, and the vector width. */
int winograd_fused_block_multiple(void) { return BLOCK_MULTIPLE; }
int winograd_lanes(void) { return LANES; }

/* F(4x4, 3x3): interpolation points 0, 1, -1, 2, -2 and infinity (Lavin and Gray's choice). */
#define TILE 4
#define SPAN 6
#define NAME(x) x##_4

/* r = B^T d for six values along one axis of a tile. */
static inline void input_rows_4(const vec_t d[SPAN], vec_t r[SPAN]) {
    r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    r[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    r[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    r[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
    r[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

/* o = A^T m for six values along one axis. */
static inline void output_rows_4(const vec_t m[SPAN], vec_t o[TILE]) {
    vec_t a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    o[0] = m[0] + a + c;
    o[1] = b + 2.0f * d;
    o[2] = a + 4.0f * c;
    o[3] = b + 8.0f * d + m[5];
}

#include "winograd_tile.h"
#undef TILE
#undef SPAN
#undef NAME

/* F(6x6, 3x3): points 0, 1, -1, 1/2, -1/2, 2, -2 and infinity: 64 products for 36 outputs (F(4x4): 36 for 16), at a
   larger rounding error (measured 1.5x F(4x4)'s on 256-512 channel layers). */
#define TILE 6
#define SPAN 8
#define NAME(x) x##_6

static inline void input_rows_6(const vec_t d[SPAN], vec_t r[SPAN]) {
    vec_t a, b;
    r[0] = d[0] - 5.25f * d[2] + 5.25f * d[4] - d[6];
    a = d[2] + d[6] - 4.25f * d[4];
    b = d[1] + d[5] - 4.25f * d[3];
    r[1] = a + b;
    r[2] = a - b;
    a = 0.25f * d[2] - 1.25f * d[4] + d[6];
    b = 0.5f * d[1] - 2.5f * d[3] + 2.0f * d[5];
    r[3] = a + b;
    r[4] = a - b;
    a = 4.0f * d[2] - 5.0f * d[4] + d[6];
    b = 2.0f * d[1] - 2.5f * d[3] + 0.5f * d[5];
    r[5] = a + b;
    r[6] = a - b;
    r[7] = -d[1] + 5.25f * d[3] - 5.25f * d[5] + d[7];
}

static inline void output_rows_6(const vec_t m[SPAN], vec_t o[TILE]) {
    vec_t a1 = m[1] + m[2], b1 = m[1] - m[2], a2 = m[3] + m[4], b2 = m[3] - m[4], a3 = m[5] + m[6], b3 = m[5] - m[6];
    o[0] = m[0] + a1 + a2 + a3;
    o[1] = b1 + 2.0f * b2 + 0.5f * b3;
    o[2] = a1 + 4.0f * a2 + 0.25f * a3;
    o[3] = b1 + 8.0f * b2 + 0.125f * b3;
    o[4] = a1 + 16.0f * a2 + 0.0625f * a3;
    o[5] = b1 + 32.0f * b2 + 0.03125f * b3 + m[7];
}

#include "winograd_tile.h"
#undef TILE
#undef SPAN
#undef NAME
#include "winograd_transposed.h"
