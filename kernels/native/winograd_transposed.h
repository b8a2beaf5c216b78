/* Winograd's algorithm for the transposed convolution of StyleGAN2's upsampling layers (3x3 kernel, stride 2),
   included once by winograd.c (which holds block_product, BLOCK_MULTIPLE and LINE_FLOATS); kernels/winograd.py
   holds the same matrices and the kernel transform.

   Along one axis the transposed convolution z[2u + k] += x[u] W[k] gives even outputs z[2v] = W[2] x[v - 1] +
   W[0] x[v], a 2-tap filter, and odd outputs z[2v + 1] = W[1] x[v], one tap. A tile of 4 input positions v0..v0+3
   reads the 5 samples d = x[v0 - 1 .. v0 + 3] and writes the 8 outputs z[2 v0 .. 2 v0 + 7]: the even four by
   Winograd's F(4, 2) (points 0, 1, -1, 2 and infinity: 5 products for 4 outputs), the odd four directly (4 products,
   from d[1..4]). So an axis has 9 transformed values (UP_POINTS) and a 2-D tile 81, for 64 outputs; the direct
   transposed convolution multiplies 9 taps per input position, 144 for the tile's 16: 1.78x the products.

   The 4 odd values of an axis share one kernel value (W[1]), so the 81 values of a tile need only 6 x 6 = 36
   transformed kernels: the value at (a, b) multiplies kernel up_kernel(kernel_row(a), kernel_row(b)). Each of the
   36 products therefore takes `multiplicity` rows per tile (1, 4 or 16), and its matrix holds a tile's rows
   together: row t * multiplicity + sub. The caller lays the 36 matrices out one after another (`up_starts`). */

#define UP_SPAN 5          /* input samples per tile side */
#define UP_POINTS 9        /* transformed values per axis: 5 (F(4, 2)) and 4 (the odd outputs' tap) */
#define UP_OUT 8           /* outputs per tile side */
#define UP_ROWS 6          /* distinct kernel values per axis: F(4, 2)'s 5 and the odd tap */
#define UP_VALUES (UP_POINTS * UP_POINTS)
#define UP_KERNELS (UP_ROWS * UP_ROWS)

static inline int up_kernel_row(int a) { return a < 5 ? a : 5; }
/* for a value index (0-8) or a kernel row (0-5): the odd values, which share kernel row 5, are 4 */
static inline int up_multiplicity(int a) { return a < 5 ? 1 : 4; }
static inline int up_sub(int a) { return a < 5 ? 0 : a - 5; }

/* r = the 9 transformed values of 5 samples along one axis: F(4, 2)'s B^T d (its rows scaled to whole numbers,
   the kernel transform takes the factors), then d[1..4] for the odd outputs. */
