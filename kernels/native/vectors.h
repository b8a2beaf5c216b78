/* What the compiled kernels share: the CPU's vector of floats (GCC's vector extensions, so the same source builds
   for AVX-512, AVX2 or SSE by -march=native), unaligned loads and stores, stores past the cache, a lane-wise
   choice, max and min, and the flag that tells the caller whether the library was built with OpenMP. Off x86 the
   few intrinsics fall back to the plain forms. */
#ifndef STYLEGAN_EXPLORER_VECTORS_H
#define STYLEGAN_EXPLORER_VECTORS_H

#include <string.h>

#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif

typedef float vec_t __attribute__((vector_size(LANES * sizeof(float))));
typedef int ivec_t __attribute__((vector_size(LANES * sizeof(float))));
/* Unaligned loads and stores of a vector: the channel runs start anywhere in PyTorch's buffers. */
typedef float uvec_t __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));

/* Lane by lane: if_true where mask is set (a comparison's result), else if_false. NaNs compare false. */
static inline vec_t choose(ivec_t mask, vec_t if_true, vec_t if_false) {
    return (vec_t)(((ivec_t)if_true & mask) | ((ivec_t)if_false & ~mask));
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define X86_VECTORS 1
#endif

/* A store that bypasses the cache (p aligned to a whole vector): for outputs written once and read by the next
   op only after the whole pass, which then need not be read into the cache before they are written. */
static inline void stream(float *p, vec_t v) {
#if defined(X86_VECTORS) && LANES == 16
    _mm512_stream_ps(p, (__m512)v);
#elif defined(X86_VECTORS) && LANES == 8
    _mm256_stream_ps(p, (__m256)v);
#elif defined(X86_VECTORS) && defined(__SSE__)
    _mm_stream_ps(p, (__m128)v);
#else
    *(vec_t *)p = v;
#endif
}

/* Outputs at least this large are stored past the cache (when aligned): they cannot stay in it for the next op
   anyway, and a plain store first reads each line it writes. Smaller ones may still be in the cache when read. */
#define STREAM_MIN_BYTES ((size_t)8 << 20)

/* Whether a channels-last output of `pixels` pixels of `channels` floats, from y, goes past the cache: large
   (STREAM_MIN_BYTES), with pixels that are whole 64-byte lines of channels at an aligned start, so that a thread
   that writes whole pixels never shares a line with another. */
static inline int output_streamed(const float *y, size_t pixels, int channels) {
    return channels % 16 == 0 && (size_t)y % 64 == 0 && pixels * channels * sizeof(float) >= STREAM_MIN_BYTES;
}

/* Makes a thread's streamed stores visible before its work is taken as done. */
static inline void stream_fence(void) {
#if defined(X86_VECTORS) && defined(__SSE__)
    _mm_sfence();
#endif
}

/* max(a, b) and min(a, b) as the CPU's instructions give them: where either lane is a NaN, b. One instruction
   each on x86, where a comparison and a choice take two. */
static inline vec_t max_or_second(vec_t a, vec_t b) {
#if defined(X86_VECTORS) && LANES == 16
    return (vec_t)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(X86_VECTORS) && LANES == 8
    return (vec_t)_mm256_max_ps((__m256)a, (__m256)b);
#elif defined(X86_VECTORS) && defined(__SSE__)
    return (vec_t)_mm_max_ps((__m128)a, (__m128)b);
#else
    return choose(a > b, a, b);
#endif
}
static inline vec_t min_or_second(vec_t a, vec_t b) {
#if defined(X86_VECTORS) && LANES == 16
    return (vec_t)_mm512_min_ps((__m512)a, (__m512)b);
#elif defined(X86_VECTORS) && LANES == 8
    return (vec_t)_mm256_min_ps((__m256)a, (__m256)b);
#elif defined(X86_VECTORS) && defined(__SSE__)
    return (vec_t)_mm_min_ps((__m128)a, (__m128)b);
#else
    return choose(a < b, a, b);
#endif
}

static inline vec_t load(const float *p) { return *(const uvec_t *)p; }
static inline void store(float *p, vec_t v) { *(uvec_t *)p = v; }

/* The last channels (fewer than a vector) go through a vector padded with zeros. */
static inline vec_t load_part(const float *p, int n) {
    vec_t v = {0};
    memcpy(&v, p, sizeof(float) * n);
    return v;
}
static inline void store_part(float *p, vec_t v, int n) { memcpy(p, &v, sizeof(float) * n); }


static inline int min_int(int a, int b) { return a < b ? a : b; }
static inline int max_int(int a, int b) { return a > b ? a : b; }

/* 1 when built with OpenMP: the caller then hands over the whole range once, with its thread count. */
int openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

#endif
