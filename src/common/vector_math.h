// Small vector helpers shared by the layers (validation and normalization of embeddings).
#pragma once

#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "dynspec/status.h"

namespace dynspec {

inline float Dot(std::span<const float> a, std::span<const float> b) {
  float s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// InvalidArgument naming `what` if any value is NaN or infinite.
inline Status CheckFinite(std::span<const float> v, const std::string& what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return Status::InvalidArgument(what + "[" + std::to_string(i) + "] is not finite");
    }
  }
  return Status::Ok();
}

// Scales v to unit L2 norm. InvalidArgument if its norm is zero (nothing to point with).
inline Status NormalizeInPlace(std::vector<float>& v, const std::string& what) {
  double n2 = 0;
  for (float x : v) n2 += double(x) * x;
  if (!(n2 > 0) || !std::isfinite(n2)) {
    return Status::InvalidArgument(what + " has zero or non-finite norm");
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(n2));
  for (float& x : v) x *= inv;
  return Status::Ok();
}

}  // namespace dynspec
