/* The two transforms of Winograd's F(TILE x TILE, 3x3), included once per tile size by winograd.c with TILE, SPAN
   (= TILE + 2), NAME(x) (the function name for this size) and NAME(input_rows), NAME(output_rows) (one axis of each
   transform) defined. */

/* One tile's input transform: the SPAN x SPAN pixels from (y0, x0) of one sample xs [height, width, channels]
   (zeros outside it), each channel scaled by scale [channels] (or not: NULL), carried to B^T d B; value p of the
   tile goes to dst + p * plane, channels contiguous. */
static inline void NAME(input_tile)(const float *xs, int height, int width, int channels, const float *scale, int y0,
                                    int x0, float *dst, size_t plane) {
    const int inside = y0 >= 0 && x0 >= 0 && y0 + SPAN <= height && x0 + SPAN <= width;
    for (int c = 0; c < channels; c += LANES) {
        int lanes = channels - c < LANES ? channels - c : LANES;
        vec_t s = {0};
        if (scale) s = lanes == LANES ? load(scale + c) : load_part(scale + c, lanes);
        vec_t d[SPAN][SPAN], t[SPAN][SPAN];
        if (inside && lanes == LANES) {
            /* Most tiles: every pixel there, whole vectors (no test per pixel). */
            const float *p = xs + ((size_t)y0 * width + x0) * channels + c;
            for (int i = 0; i < SPAN; i++)
                for (int j = 0; j < SPAN; j++) d[i][j] = load(p + ((size_t)i * width + j) * channels);
            if (scale)
                for (int i = 0; i < SPAN; i++)
                    for (int j = 0; j < SPAN; j++) d[i][j] *= s;
        } else {
            for (int i = 0; i < SPAN; i++) {
                int yy = y0 + i;
                for (int j = 0; j < SPAN; j++) {
                    int xx = x0 + j;
                    vec_t value = {0};
                    if (yy >= 0 && yy < height && xx >= 0 && xx < width) {
                        const float *p = xs + ((size_t)yy * width + xx) * channels + c;
                        value = lanes == LANES ? load(p) : load_part(p, lanes);
                        if (scale) value *= s;
                    }
                    d[i][j] = value;
                }
            }
        }
        /* B^T d along the rows, then B along the columns: t = B^T d B. */
        for (int j = 0; j < SPAN; j++) {
            vec_t column[SPAN], r[SPAN];
            for (int i = 0; i < SPAN; i++) column[i] = d[i][j];
            NAME(input_rows)(column, r);
            for (int i = 0; i < SPAN; i++) t[i][j] = r[i];
        }
        for (int i = 0; i < SPAN; i++) {
            vec_t r[SPAN];
            NAME(input_rows)(t[i], r);
            for (int j = 0; j < SPAN; j++) {
                float *out = dst + (size_t)(i * SPAN + j) * plane + c;
                if (lanes == LANES)
                    store(out, r[j]);
                else
                    store_part(out, r[j], lanes);
            }
        }
    }
}

/* One tile's output transform: m[p] points at product p's channels of this tile. Writes the tile's rows x cols
   outputs A^T m A of the layer's grid, from (y0, x0), into ys (one sample, [out_h * shuffle, wide, out_channels])
   with the epilogue described at winograd_output. */
static inline void NAME(output_tile)(const float *const *m, int shuffle, int out_channels, int y0, int x0, int rows,
                                     int cols, const float *scale, const float *bias, const float *noise_map, int wide,
                                     float noise_gain, float slope, float clamp, float *ys, int streamed) {
    const vec_t zero = {0}, high = zero + clamp, low = zero - clamp;
    for (int phase = 0; phase < shuffle * shuffle; phase++) {
        int py = phase / shuffle, px = phase % shuffle;
        for (int oc = 0; oc < out_channels; oc += LANES) {
            int lanes = out_channels - oc < LANES ? out_channels - oc : LANES;
            int c = phase * out_channels + oc;
            vec_t t[SPAN][TILE], o[TILE][TILE];
            for (int i = 0; i < SPAN; i++) {
                vec_t row_m[SPAN];
                for (int j = 0; j < SPAN; j++) {
                    const float *p = m[i * SPAN + j] + c;
                    row_m[j] = lanes == LANES ? load(p) : load_part(p, lanes);
                }
                NAME(output_rows)(row_m, t[i]);          /* m A along each row */
            }
            for (int j = 0; j < TILE; j++) {
                vec_t column[SPAN], r[TILE];
                for (int i = 0; i < SPAN; i++) column[i] = t[i][j];
                NAME(output_rows)(column, r);            /* A^T along the columns */
                for (int i = 0; i < TILE; i++) o[i][j] = r[i];
            }
            vec_t s = zero + 1.0f, b = zero;
            if (scale) s = lanes == LANES ? load(scale + oc) : load_part(scale + oc, lanes);
            if (bias) b = lanes == LANES ? load(bias + oc) : load_part(bias + oc, lanes);
            for (int i = 0; i < rows; i++) {
                int yy = (y0 + i) * shuffle + py;
                for (int j = 0; j < cols; j++) {
                    int xx = (x0 + j) * shuffle + px;
                    vec_t value = o[i][j] * s + b;
                    if (noise_map) value += noise_map[(size_t)yy * wide + xx] * noise_gain;
                    if (slope >= 0.0f) value = choose(value < zero, value * slope, value);
                    if (clamp >= 0.0f) value = choose(value > high, high, choose(value < low, low, value));
                    float *dst = ys + ((size_t)yy * wide + xx) * out_channels + oc;
                    if (streamed)
                        stream(dst, value);
                    else if (lanes == LANES)
                        store(dst, value);
                    else
                        store_part(dst, value, lanes);
                }
            }
        }
    }
}

