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

void PrefetchModel(const ModelState& model) {
  for (const std::vector<float>* part : {&model.weights, &model.sq_grad}) {
    const size_t bytes = part->size() * sizeof(float);
    PrefetchHead(part->data(), bytes, (bytes + kCacheLineBytes - 1) / kCacheLineBytes);
  }
  PrefetchLine(model.head_counts.data());
}

void PrefetchHeadWeights(const ModelLayout& layout, const ModelState& model,
                         const FeatureVector& x) {
  if (!IsInitialized(layout, model)) return;
  const float* w = model.weights.data();
  for (size_t h = 0; h < layout.heads.size(); ++h) {
    const float* row = w + h * static_cast<size_t>(layout.width);
    const float* last_line = nullptr;
    for (uint32_t i : x.index) {
      // Dense features are consecutive: one hint per cache line, not per feature.
      const auto* line = reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(row + i) &
                                                        ~uintptr_t{kCacheLineBytes - 1});
      if (line == last_line) continue;
      PrefetchLine(line);
      last_line = line;
    }
  }
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