static inline void up_input_rows(const vec_t d[UP_SPAN], vec_t r[UP_POINTS]) {
    r[0] = 2.0f * (d[0] - d[2]) + d[3] - d[1];
    r[1] = 2.0f * d[1] + d[2] - d[3];
    r[2] = 3.0f * d[2] - 2.0f * d[1] - d[3];
    r[3] = d[3] - d[1];
    r[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    r[5] = d[1];
    r[6] = d[2];
    r[7] = d[3];
    r[8] = d[4];
}

/* o = the 8 outputs of one axis from its 9 products: F(4, 2)'s A^T m[0..4] at the even outputs, m[5..8] at the
   odd ones. */
static inline void up_output_rows(const vec_t m[UP_POINTS], vec_t o[UP_OUT]) {
    vec_t a = m[1] + m[2], b = m[1] - m[2];
    o[0] = m[0] + a + m[3];
    o[2] = b + 2.0f * m[3];
    o[4] = a + 4.0f * m[3];
    o[6] = b + 8.0f * m[3] + m[4];
    o[1] = m[5];
    o[3] = m[6];
    o[5] = m[7];
    o[7] = m[8];
}

/* The 36 kernels, and their products' matrices, in the order of their rows per tile: the 25 of F(4, 2) on both
   axes (one row a tile), the 5 with the odd tap along the columns and the 5 with it along the rows (4 rows), the
   odd taps' one (16 rows). Each class's matrices then lie one after another and are multiplied in one batched
   product. ka, kb: the kernel rows (0-5) of the value's two axes. */
static inline int up_kernel(int ka, int kb) {
    if (ka < 5 && kb < 5) return ka * 5 + kb;
    if (ka < 5) return 25 + ka;
    if (kb < 5) return 30 + kb;
    return 35;
}
static inline int up_kernel_multiplicity(int q) { return q < 25 ? 1 : q < 35 ? 4 : 16; }

/* The starts of 36 matrices laid out one after another in `buffer`: kernel q's holds tiles * multiplicity rows of
   `width` floats, and `gap` floats lie between matrices. */
static void up_starts(float *buffer, size_t tiles, int width, size_t gap, float *starts[UP_KERNELS]) {
    for (int q = 0; q < UP_KERNELS; q++) {
        starts[q] = buffer;
        buffer += tiles * up_kernel_multiplicity(q) * width + gap;
    }
}

/* Where value p = a * 9 + b of tile t is in those matrices: base[p] + t * step[p]. */
static void up_values(float *const starts[UP_KERNELS], int width, float *base[UP_VALUES], size_t step[UP_VALUES]) {
    for (int a = 0; a < UP_POINTS; a++)
        for (int b = 0; b < UP_POINTS; b++) {
            int p = a * UP_POINTS + b, mb = up_multiplicity(b);
            base[p] = starts[up_kernel(up_kernel_row(a), up_kernel_row(b))] + (size_t)(up_sub(a) * mb + up_sub(b)) * width;
            step[p] = (size_t)up_multiplicity(a) * mb * width;
        }
}

/* One tile's input transform: the 5 x 5 samples from (y0, x0) of one sample xs [height, width, channels] (zeros
   outside it), each channel scaled by scale [channels] (or not: NULL), carried to the 81 values; value p goes to
   base[p] + t * step[p], channels contiguous. */
static inline void up_input_tile(const float *xs, int height, int width, int channels, const float *scale, int y0,
                                 int x0, float *const *base, const size_t *step, size_t t) {
    const int inside = y0 >= 0 && x0 >= 0 && y0 + UP_SPAN <= height && x0 + UP_SPAN <= width;
    for (int c = 0; c < channels; c += LANES) {
        int lanes = channels - c < LANES ? channels - c : LANES;
        vec_t s = {0};
        if (scale) s = lanes == LANES ? load(scale + c) : load_part(scale + c, lanes);
        vec_t d[UP_SPAN][UP_SPAN], rows[UP_POINTS][UP_SPAN];
        for (int i = 0; i < UP_SPAN; i++) {
            int yy = y0 + i;
            for (int j = 0; j < UP_SPAN; j++) {
                int xx = x0 + j;
                vec_t value = {0};
                if (inside || (yy >= 0 && yy < height && xx >= 0 && xx < width)) {
                    const float *p = xs + ((size_t)yy * width + xx) * channels + c;
                    value = lanes == LANES ? load(p) : load_part(p, lanes);
                    if (scale) value *= s;
                }
                d[i][j] = value;
            }
        }
        for (int j = 0; j < UP_SPAN; j++) {        /* along the columns */
            vec_t column[UP_SPAN], r[UP_POINTS];
            for (int i = 0; i < UP_SPAN; i++) column[i] = d[i][j];
            up_input_rows(column, r);
            for (int a = 0; a < UP_POINTS; a++) rows[a][j] = r[a];
        }
        for (int a = 0; a < UP_POINTS; a++) {      /* along the rows */
            vec_t r[UP_POINTS];
            up_input_rows(rows[a], r);
            for (int b = 0; b < UP_POINTS; b++) {
                int p = a * UP_POINTS + b;
                float *out = base[p] + t * step[p] + c;
                if (lanes == LANES)
                    store(out, r[b]);
                else
                    store_part(out, r[b], lanes);
            }
        }
    }
}

/* One tile's output transform: the products of tile t at base[p] + t * step[p] (channels contiguous) carried to
   its rows x cols outputs (at most 8 x 8), scaled by scale [out_channels] (or not: NULL), written to zt (the
   tile's first output in a channels-last image whose rows are `wide` pixels); past the cache where `streamed`
   (output_streamed in vectors.h). */
static inline void up_output_tile(const float *const *base, const size_t *step, size_t t, int out_channels, int rows,
                                  int cols, const float *scale, float *zt, int wide, int streamed) {
    for (int oc = 0; oc < out_channels; oc += LANES) {
        int lanes = out_channels - oc < LANES ? out_channels - oc : LANES;
        vec_t columns[UP_POINTS][UP_OUT], o[UP_OUT][UP_OUT];
        for (int a = 0; a < UP_POINTS; a++) {      /* along the rows */
            vec_t m[UP_POINTS];
            for (int b = 0; b < UP_POINTS; b++) {
                const float *p = base[a * UP_POINTS + b] + t * step[a * UP_POINTS + b] + oc;
                m[b] = lanes == LANES ? load(p) : load_part(p, lanes);
            }
            up_output_rows(m, columns[a]);
        }
        for (int j = 0; j < UP_OUT; j++) {         /* along the columns */
            vec_t m[UP_POINTS], r[UP_OUT];
            for (int a = 0; a < UP_POINTS; a++) m[a] = columns[a][j];
            up_output_rows(m, r);
            for (int i = 0; i < UP_OUT; i++) o[i][j] = r[i];
        }
        vec_t s = (vec_t){0} + 1.0f;
        if (scale) s = lanes == LANES ? load(scale + oc) : load_part(scale + oc, lanes);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                float *dst = zt + ((size_t)i * wide + j) * out_channels + oc;
                if (streamed)
                    stream(dst, o[i][j] * s);
                else if (lanes == LANES)
                    store(dst, o[i][j] * s);
                else
                    store_part(dst, o[i][j] * s, lanes);
            }
    }
}

