// PPO-clip (Schulman et al., 2017, "Proximal Policy Optimization Algorithms") for one-step
// episodes: a context shows n candidates, the policy serves one, a reward comes back.
//
// Policy. Candidate j has a score s_j (its expected reward) and the policy is the exploration
// softmax of exploration.h with an epsilon floor:
//   q_j = exp(s_j / T) / sum_k exp(s_k / T),   pi_j = (1 - eps) q_j + eps / n.
//
// Objective for one logged event (candidate c was served with logged propensity mu, reward r,
// baseline b, advantage A = r - b):
//   rho = pi_new(c) / mu
//   L   = -min(rho A, clip(rho, 1 - clip, 1 + clip) A) - entropy_coef * H(pi_new)
//   H(pi) = -sum_j pi_j log pi_j
// The min takes the clipped branch (and the surrogate gives no gradient) exactly when
// A > 0 and rho > 1 + clip, or A < 0 and rho < 1 - clip; at the bounds themselves the
// unclipped branch is used. Gradient with respect to the scores:
//   d pi_a / d s_j = (1 - eps) / T * q_a (delta_aj - q_j)
//   d L / d s_j    = -(A / mu) d pi_c / d s_j                            (unclipped branch)
//                    + entropy_coef (1 - eps) / T * q_j (log pi_j - sum_a q_a log pi_a)
//
// Parameter shape. Parameters are blocks: `PpoParams` is one vector of doubles per model
// (in the engine: one per item model, or per head of it). Each candidate names the block it
// uses (`candidate_model[j]`) and its sparse features x_j (model/features.h), and its score is
// linear in that block: s_j = sum_i params[candidate_model[j]][x_j.index[i]] * x_j.value[i].
// Candidates may share a block; its gradient is the sum over them. The score-level functions
// (PpoScoreLoss) are exposed too, so a caller whose score is a non-linear function of its
// parameters (e.g. an expected reward through sigmoid heads) applies the chain rule itself:
// dL/dw = sum_j dL/ds_j * ds_j/dw.
//
// Optimizer. PpoUpdate uses Adam (Kingma & Ba, 2015; beta1 0.9, beta2 0.999, eps 1e-8), as the
// PPO paper and Stable Baselines3 do: the surrogate's gradient scales with 1/propensity,
// 1/temperature and the reward scale, and Adam's per-coordinate normalization makes a step
// move a parameter by about learning_rate whatever those scales are, which is what gives the
// default 3e-4 a meaning. It is the lazy (sparse) variant: a mini-batch updates only the
// coordinates that appear in its events' features, each with its own moment estimates and
// step count, so the cost of a step is proportional to the mini-batch, not to the catalog.
// The optimizer state lives for one PpoUpdate call (the engine's blocks change between
// calls). Like any Adam-based PPO, momentum keeps moving a coordinate for a few steps after
// the clip has zeroed its gradient, so ratios can pass 1 +/- clip by a few steps' worth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "dynspec/status.h"
#include "model/features.h"

namespace dynspec {

struct PpoOptions {
  // Clip range c of the probability ratio (SB3 default 0.2). Finite and > 0.
  double clip = 0.2;
  // Passes over the buffer per PpoUpdate (SB3 n_epochs default 10). >= 1.
  int epochs = 10;
  // Events per mini-batch (SB3 default 64); the last mini-batch of a pass may be smaller. >= 1.
  size_t batch_size = 64;
  // Adam step size (SB3 default 3e-4). Finite and > 0.
  double learning_rate = 3e-4;
  // Weight of the entropy bonus (SB3 ent_coef default 0). Finite and >= 0.
  double entropy_coef = 0.0;
  // Softmax temperature T and epsilon floor of the policy being learned; use the values of
  // the ExplorationOptions that serve it (exploration.h defaults). T > 0, eps in [0, 1].
  double temperature = 0.1;
  double epsilon = 0.05;
};

using PpoParams = std::vector<std::vector<double>>;

// One logged one-step episode.
struct PpoEvent {
  std::vector<FeatureVector> candidate_features;  // x_j, one per candidate
  std::vector<size_t> candidate_model;            // block of params each candidate uses
  size_t chosen = 0;                              // index of the served candidate
  double logged_propensity = 1;                   // mu: probability it was served with, (0, 1]
  double reward = 0;
  double baseline = 0;  // advantage A = reward - baseline
};

// InvalidArgument naming the first bad field ("options.clip must be finite and > 0, got 0").
Status ValidatePpoOptions(const PpoOptions& options);
// InvalidArgument naming the first bad field of `event` relative to `params`, e.g.
// "candidate_model[2] is 7, expected < 5 blocks", "candidate_features[1].index[0] is 9,
// expected < 8 (the size of block 3)", "logged_propensity is 0, expected in (0, 1]".
Status ValidatePpoEvent(const PpoEvent& event, const PpoParams& params);

// What one event contributes.
struct PpoTerms {
  double loss = 0;       // L above
  double ratio = 0;      // rho
  double pi_chosen = 0;  // pi_new(chosen)
  bool clipped = false;  // the clipped branch is active: the surrogate gives no gradient
};

// L and, when `dloss_dscores` is non-empty (size n), dL/ds_j for every candidate. Requires
// valid inputs: n >= 1 finite scores, chosen < n, mu in (0, 1], finite advantage, valid
// options (checked by assert only).
PpoTerms PpoScoreLoss(std::span<const double> scores, size_t chosen, double logged_propensity,
                      double advantage, const PpoOptions& options, std::span<double> dloss_dscores);

// s_j for every candidate of `event` (the event must be valid for `params`).
std::vector<double> PpoScores(const PpoEvent& event, const PpoParams& params);

// The loss of one event at `params`. The event must be valid (ValidatePpoEvent).
double PpoLoss(const PpoEvent& event, const PpoParams& params, const PpoOptions& options);

// dL/dparams for one event: `grad` is resized to the shape of `params` and overwritten; it is
// zero outside the blocks and coordinates the event's candidates use, and zero everywhere
// (apart from the entropy term) when the clip is active. The event must be valid.
void PpoGradient(const PpoEvent& event, const PpoParams& params, const PpoOptions& options,
                 PpoParams* grad);

struct PpoStats {
  double loss_before = 0;    // mean L over the buffer before the update
  double loss_after = 0;     // mean L over the buffer after it
  double clip_fraction = 0;  // share of the per-sample evaluations made during the update
                             // (every event once per epoch) whose clipped branch was active;
                             // unlike SB3's |rho - 1| > clip statistic, this counts exactly
                             // the samples that gave no surrogate gradient
  int updates = 0;           // optimizer steps taken (epochs * ceil(buffer / batch_size))
};

// Fisher-Yates shuffle of `order` with a multiply-shift bounded draw from `rng`: the same
// order on every platform for the same seed (std::shuffle's is implementation-defined).
void ShuffleOrder(std::vector<size_t>* order, std::mt19937_64& rng);

// Runs `epochs` passes over `buffer`; each pass shuffles the events (Fisher-Yates with a
// std::mt19937_64 seeded from `seed`, the same order on every platform) and takes one lazy
// Adam step per mini-batch on the mean loss of the mini-batch. InvalidArgument, with
// `params` untouched, for invalid options, an empty buffer, or an invalid event (the message
// names it: "buffer[12]: chosen is 4, expected < 3 candidates"), including non-finite
// parameters at the coordinates the buffer uses.
Result<PpoStats> PpoUpdate(const std::vector<PpoEvent>& buffer, PpoParams* params,
                           const PpoOptions& options, uint64_t seed);

}  // namespace dynspec
