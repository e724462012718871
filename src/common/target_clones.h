// DYNSPEC_AVX2_CLONE: marks a hot distance kernel to be compiled twice, for AVX2 and for the
// baseline, with the version picked at load time (GNU ifunc) on x86-64 Linux. Twice the
// vector width of the baseline SSE2 build, and no FMA, so both versions compute
// bit-identical results. Off under sanitizers, which do not support ifunc resolvers well.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define DYNSPEC_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define DYNSPEC_AVX2_CLONE
#endif
