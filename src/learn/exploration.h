// Exploration: turns candidates' scores (their expected rewards) into the probabilities a
// ranking policy serves them with, and samples a slate from those probabilities, logging the
// propensity of every choice so that the feedback can be used off-policy (ope.h) and for
// policy-gradient learning (ppo.h). Pure functions; no engine state.
//
// Policies, for n candidates with scores s_1..s_n:
//   kSoftmax        p_i = (1 - epsilon) * exp(s_i / T) / sum_j exp(s_j / T) + epsilon / n
//   kEpsilonGreedy  p_i = (1 - epsilon) / k  for each of the k candidates tied at the maximum
//                         score (exact equality), plus epsilon / n for every candidate
//   kGreedy         p_i = 1 / k on the k tied maxima, 0 elsewhere (epsilon is ignored)
// The epsilon term is a floor: every candidate keeps probability >= epsilon / n, so logged
// propensities stay bounded away from 0 and importance weights stay bounded by n / epsilon.
// The softmax is computed on s_i - max_j s_j, so it never overflows for any finite scores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "dynspec/status.h"

namespace dynspec {

enum class ExplorationKind { kSoftmax, kEpsilonGreedy, kGreedy };

struct ExplorationOptions {
  ExplorationKind kind = ExplorationKind::kSoftmax;
  // Softmax temperature T, in the units of the scores (expected reward): a score gap of T
  // multiplies the odds by e. Must be finite and > 0 (used by kSoftmax only).
  double temperature = 0.1;
  // Uniform exploration mass, in [0, 1] (kSoftmax and kEpsilonGreedy).
  double epsilon = 0.05;
};

// InvalidArgument naming the field: "options.temperature must be finite and > 0, got 0".
Status ValidateExplorationOptions(const ExplorationOptions& options);

// Probabilities over the candidates (same order as `scores`); they sum to 1 up to rounding.
// InvalidArgument if `scores` is empty, a score is NaN/Inf ("scores[3] is not finite") or the
// options are invalid.
Result<std::vector<double>> ActionProbabilities(std::span<const double> scores,
                                                const ExplorationOptions& options);

// A slate sampled without replacement.
//   chosen[k]        the candidate index served at position k + 1
//   propensities[k]  the probability of choosing chosen[k] at step k + 1 given the choices
//                    of the earlier positions:
//                      propensities[k] = p[chosen[k]] / (1 - sum_{j<k} p[chosen[j]])
//                    For the first position this is the policy's own probability p[chosen[0]].
//                    For later positions it is a *conditional* probability, not the marginal
//                    probability that the item appears at that position (which averages over
//                    every possible prefix). The probability of the whole ordered slate is
//                    the product of the propensities. Log propensities[k] for position k + 1
//                    when the estimator or learner conditions on the items above it (e.g. a
//                    cascade model, or treating the earlier positions as part of the context);
//                    use the first-position propensity, or compute marginals, otherwise.
struct SlateChoice {
  std::vector<size_t> chosen;
  std::vector<double> propensities;
};

// Samples `slate_size` distinct candidates by sequential sampling: position 1 from
// `probabilities`, each later position from the remaining candidates with their probabilities
// renormalized. Uses one 53-bit uniform draw from `rng` per position (so a seeded
// std::mt19937_64 gives the same slate on every platform). slate_size 0 gives an empty slate.
// InvalidArgument if `probabilities` is empty, has a negative or non-finite value, does not
// sum to 1 (within 1e-6), or if slate_size exceeds the number of candidates with positive
// probability (a greedy policy can fill only as many positions as it has tied maxima).
Result<SlateChoice> SampleSlate(std::span<const double> probabilities, size_t slate_size,
                                std::mt19937_64& rng);

}  // namespace dynspec
