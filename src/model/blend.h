// Blending: how the models of an item's neighbours become one model specialized for it.
//
// For item x with neighbours i (similarity s_i, evidence n_i) and its cluster's shared model:
//   r_i    = exp((s_i - 1) / temperature) * n_i / (n_i + evidence_half)   (0 if s_i < min)
//   r_c    = cluster_prior_weight * n_c / (n_c + evidence_half)
//   lambda = n_x / (n_x + self_shrinkage)        (0 when x has no model of its own yet)
//   weight(self) = lambda, weight(i) = (1 - lambda) r_i / R, weight(c) = (1 - lambda) r_c / R,
//   with R = sum r_i + r_c.
// The prediction is the weighted average of the models' predictions (the seed's definition);
// the same weights average parameters when a new item's own model is first created.
// Similar, well-evidenced neighbours dominate; the item's own model takes over as its own
// evidence grows; the cluster model is the fallback when neighbours are few or weak.
#pragma once

#include <span>
#include <utility>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/types.h"
#include "model/model.h"

namespace dynspec {

struct BlendCandidate {
  double similarity = 0;
  double evidence = 0;
};

struct BlendWeights {
  double self = 0;
  std::vector<double> neighbours;  // same order as the candidates
  double cluster_prior = 0;
  // True when no model carries any weight (empty cluster, no evidence anywhere): the caller
  // predicts with an untrained model.
  bool empty() const;
};

BlendWeights ComputeBlendWeights(const BlendOptions& options, bool has_self, double self_evidence,
                                 std::span<const BlendCandidate> neighbours,
                                 double cluster_evidence);

// out.weights = sum_j w_j * parts_j.weights over initialized parts (weights renormalized
// over those); AdaGrad state, counts and evidence start fresh. Parts with zero weight are
// skipped. With no usable part, `out` is a fresh zero model.
void BlendParameters(const ModelLayout& layout, double adagrad_epsilon,
                     std::span<const std::pair<const ModelState*, double>> parts, ModelState* out);

}  // namespace dynspec
