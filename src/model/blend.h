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

// The unnormalized weights r_i and r_c of the formula above. Each depends only on its own
// model's similarity and evidence, so a model without a self part (lambda = 0) can be
// blended in one pass, each part weighted as it is read and the sum renormalized at the end
// (ParameterBlend does).
double NeighbourBlendWeight(const BlendOptions& options, const BlendCandidate& neighbour);
double ClusterPriorBlendWeight(const BlendOptions& options, double cluster_evidence);

// The parameter blend of several models, built one part at a time so that each part can be
// read under its own lock without being copied (a new item's first model blends up to k
// neighbours' models on the feedback path):
//   ParameterBlend blend(layout, eps);
//   for each part: { lock it; blend.Add(part, weight); }
//   ModelState model = std::move(blend).Finish();
// The result's weights are sum_j w_j * part_j.weights over the initialized parts with w_j > 0,
// renormalized over those (so the w_j need not sum to 1: NeighbourBlendWeight and
// ClusterPriorBlendWeight give the parameter blend of a new item); AdaGrad state, counts and
// evidence start fresh. With no usable part it is a fresh zero model.
class ParameterBlend {
 public:
  ParameterBlend(const ModelLayout& layout, double adagrad_epsilon);
  void Add(const ModelState& part, double weight);
  ModelState Finish() &&;

 private:
  const ModelLayout& layout_;
  ModelState out_;
  double total_ = 0;
};

}  // namespace dynspec
