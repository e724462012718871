// Inner products for the vector index, with the instruction set picked at run time.
//
// hnswlib 0.6.2 chooses its distance kernels at compile time: Debian's package compiled with
// the default x86-64 flags gets 4-wide SSE multiply-adds. dynspec's default build stays
// portable (no -march=native), so the index brings its own kernels and selects one when the
// process starts: AVX2 with FMA where the CPU has both, SSE2 otherwise. Every search, insert
// and exact scan of one process uses the same kernel, so similarities are consistent within
// a process; across machines the last bits may differ (FMA rounds once per multiply-add).
//
// Float16 storage (IndexOptions::vector_storage) keeps vectors as IEEE binary16 and converts
// on the fly (F16C where available).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dynspec {

// Sum of a[i] * b[i] over n floats.
float DotF32(const float* a, const float* b, size_t n);
// The same over n binary16 values each.
float DotF16(const uint16_t* a, const uint16_t* b, size_t n);

// Nearest binary16 (round to nearest even; overflow to infinity, which callers exclude by
// storing only unit vectors) and back.
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
void FloatsToHalves(std::span<const float> in, uint16_t* out);
void HalvesToFloats(const uint16_t* in, std::span<float> out);

// The kernel this process selected: "avx2+fma" or "sse2" (benchmarks print it).
const char* DotKernelName();

}  // namespace dynspec
