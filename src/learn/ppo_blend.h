// PPO-clip through blended scores: the engine's candidates are scored by the expected reward
// of a *blend* of item models (model/blend.h), a non-linear function of the parameters:
//
//   o_{j,h} = f_{j,h} + sum_m b_{j,m} act_h(theta_{m,h} . x)      (blended output of head h)
//   s_j     = R(o_{j,1..H})                                       (expected reward, reward.h)
//
// where m runs over the models blended for candidate j (its own model and its neighbours,
// with blend weights b_{j,m}), act_h is sigmoid for binary heads and identity for regression
// heads, and f_{j,h} is the part of the blend that is not tuned (the cluster prior's share).
// The PPO-clip loss of ppo.h is taken at the score level (PpoScoreLoss) and its gradient
// flows to every blended model by the chain rule:
//
//   dL/dtheta_{m,h} = sum_j dL/ds_j * dR/do_{j,h} * b_{j,m} * act_h'(theta_{m,h} . x) * x
//
// dR/do is taken by central differences of R (the reward is piecewise linear in the outputs,
// with expm1 for log1p heads and caps; a step of 1e-6 is exact away from a cap's kink). Blend
// weights are held fixed during an update: they depend on similarities and evidence, not on
// the parameters being tuned. The optimizer is the lazy Adam of ppo.h.
#pragma once

#include <cstdint>
#include <vector>

#include "dynspec/status.h"
#include "learn/ppo.h"
#include "learn/reward.h"
#include "model/features.h"
#include "model/model.h"

namespace dynspec {

struct BlendedCandidate {
  std::vector<size_t> models;         // indices into the parameter list
  std::vector<double> weights;        // blend weight of each model
  std::vector<double> fixed_outputs;  // per head: the untuned part of the blended output
};

struct BlendedEvent {
  FeatureVector x;
  std::vector<BlendedCandidate> candidates;
  size_t chosen = 0;
  double logged_propensity = 1;
  double reward = 0;
  double baseline = 0;  // advantage = reward - baseline
};

// Model weights: one H*F vector per model (head-major, as ModelState::weights).
using BlendedParams = std::vector<std::vector<float>>;

// The tuned part of a candidate's blended outputs at `params`, per head:
// sum_m b_{j,m} act_h(theta_{m,h} . x) (the outputs without fixed_outputs). A caller that
// knows a candidate's whole blended output gets fixed_outputs by subtracting this.
std::vector<double> TunedOutputs(const BlendedCandidate& candidate, const FeatureVector& x,
                                 const BlendedParams& params, const ModelLayout& layout);

// Scores s_j of every candidate at `params`.
std::vector<double> BlendedScores(const BlendedEvent& event, const BlendedParams& params,
                                  const ModelLayout& layout, const RewardFunction& reward);

// The loss of one event and, when `grad` is not null, dL/dtheta added (times `scale`) into
// `grad` (same shape as params; the caller zeroes it).
PpoTerms BlendedPpoLoss(const BlendedEvent& event, const BlendedParams& params,
                        const ModelLayout& layout, const RewardFunction& reward,
                        const PpoOptions& options, double scale,
                        std::vector<std::vector<double>>* grad);

// Epochs of shuffled mini-batches with lazy Adam steps, as PpoUpdate. InvalidArgument (and
// params untouched) for invalid options, an empty buffer, or an event that names a model
// outside `params`, has the wrong number of outputs, or a propensity outside (0, 1].
Result<PpoStats> BlendedPpoUpdate(const std::vector<BlendedEvent>& buffer, BlendedParams* params,
                                  const ModelLayout& layout, const RewardFunction& reward,
                                  const PpoOptions& options, uint64_t seed);

}  // namespace dynspec
