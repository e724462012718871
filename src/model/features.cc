#include "model/features.h"

#include <cmath>
#include <string>

#include "common/hash.h"

namespace dynspec {

namespace {
// Fixed seed for context hashing: stored weights depend on it, so it never changes.
constexpr uint64_t kContextHashSeed = 0xC0FFEE5EEDULL;
}  // namespace

FeatureEncoder::FeatureEncoder(const ModelOptions& model, const LimitOptions& limits)
    : dense_dim_(model.dense_dim),
      sparse_dim_(model.sparse_dim),
      width_(1 + model.dense_dim + model.sparse_dim),
      max_sparse_(limits.max_sparse_features) {}

Result<FeatureVector> FeatureEncoder::Encode(const Context& context) const {
  FeatureVector fv;
  if (!context.dense.empty() && static_cast<int>(context.dense.size()) != dense_dim_) {
    return Status::InvalidArgument("context.dense has " + std::to_string(context.dense.size()) +
                                   " values, expected " + std::to_string(dense_dim_));
  }
  if (context.sparse.size() > max_sparse_) {
    return Status::InvalidArgument("context.sparse has " + std::to_string(context.sparse.size()) +
                                   " features, limit is " + std::to_string(max_sparse_));
  }
  if (!context.sparse.empty() && sparse_dim_ == 0) {
    return Status::InvalidArgument("context.sparse given but model.sparse_dim is 0");
  }
  fv.index.reserve(1 + context.dense.size() + context.sparse.size());
  fv.value.reserve(fv.index.capacity());
  fv.index.push_back(0);
  fv.value.push_back(1.0f);
  for (size_t i = 0; i < context.dense.size(); ++i) {
    if (!std::isfinite(context.dense[i])) {
      return Status::InvalidArgument("context.dense[" + std::to_string(i) + "] is not finite");
    }
    fv.index.push_back(static_cast<uint32_t>(1 + i));
    fv.value.push_back(context.dense[i]);
  }
  for (const auto& [name, value] : context.sparse) {
    if (name.empty()) return Status::InvalidArgument("context.sparse has an empty feature name");
    if (!std::isfinite(value)) {
      return Status::InvalidArgument("context.sparse['" + name + "'] is not finite");
    }
    const HashedSlot slot =
        SlotOf(HashBytes(name, kContextHashSeed), static_cast<uint32_t>(sparse_dim_));
    fv.index.push_back(static_cast<uint32_t>(1 + dense_dim_) + slot.index);
    fv.value.push_back(slot.sign * value);
  }
  return fv;
}

}  // namespace dynspec