/* The tile grid: tile (ty, tx) of sample n reads x from (4 ty - 1, 4 tx - 1) and writes z from (8 ty, 8 tx). x:
   [batch, height, width, in_channels] channels-last; z: [batch, z_h, z_w, out_channels], z_h = 2 height + 1 (the
   whole transposed convolution, no padding). */

/* The separate passes' input transform: every tile of tile rows [row_begin, row_end) (row = n * tiles_y + ty)
   into v, 36 matrices [tiles * multiplicity, channels] one after another (no gap), tiles = batch * tiles_y *
   tiles_x. */
void winograd_up_input(const float *x, int batch, int height, int width, int channels, const float *in_scale,
                       int tiles_y, int tiles_x, float *v, int row_begin, int row_end, int threads) {
    float *starts[UP_KERNELS], *base[UP_VALUES];
    size_t step[UP_VALUES];
    up_starts(v, (size_t)batch * tiles_y * tiles_x, channels, 0, starts);
    up_values(starts, channels, base, step);
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int row = row_begin; row < row_end; row++) {
        int n = row / tiles_y, ty = row % tiles_y;
        const float *xs = x + (size_t)n * height * width * channels;
        const float *scale = in_scale ? in_scale + (size_t)n * channels : NULL;
        for (int tx = 0; tx < tiles_x; tx++)
            up_input_tile(xs, height, width, channels, scale, 4 * ty - 1, 4 * tx - 1, base, step,
                          ((size_t)n * tiles_y + ty) * tiles_x + tx);
    }
}

/* The separate passes' output transform: m[q], the 36 products [tiles * multiplicity, m_width] (m_width >=
   out_channels: rows padded to whole vectors where the products were); out_scale [batch, out_channels] or NULL.
   Tile rows as above. */
void winograd_up_output(float *const *m, int batch, int tiles_y, int tiles_x, int out_channels, int m_width, int z_h,
                        int z_w, const float *out_scale, float *z, int row_begin, int row_end, int threads) {
    float *base[UP_VALUES];
    size_t step[UP_VALUES];
    up_values(m, m_width, base, step);
    const int streamed = output_streamed(z, (size_t)batch * z_h * z_w, out_channels);
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int row = row_begin; row < row_end; row++) {
        int n = row / tiles_y, ty = row % tiles_y;
        float *zs = z + (size_t)n * z_h * z_w * out_channels;
        const float *scale = out_scale ? out_scale + (size_t)n * out_channels : NULL;
        for (int tx = 0; tx < tiles_x; tx++) {
            int y0 = UP_OUT * ty, x0 = UP_OUT * tx;
            up_output_tile((const float *const *)base, step, ((size_t)n * tiles_y + ty) * tiles_x + tx, out_channels,
                           min_int(z_h - y0, UP_OUT), min_int(z_w - x0, UP_OUT), scale,
                           zs + ((size_t)y0 * z_w + x0) * out_channels, z_w, streamed);
        }
        if (streamed) stream_fence();
    }
}

