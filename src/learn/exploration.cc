#include "learn/exploration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/format.h"

namespace dynspec {
namespace {

std::string Num(double v) { return ExactNumber(v); }

// A uniform double in [0, 1) from the top 53 bits of one draw.
double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

Status ValidateExplorationOptions(const ExplorationOptions& options) {
  switch (options.kind) {
    case ExplorationKind::kSoftmax:
    case ExplorationKind::kEpsilonGreedy:
    case ExplorationKind::kGreedy:
      break;
    default:
      return Status::InvalidArgument("options.kind is not a known exploration kind");
  }
  if (!std::isfinite(options.temperature) || options.temperature <= 0) {
    return Status::InvalidArgument("options.temperature must be finite and > 0, got " +
                                   Num(options.temperature));
  }
  if (!(options.epsilon >= 0 && options.epsilon <= 1)) {
    return Status::InvalidArgument("options.epsilon must be in [0, 1], got " +
                                   Num(options.epsilon));
  }
  return Status::Ok();
}

Result<std::vector<double>> ActionProbabilities(std::span<const double> scores,
                                                const ExplorationOptions& options) {
  DYNSPEC_RETURN_IF_ERROR(ValidateExplorationOptions(options));
  if (scores.empty()) return Status::InvalidArgument("scores is empty");
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      return Status::InvalidArgument("scores[" + std::to_string(i) + "] is not finite");
    }
  }
  const size_t n = scores.size();
  const double max = *std::max_element(scores.begin(), scores.end());
  std::vector<double> p(n, 0.0);
  if (options.kind == ExplorationKind::kSoftmax) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      p[i] = std::exp((scores[i] - max) / options.temperature);  // the maximum gives 1
      sum += p[i];
    }
    const double floor = options.epsilon / static_cast<double>(n);
    for (double& v : p) v = (1 - options.epsilon) * v / sum + floor;
    return p;
  }
  size_t ties = 0;
  for (double s : scores) ties += s == max ? 1 : 0;
  const double eps = options.kind == ExplorationKind::kGreedy ? 0.0 : options.epsilon;
  const double floor = eps / static_cast<double>(n);
  const double top = (1 - eps) / static_cast<double>(ties);
  for (size_t i = 0; i < n; ++i) p[i] = floor + (scores[i] == max ? top : 0.0);
  return p;
}

Result<SlateChoice> SampleSlate(std::span<const double> probabilities, size_t slate_size,
                                std::mt19937_64& rng) {
  if (probabilities.empty()) return Status::InvalidArgument("probabilities is empty");
  double sum = 0;
  size_t positive = 0;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    const double v = probabilities[i];
    if (!std::isfinite(v) || v < 0) {
      return Status::InvalidArgument("probabilities[" + std::to_string(i) + "] is " + Num(v) +
                                     ", expected a finite value >= 0");
    }
    sum += v;
    positive += v > 0 ? 1 : 0;
  }
  if (std::abs(sum - 1) > 1e-6) {
    return Status::InvalidArgument("probabilities sum to " + Num(sum) + ", expected 1");
  }
  if (slate_size > positive) {
    return Status::InvalidArgument("slate_size " + std::to_string(slate_size) + " exceeds the " +
                                   std::to_string(positive) +
                                   " candidates with positive probability");
  }
  SlateChoice out;
  out.chosen.reserve(slate_size);
  out.propensities.reserve(slate_size);
  std::vector<bool> taken(probabilities.size(), false);
  for (size_t k = 0; k < slate_size; ++k) {
    // The remaining mass is summed afresh at each step (not 1 minus the chosen mass), so
    // rounding never drifts and the chosen candidate always has positive probability.
    double remaining = 0;
    size_t last_positive = probabilities.size();
    for (size_t i = 0; i < probabilities.size(); ++i) {
      if (taken[i] || probabilities[i] <= 0) continue;
      remaining += probabilities[i];
      last_positive = i;
    }
    const double u = Uniform01(rng) * remaining;
    size_t pick = last_positive;  // where rounding leaves u past the last partial sum
    double acc = 0;
    for (size_t i = 0; i < probabilities.size(); ++i) {
      if (taken[i] || probabilities[i] <= 0) continue;
      acc += probabilities[i];
      if (u < acc) {
        pick = i;
        break;
      }
    }
    taken[pick] = true;
    out.chosen.push_back(pick);
    out.propensities.push_back(probabilities[pick] / remaining);
  }
  return out;
}

}  // namespace dynspec
