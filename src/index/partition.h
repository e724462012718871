// Partition: the vector index of the items served in one cluster.
//
// Vectors are unit length and similarity is the inner product (= cosine). Labels are the
// engine's dense item ids. Small partitions are searched exactly by a flat scan; once a
// partition grows past IndexOptions::exact_search_max_items it builds an HNSW graph
// (hnswlib) and searches it approximately.
//
// Thread safety: all methods may be called concurrently; searches share a lock, writes
// take it exclusively.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"

namespace dynspec {

struct Neighbour {
  uint64_t label = 0;
  float similarity = 0;  // inner product with the query
};

class Partition {
 public:
  virtual ~Partition() = default;
  // Adds a new label; AlreadyExists if present. Wrong dimension or non-finite values are
  // InvalidArgument. The vector is stored as given (the caller normalizes).
  virtual Status Add(uint64_t label, std::span<const float> vector) = 0;
  // Replaces the vector of an existing label; NotFound if absent.
  virtual Status Update(uint64_t label, std::span<const float> vector) = 0;
  virtual Status Remove(uint64_t label) = 0;
  virtual bool Contains(uint64_t label) const = 0;
  // Up to k labels by decreasing similarity. Wrong dimension is InvalidArgument.
  virtual Result<std::vector<Neighbour>> Search(std::span<const float> query, size_t k) const = 0;
  virtual size_t size() const = 0;
  virtual int dim() const = 0;
};

std::unique_ptr<Partition> NewPartition(int dim, const IndexOptions& options);

}  // namespace dynspec