/* x: [batch, height, width, channels] (channels-last); in_scale: [batch, channels] or NULL. The input is read as
   if padded by `padding` zeros before and as many as the last tiles need after. v: [SPAN^2, batch * tiles_y *
   tiles_x, channels]. Tile rows [row_begin, row_end) of all samples (row r = sample r / tiles_y, tile row r % tiles_y),
   spread over `threads` OpenMP threads where the library has OpenMP. */
void NAME(winograd_input)(const float *x, int batch, int height, int width, int channels, const float *in_scale,
                          int padding, int tiles_y, int tiles_x, float *v, int row_begin, int row_end, int threads) {
    const size_t plane = (size_t)batch * tiles_y * tiles_x * channels;   /* one of the SPAN^2 matrices */
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int row = row_begin; row < row_end; row++) {
        int n = row / tiles_y, ty = row % tiles_y;
        const float *xs = x + (size_t)n * height * width * channels;
        const float *scale = in_scale ? in_scale + (size_t)n * channels : NULL;
        for (int tx = 0; tx < tiles_x; tx++) {
            size_t tile = ((size_t)n * tiles_y + ty) * tiles_x + tx;
            NAME(input_tile)(xs, height, width, channels, scale, ty * TILE - padding, tx * TILE - padding,
                             v + tile * channels, plane);
        }
    }
}

/* m: the SPAN^2 products, each [batch * tiles_y * tiles_x, m_width] (m_width >= channels: rows padded to whole
   vectors where the products were). y: [batch, out_h * shuffle, out_w * shuffle,
   channels / shuffle^2] (channels-last): y = act(A^T m A * out_scale + bias + noise * noise_gain), act = leaky ReLU
   of slope `slope` (slope < 0: none) then clamp (clamp < 0: none). With shuffle > 1 (an upsampling layer's
   polyphase kernels) the product channels are phase-major, channel phase * out + o with phase = py * shuffle + px,
   and output (Y, X) of the convolution's out_h x out_w grid goes to pixel (Y * shuffle + py, X * shuffle + px) of
   channel o: the pixel shuffle happens in the same pass. out_scale [batch, out], bias [out], noise [..,
   out_h * shuffle, out_w * shuffle] with `noise_batch_stride` floats between samples (0: one map for all): each
   optional (NULL). Tile rows as above. Large outputs whose pixels are whole cache lines of channels are stored past
   the cache (output_streamed). */
void NAME(winograd_output)(const float *const *m, int batch, int tiles_y, int tiles_x, int channels, int m_width,
                           int out_h, int out_w, int shuffle, const float *out_scale, const float *bias, const float *noise,
                           ptrdiff_t noise_batch_stride, float noise_gain, float slope, float clamp, float *y,
                           int row_begin, int row_end, int threads) {
    const int out_channels = channels / (shuffle * shuffle), wide = out_w * shuffle;
    const int streamed = output_streamed(y, (size_t)batch * out_h * shuffle * wide, out_channels);
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int row = row_begin; row < row_end; row++) {
        int n = row / tiles_y, ty = row % tiles_y;
        float *ys = y + (size_t)n * out_h * shuffle * wide * out_channels;
        const float *scale = out_scale ? out_scale + (size_t)n * out_channels : NULL;
        const float *noise_map = noise ? noise + (ptrdiff_t)n * noise_batch_stride : NULL;
        for (int tx = 0; tx < tiles_x; tx++) {
            size_t tile = ((size_t)n * tiles_y + ty) * tiles_x + tx;
            const float *at[SPAN * SPAN];
            for (int p = 0; p < SPAN * SPAN; p++) at[p] = m[p] + tile * m_width;
            int y0 = ty * TILE, x0 = tx * TILE;
            NAME(output_tile)(at, shuffle, out_channels, y0, x0, min_int(out_h - y0, TILE), min_int(out_w - x0, TILE),
                              scale, bias, noise_map, wide, noise_gain, slope, clamp, ys, streamed);
        }
        if (streamed) stream_fence();
    }
}

