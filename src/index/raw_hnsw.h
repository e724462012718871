// RawHnsw: plain hnswlib with no dynspec logic, for benchmarks that measure the engine
// against the raw library in the same run.
//
// Why it lives in the index layer: Debian's hnswlib 0.6.2 headers define non-inline
// functions, so exactly one translation unit of a program may include them
// (src/index/partition.cc). Benchmarks reach hnswlib through this wrapper instead.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace dynspec {

class RawHnsw {
 public:
  // kHnswlib: hnswlib's InnerProductSpace as packaged (its SSE kernels, chosen at compile
  // time). kDynspec: the kernels partitions use (dot_kernel.h), so a comparison isolates
  // what the engine adds around the same graph code.
  enum class Kernel { kHnswlib, kDynspec };
  // Inner-product space of `dim`, room for `capacity` points, graph degree `m`.
  RawHnsw(int dim, size_t capacity, int m, int ef_construction, Kernel kernel = Kernel::kDynspec);
  ~RawHnsw();
  // hnswlib addPoint. Safe to call from several threads at once for distinct labels, once the
  // first point is in (hnswlib's own rule); not concurrently with Search.
  void Add(const float* vector, uint64_t label);
  void SetEf(int ef);
  // hnswlib searchKnn; labels nearest first.
  std::vector<uint64_t> Search(const float* query, size_t k) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynspec
