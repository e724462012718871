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
  // Inner-product space of `dim`, room for `capacity` points, graph degree `m`.
  RawHnsw(int dim, size_t capacity, int m, int ef_construction);
  ~RawHnsw();
  void Add(const float* vector, uint64_t label);  // hnswlib addPoint
  void SetEf(int ef);
  // hnswlib searchKnn; labels nearest first.
  std::vector<uint64_t> Search(const float* query, size_t k) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynspec
