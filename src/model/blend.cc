#include "model/blend.h"

#include <cmath>

namespace dynspec {

bool BlendWeights::empty() const {
  if (self > 0 || cluster_prior > 0) return false;
  for (double w : neighbours) {
    if (w > 0) return false;
  }
  return true;
}

BlendWeights ComputeBlendWeights(const BlendOptions& o, bool has_self, double self_evidence,
                                 std::span<const BlendCandidate> neighbours,
                                 double cluster_evidence) {
  BlendWeights w;
  w.neighbours.assign(neighbours.size(), 0.0);
  auto confidence = [&](double n) { return n > 0 ? n / (n + o.evidence_half) : 0.0; };
  double total = 0;
  for (size_t i = 0; i < neighbours.size(); ++i) {
    const auto& c = neighbours[i];
    if (c.similarity < o.min_similarity) continue;
    w.neighbours[i] =
        std::exp((c.similarity - 1.0) / o.similarity_temperature) * confidence(c.evidence);
    total += w.neighbours[i];
  }
  w.cluster_prior = o.cluster_prior_weight * confidence(cluster_evidence);
  total += w.cluster_prior;

  const double lambda =
      has_self ? (total > 0 ? self_evidence / (self_evidence + o.self_shrinkage) : 1.0) : 0.0;
  w.self = lambda;
  if (total > 0) {
    const double scale = (1.0 - lambda) / total;
    for (double& x : w.neighbours) x *= scale;
    w.cluster_prior *= scale;
  }
  return w;
}

ParameterBlend::ParameterBlend(const ModelLayout& layout, double adagrad_epsilon)
    : layout_(layout) {
  InitModel(layout, adagrad_epsilon, &out_);
}

void ParameterBlend::Add(const ModelState& part, double weight) {
  if (!(weight > 0) || !IsInitialized(layout_, part)) return;
  total_ += weight;
  const float a = static_cast<float>(weight);
  for (size_t j = 0; j < out_.weights.size(); ++j) out_.weights[j] += a * part.weights[j];
}

ModelState ParameterBlend::Finish() && {
  if (total_ > 0) {
    const float scale = static_cast<float>(1.0 / total_);
    for (float& w : out_.weights) w *= scale;
  }
  return std::move(out_);
}

}  // namespace dynspec
