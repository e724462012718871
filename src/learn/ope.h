// Off-policy evaluation: estimates the expected reward a target policy would have earned from
// decisions logged under another (logging) policy with known propensities. Decoupled from any
// learner: the caller computes, per logged decision, what the target policy and a reward
// model say about it.
//
// Row i: reward r_i of the logged action a_i, its logging propensity mu_i = mu(a_i | x_i), the
// target's probability pi_i = pi(a_i | x_i), and a reward model q_hat evaluated at the logged
// action (q_i = q_hat(x_i, a_i)) and averaged under the target (qbar_i = sum_a pi(a|x_i)
// q_hat(x_i, a)). With importance weights w_i = pi_i / mu_i:
//   IPS    V = mean_i w_i r_i                              (Horvitz-Thompson; unbiased)
//   SNIPS  V = sum_i w_i r_i / sum_i w_i                   (Swaminathan & Joachims, 2015;
//                                                           self-normalized, consistent)
//   DR     V = mean_i [ qbar_i + w_i (r_i - q_i) ]         (Dudik, Langford & Li, 2011;
//                                                           unbiased if the propensities
//                                                           are right, whatever q_hat is)
// Standard errors treat the rows as independent draws:
//   IPS, DR  std_error = sample standard deviation of the per-row terms / sqrt(n)
//   SNIPS    delta method for the ratio of means: with R = V and wbar = mean_i w_i,
//            std_error = sqrt( sum_i (w_i (r_i - R))^2 / (n (n - 1)) ) / wbar
//            (the first-order variance of mean(w r) / mean(w) around its limit).
// The interval is the 95% normal interval value +/- 1.959964 std_error. With n = 1 the
// standard error is undefined and reported as +infinity (interval (-inf, +inf)).
#pragma once

#include <cstddef>
#include <span>

#include "dynspec/status.h"

namespace dynspec {

struct LoggedDecision {
  double reward = 0;
  double logged_propensity = 1;    // mu(a_logged | x), in (0, 1]
  double target_probability = 0;   // pi_target(a_logged | x), in [0, 1]
  double reward_model_logged = 0;  // q_hat(x, a_logged) (DR only)
  double reward_model_target = 0;  // sum_a pi_target(a | x) q_hat(x, a) (DR only)
};

struct Estimate {
  double value = 0;
  double std_error = 0;
  double ci_low = 0, ci_high = 0;  // 95% normal interval: value -/+ 1.959964 std_error
  size_t n = 0;
};

// Each returns InvalidArgument naming the row for an empty log, a propensity that is <= 0,
// > 1 or NaN ("decisions[7].logged_propensity is 0, expected in (0, 1]"), a target
// probability outside [0, 1], or a non-finite reward (or, for DR, reward-model value).
Result<Estimate> Ips(std::span<const LoggedDecision> decisions);
// Also InvalidArgument when every importance weight is 0 (the target never takes a logged
// action, so the self-normalized ratio is undefined).
Result<Estimate> Snips(std::span<const LoggedDecision> decisions);
Result<Estimate> DoublyRobust(std::span<const LoggedDecision> decisions);

}  // namespace dynspec
