#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/prefetch.h"

namespace dynspec {

void InitModel(const ModelLayout& layout, double epsilon, ModelState* model) {
  model->weights.assign(layout.size(), 0.0f);
  model->sq_grad.assign(layout.size(), static_cast<float>(epsilon));
  model->head_counts.assign(layout.heads.size(), 0.0);
  model->evidence = 0;
}

bool IsInitialized(const ModelLayout& layout, const ModelState& model) {
  return model.weights.size() == layout.size() && model.sq_grad.size() == layout.size() &&
         model.head_counts.size() == layout.heads.size();
}

double HeadScore(const ModelLayout& layout, const ModelState& model, size_t head,
                 const FeatureVector& x) {
  const float* w = model.weights.data() + head * static_cast<size_t>(layout.width);
  double z = 0;
  for (size_t i = 0; i < x.size(); ++i) z += double(w[x.index[i]]) * x.value[i];
  return z;
}

double HeadOutput(HeadKind kind, double score) {
  if (kind == HeadKind::kRegression) return score;
  return 1.0 / (1.0 + std::exp(-score));
}

void PredictHeads(const ModelLayout& layout, const ModelState& model, const FeatureVector& x,
                  std::span<double> out) {
  const bool ready = IsInitialized(layout, model);
  for (size_t h = 0; h < layout.heads.size(); ++h) {
    out[h] = HeadOutput(layout.heads[h].kind, ready ? HeadScore(layout, model, h, x) : 0.0);
  }
}

void PrefetchHeadWeights(const ModelLayout& layout, const ModelState& model,
                         const FeatureVector& x) {
  if (!IsInitialized(layout, model)) return;
  const auto base = reinterpret_cast<uintptr_t>(model.weights.data());
  const size_t width = static_cast<size_t>(layout.width);
  for (size_t h = 0; h < layout.heads.size(); ++h) {
    uintptr_t last_line = UINTPTR_MAX;
    for (uint32_t i : x.index) {
      if (i >= width) continue;
      // Dense features are consecutive: one hint per cache line, not per feature.
      const uintptr_t line = (base + (h * width + i) * sizeof(float)) / kCacheLineBytes;
      if (line == last_line) continue;
      PrefetchLine(reinterpret_cast<const void*>(line * kCacheLineBytes));
      last_line = line;
    }
  }
}

void PrefetchWeights(const ModelState& model) {
  // 4 kB: a whole model at the default width (4 heads x 65 features = 1,040 bytes); the
  // hardware prefetcher carries on past it for wider models.
  constexpr size_t kMaxLines = 64;
  PrefetchRange(model.weights.data(), model.weights.size() * sizeof(float), kMaxLines);
}

Result<double> HeadTarget(const HeadSpec& head, double response) {
  if (!std::isfinite(response)) {
    return Status::InvalidArgument("responses['" + head.name + "'] is not finite");
  }
  if (head.kind == HeadKind::kBinary) {
    if (response < 0 || response > 1) {
      return Status::InvalidArgument("responses['" + head.name + "'] must be in [0, 1], got " +
                                     std::to_string(response));
    }
    return response;
  }
  if (head.log1p_target) {
    if (response < 0) {
      return Status::InvalidArgument("responses['" + head.name + "'] must be >= 0, got " +
                                     std::to_string(response));
    }
    return std::log1p(response);
  }
  return response;
}

double HeadLoss(HeadKind kind, double output, double target) {
  if (kind == HeadKind::kRegression) return 0.5 * (output - target) * (output - target);
  const double p = std::clamp(output, 1e-7, 1 - 1e-7);
  return -(target * std::log(p) + (1 - target) * std::log(1 - p));
}

double HeadScoreGradient(HeadKind kind, double score, double target) {
  return HeadOutput(kind, score) - target;
}

}  // namespace dynspec
