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

namespace {

// n / (n + evidence_half): how far a model's own evidence lets it be trusted.
double Confidence(const BlendOptions& o, double evidence) {
  return evidence > 0 ? evidence / (evidence + o.evidence_half) : 0.0;
}

}  // namespace

double NeighbourBlendWeight(const BlendOptions& o, const BlendCandidate& c) {
  if (c.similarity < o.min_similarity) return 0;
  return std::exp((c.similarity - 1.0) / o.similarity_temperature) * Confidence(o, c.evidence);
}

double ClusterPriorBlendWeight(const BlendOptions& o, double cluster_evidence) {
  return o.cluster_prior_weight * Confidence(o, cluster_evidence);
}

BlendWeights ComputeBlendWeights(const BlendOptions& o, bool has_self, double self_evidence,
                                 std::span<const BlendCandidate> neighbours,
                                 double cluster_evidence) {
  BlendWeights w;
  w.neighbours.assign(neighbours.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < neighbours.size(); ++i) {
    w.neighbours[i] = NeighbourBlendWeight(o, neighbours[i]);
    total += w.neighbours[i];
  }
  w.cluster_prior = ClusterPriorBlendWeight(o, cluster_evidence);
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
