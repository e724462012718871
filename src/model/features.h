// Context encoding: turns a request Context into the sparse feature vector every head's
// weights are dotted with. Layout of the F = 1 + dense_dim + sparse_dim coordinates:
//   [0] bias (always 1) | [1, 1+dense_dim) dense features | then sparse_dim hashed slots.
// Sparse names are hashed with a sign (the signed hashing trick), so collisions cancel in
// expectation instead of adding up.
#pragma once

#include <cstdint>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec {

struct FeatureVector {
  std::vector<uint32_t> index;
  std::vector<float> value;
  size_t size() const { return index.size(); }
};

class FeatureEncoder {
 public:
  FeatureEncoder(const ModelOptions& model, const LimitOptions& limits);
  int width() const { return width_; }
  // InvalidArgument for a dense vector of the wrong length, NaN/Inf values, empty sparse
  // names or too many sparse features; the message names the field.
  Result<FeatureVector> Encode(const Context& context) const;

 private:
  int dense_dim_;
  int sparse_dim_;
  int width_;
  size_t max_sparse_;
};

}  // namespace dynspec