/* The whole convolution in one pass, for layers whose products are cheap against the separate passes' traffic
   through memory (few channels, large images). The tiles, numbered sample by sample and row by row, go in blocks of
   `block`: a block's input transform into v [SPAN^2, block, in], its SPAN^2 products with u [SPAN^2, in, padded]
   (the kernels transposed, product channels padded to whole vectors) into m [SPAN^2, block, padded], then its output
   transform as at winograd_output; v and m stay in the cache. block: a multiple of BLOCK_MULTIPLE. Blocks
   [block_begin, block_end) of the layer's ceil(batch * tiles_y * tiles_x / block). Returns 0, or 1 where a thread's
   buffers could not be allocated. */
int NAME(winograd_fused)(const float *x, int batch, int height, int width, int in_channels, const float *in_scale,
                         int padding, int tiles_y, int tiles_x, const float *u, int channels, int padded, int block,
                         int out_h, int out_w, int shuffle, const float *out_scale, const float *bias,
                         const float *noise, ptrdiff_t noise_batch_stride, float noise_gain, float slope, float clamp,
                         float *y, int block_begin, int block_end, int threads) {
    const int out_channels = channels / (shuffle * shuffle), wide = out_w * shuffle;
    /* One cache line more than the block's rows: the SPAN^2 values of a tile, one per plane, then fall in different
       cache sets (block * channels floats is often a multiple of 4 KiB, and then all of them fell in one set:
       the input transform took twice as long on data in the cache). */
    const size_t v_plane = (size_t)block * in_channels + LINE_FLOATS, m_plane = (size_t)block * padded + LINE_FLOATS;
    const size_t tiles = (size_t)batch * tiles_y * tiles_x, sample_tiles = (size_t)tiles_y * tiles_x;
    const int streamed = output_streamed(y, (size_t)batch * out_h * shuffle * wide, out_channels);
    int failed = 0;
    (void)threads;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *v = aligned_alloc(64, round_up(sizeof(float) * SPAN * SPAN * v_plane, 64));
        float *m = aligned_alloc(64, round_up(sizeof(float) * SPAN * SPAN * m_plane, 64));
        int ready = v && m;
        if (!ready)
            failed = 1;
        else    /* the rows of a last block past its tiles are multiplied too (results unused): finite numbers */
            memset(v, 0, sizeof(float) * SPAN * SPAN * v_plane);
        /* Every thread meets the loop (OpenMP's rule for a shared loop); one without buffers does nothing. */
#pragma omp for schedule(static)
        for (int b = block_begin; b < block_end; b++) {
            size_t first = (size_t)b * block;
            int count = block_tiles(first, tiles, block);
            if (!ready || count == 0) continue;
            for (int t = 0; t < count; t++) {
                TilePlace place = tile_place(first + t, sample_tiles, tiles_x);
                size_t n = place.sample;
                int ty = place.row, tx = place.column;
                NAME(input_tile)(x + n * height * width * in_channels, height, width, in_channels,
                                 in_scale ? in_scale + n * in_channels : NULL, ty * TILE - padding,
                                 tx * TILE - padding, v + (size_t)t * in_channels, v_plane);
            }
            for (int p = 0; p < SPAN * SPAN; p++)
                block_product(v + p * v_plane, count, in_channels, u + (size_t)p * in_channels * padded, padded,
                              m + p * m_plane);
            for (int t = 0; t < count; t++) {
                TilePlace place = tile_place(first + t, sample_tiles, tiles_x);
                size_t n = place.sample;
                int ty = place.row, tx = place.column;
                const float *at[SPAN * SPAN];
                for (int p = 0; p < SPAN * SPAN; p++) at[p] = m + p * m_plane + (size_t)t * padded;
                int y0 = ty * TILE, x0 = tx * TILE;
                NAME(output_tile)(at, shuffle, out_channels, y0, x0, min_int(out_h - y0, TILE),
                                  min_int(out_w - x0, TILE), out_scale ? out_scale + n * out_channels : NULL, bias,
                                  noise ? noise + (ptrdiff_t)n * noise_batch_stride : NULL, wide, noise_gain, slope,
                                  clamp, y + n * out_h * shuffle * wide * out_channels, streamed);
            }
        }
        if (streamed) stream_fence();
        free(v);
        free(m);
    }
    return failed;
}