/* The whole transposed convolution a few tiles at a time, as winograd_fused does for the 3x3 layers: a block's
   input transform into the thread's own 36 matrices, its 36 products with u [36, in_channels, padded] (the
   kernels transposed, output channels padded to whole vectors), its output transform, all in the cache. Blocks
   [block_begin, block_end) of ceil(tiles / block); block: a multiple of BLOCK_MULTIPLE. Returns 0, or 1 where a
   thread's buffers could not be allocated. */
int winograd_up_fused(const float *x, int batch, int height, int width, int in_channels, const float *in_scale,
                      int tiles_y, int tiles_x, const float *u, int out_channels, int padded, int block, int z_h,
                      int z_w, const float *out_scale, float *z, int block_begin, int block_end, int threads) {
    const size_t tiles = (size_t)batch * tiles_y * tiles_x, sample_tiles = (size_t)tiles_y * tiles_x;
    /* A cache line between matrices, as winograd_fused has between its planes. */
    const size_t v_floats = (size_t)UP_VALUES * block * in_channels + UP_KERNELS * LINE_FLOATS;
    const size_t m_floats = (size_t)UP_VALUES * block * padded + UP_KERNELS * LINE_FLOATS;
    const int streamed = output_streamed(z, (size_t)batch * z_h * z_w, out_channels);
    int failed = 0;
    (void)threads;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *v = aligned_alloc(64, round_up(sizeof(float) * v_floats, 64));
        float *m = aligned_alloc(64, round_up(sizeof(float) * m_floats, 64));
        float *v_base[UP_VALUES], *m_base[UP_VALUES], *v_start[UP_KERNELS], *m_start[UP_KERNELS];
        size_t v_step[UP_VALUES], m_step[UP_VALUES];
        int ready = v && m;
        if (!ready) {
            failed = 1;
        } else {
            /* rows past a last block's tiles are multiplied too (results unused): finite numbers */
            memset(v, 0, sizeof(float) * v_floats);
            up_starts(v, block, in_channels, LINE_FLOATS, v_start);
            up_values(v_start, in_channels, v_base, v_step);
            up_starts(m, block, padded, LINE_FLOATS, m_start);
            up_values(m_start, padded, m_base, m_step);
        }
#pragma omp for schedule(static)
        for (int blk = block_begin; blk < block_end; blk++) {
            size_t first = (size_t)blk * block;
            int count = block_tiles(first, tiles, block);
            if (!ready || count == 0) continue;
            for (int t = 0; t < count; t++) {       /* tile (ty, tx) reads x from (4 ty - 1, 4 tx - 1) */
                TilePlace at = tile_place(first + t, sample_tiles, tiles_x);
                up_input_tile(x + at.sample * height * width * in_channels, height, width, in_channels,
                              in_scale ? in_scale + at.sample * in_channels : NULL, 4 * at.row - 1, 4 * at.column - 1,
                              v_base, v_step, (size_t)t);
            }
            for (int q = 0; q < UP_KERNELS; q++) {
                int rows = count * up_kernel_multiplicity(q);
                block_product(v_start[q], rows, in_channels, u + (size_t)q * in_channels * padded, padded, m_start[q]);
            }
            for (int t = 0; t < count; t++) {       /* and writes z from (8 ty, 8 tx) */
                TilePlace at = tile_place(first + t, sample_tiles, tiles_x);
                int y0 = UP_OUT * at.row, x0 = UP_OUT * at.column;
                up_output_tile((const float *const *)m_base, m_step, (size_t)t, out_channels,
                               min_int(z_h - y0, UP_OUT), min_int(z_w - x0, UP_OUT),
                               out_scale ? out_scale + at.sample * out_channels : NULL,
                               z + ((at.sample * z_h + y0) * (size_t)z_w + x0) * out_channels, z_w, streamed);
            }
        }
        if (streamed) stream_fence();
        free(v);
        free(m);
    }
    return failed;
}
