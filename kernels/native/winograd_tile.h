/* The two transforms of Winograd's F(TILE x TILE, 3x3), included once per tile size by winograd.c with TILE, SPAN
   (= TILE + 2), NAME(x) (the function name for this size) and NAME(input_rows), NAME(output_rows) (one axis of each
   transform) defined. */
/* x: [batch, height, width, channels] (channels-last); in_scale: [batch, channels] or NULL. The input is read as
   if padded by `padding` zeros before and as many as the last tiles need after. v: [SPAN^2, batch * tiles_y *
   tiles_x, channels]. Tile rows [row_begin, row_end) of all samples (row r = sample r / tiles_y, tile row r % tiles_y),
   spread over `threads` OpenMP threads where the library has OpenMP. */
void NAME(winograd_input)(const float *x, int batch, int height, int width, int channels, const float *in_scale,
                    int padding, int tiles_y, int tiles_x, float *v, int row_begin, int row_end, int threads) {
    const size_t plane = (size_t)batch * tiles_y * tiles_x * channels;   /* one of the 36 matrices */
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int row = row_begin; row < row_end; row++) {
        int n = row / tiles_y, ty = row % tiles_y;
        const float *xs = x + (size_t)n * height * width * channels;
        const float *scale = in_scale ? in_scale + (size_t)n * channels : NULL;
        for (int tx = 0; tx < tiles_x; tx++) {
            size_t tile = ((size_t)n * tiles_y + ty) * tiles_x + tx;
            int y0 = ty * TILE - padding, x0 = tx * TILE - padding;
            for (int c = 0; c < channels; c += LANES) {
                int lanes = channels - c < LANES ? channels - c : LANES;
                vec_t s = {0};
                if (scale) s = lanes == LANES ? load(scale + c) : load_part(scale + c, lanes);
                vec_t d[SPAN][SPAN], t[SPAN][SPAN];
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
                        float *dst = v + (size_t)(i * SPAN + j) * plane + tile * channels + c;
                        if (lanes == LANES)
                            store(dst, r[j]);
                        else
                            store_part(dst, r[j], lanes);
                    }
                }
            }
        }
    }
}

/* m: the SPAN^2 products, each [batch * tiles_y * tiles_x, channels]. y: [batch, out_h * shuffle, out_w * shuffle,
   channels / shuffle^2] (channels-last): y = act(A^T m A * out_scale + bias + noise * noise_gain), act = leaky ReLU
   of slope `slope` (slope < 0: none) then clamp (clamp < 0: none). With shuffle > 1 (an upsampling layer's
   polyphase kernels) the product channels are phase-major, channel phase * out + o with phase = py * shuffle + px,
   and output (Y, X) of the convolution's out_h x out_w grid goes to pixel (Y * shuffle + py, X * shuffle + px) of
   channel o: the pixel shuffle happens in the same pass. out_scale [batch, out], bias [out], noise [..,
   out_h * shuffle, out_w * shuffle] with `noise_batch_stride` floats between samples (0: one map for all): each
   optional (NULL). Tile rows as above. */
void NAME(winograd_output)(const float *const *m, int batch, int tiles_y, int tiles_x, int channels, int out_h, int out_w,
                     int shuffle, const float *out_scale, const float *bias, const float *noise,
                     ptrdiff_t noise_batch_stride, float noise_gain, float slope, float clamp, float *y, int row_begin,
                     int row_end, int threads) {
    const int phases = shuffle * shuffle, out_channels = channels / phases;
    (void)batch;
    const int wide = out_w * shuffle;   /* the output's width */
    const vec_t zero = {0}, high = zero + clamp, low = zero - clamp;
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int row = row_begin; row < row_end; row++) {
        int n = row / tiles_y, ty = row % tiles_y;
        float *ys = y + (size_t)n * out_h * shuffle * wide * out_channels;
        const float *scale = out_scale ? out_scale + (size_t)n * out_channels : NULL;
        const float *noise_map = noise ? noise + (ptrdiff_t)n * noise_batch_stride : NULL;
        for (int tx = 0; tx < tiles_x; tx++) {
            size_t tile = ((size_t)n * tiles_y + ty) * tiles_x + tx;
            int y0 = ty * TILE, x0 = tx * TILE;
            int rows = out_h - y0 < TILE ? out_h - y0 : TILE, cols = out_w - x0 < TILE ? out_w - x0 : TILE;
            for (int phase = 0; phase < phases; phase++) {
                int py = phase / shuffle, px = phase % shuffle;
                for (int oc = 0; oc < out_channels; oc += LANES) {
                    int lanes = out_channels - oc < LANES ? out_channels - oc : LANES;
                    int c = phase * out_channels + oc;
                    vec_t t[SPAN][TILE], o[TILE][TILE];
                    for (int i = 0; i < SPAN; i++) {
                        vec_t row_m[SPAN];
                        for (int j = 0; j < SPAN; j++) {
                            const float *p = m[i * SPAN + j] + tile * channels + c;
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
                            if (lanes == LANES)
                                store(dst, value);
                            else
                                store_part(dst, value, lanes);
                        }
                    }
                }
            }
        }
    }
}

