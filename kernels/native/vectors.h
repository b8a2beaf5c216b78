/* What the compiled kernels share: the CPU's vector of floats (GCC's vector extensions, so the same source builds
   for AVX-512, AVX2 or SSE by -march=native), unaligned loads and stores, a lane-wise choice, and the flag that
   tells the caller whether the library was built with OpenMP. */
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

static inline vec_t load(const float *p) { return *(const uvec_t *)p; }
static inline void store(float *p, vec_t v) { *(uvec_t *)p = v; }

/* The last channels (fewer than a vector) go through a vector padded with zeros. */
static inline vec_t load_part(const float *p, int n) {
    vec_t v = {0};
    memcpy(&v, p, sizeof(float) * n);
    return v;
}
static inline void store_part(float *p, vec_t v, int n) { memcpy(p, &v, sizeof(float) * n); }

/* Lane by lane: if_true where mask is set (a comparison's result), else if_false. NaNs compare false. */
static inline vec_t choose(ivec_t mask, vec_t if_true, vec_t if_false) {
    return (vec_t)(((ivec_t)if_true & mask) | ((ivec_t)if_false & ~mask));
}

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
