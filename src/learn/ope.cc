#include "learn/ope.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace dynspec {
namespace {

constexpr double kZ95 = 1.959963984540054;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

Status Validate(std::span<const LoggedDecision> d, bool reward_model) {
  if (d.empty()) return Status::InvalidArgument("decisions is empty");
  for (size_t i = 0; i < d.size(); ++i) {
    const std::string row = "decisions[" + std::to_string(i) + "].";
    const LoggedDecision& x = d[i];
    if (!(x.logged_propensity > 0 && x.logged_propensity <= 1)) {
      return Status::InvalidArgument(row + "logged_propensity is " + Num(x.logged_propensity) +
                                     ", expected in (0, 1]");
    }
    if (!(x.target_probability >= 0 && x.target_probability <= 1)) {
      return Status::InvalidArgument(row + "target_probability is " + Num(x.target_probability) +
                                     ", expected in [0, 1]");
    }
    if (!std::isfinite(x.reward)) return Status::InvalidArgument(row + "reward is not finite");
    if (reward_model) {
      if (!std::isfinite(x.reward_model_logged)) {
        return Status::InvalidArgument(row + "reward_model_logged is not finite");
      }
      if (!std::isfinite(x.reward_model_target)) {
        return Status::InvalidArgument(row + "reward_model_target is not finite");
      }
    }
  }
  return Status::Ok();
}

double Weight(const LoggedDecision& x) { return x.target_probability / x.logged_propensity; }

Estimate WithInterval(double value, double std_error, size_t n) {
  Estimate e;
  e.value = value;
  e.std_error = std_error;
  e.ci_low = value - kZ95 * std_error;
  e.ci_high = value + kZ95 * std_error;
  e.n = n;
  return e;
}

// Mean of the per-row terms and the standard error of that mean.
Estimate MeanEstimate(const std::vector<double>& terms) {
  const size_t n = terms.size();
  double mean = 0;
  for (double t : terms) mean += t;
  mean /= static_cast<double>(n);
  if (n < 2) return WithInterval(mean, std::numeric_limits<double>::infinity(), n);
  double ss = 0;
  for (double t : terms) ss += (t - mean) * (t - mean);
  const double var = ss / static_cast<double>(n - 1);
  return WithInterval(mean, std::sqrt(var / static_cast<double>(n)), n);
}

}  // namespace

Result<Estimate> Ips(std::span<const LoggedDecision> decisions) {
  DYNSPEC_RETURN_IF_ERROR(Validate(decisions, false));
  std::vector<double> terms;
  terms.reserve(decisions.size());
  for (const LoggedDecision& x : decisions) terms.push_back(Weight(x) * x.reward);
  return MeanEstimate(terms);
}

Result<Estimate> Snips(std::span<const LoggedDecision> decisions) {
  DYNSPEC_RETURN_IF_ERROR(Validate(decisions, false));
  const size_t n = decisions.size();
  double sw = 0, swr = 0;
  for (const LoggedDecision& x : decisions) {
    sw += Weight(x);
    swr += Weight(x) * x.reward;
  }
  if (!(sw > 0)) {
    return Status::InvalidArgument(
        "every importance weight is 0 (the target policy never takes a logged action), so "
        "SNIPS is undefined");
  }
  const double value = swr / sw;
  if (n < 2) return WithInterval(value, std::numeric_limits<double>::infinity(), n);
  // Delta method: residuals z_i = w_i (r_i - V) have mean exactly 0 at V = SNIPS.
  double ss = 0;
  for (const LoggedDecision& x : decisions) {
    const double z = Weight(x) * (x.reward - value);
    ss += z * z;
  }
  const double nd = static_cast<double>(n);
  const double wbar = sw / nd;
  const double se = std::sqrt(ss / (nd * (nd - 1))) / wbar;
  return WithInterval(value, se, n);
}

Result<Estimate> DoublyRobust(std::span<const LoggedDecision> decisions) {
  DYNSPEC_RETURN_IF_ERROR(Validate(decisions, true));
  std::vector<double> terms;
  terms.reserve(decisions.size());
  for (const LoggedDecision& x : decisions) {
    terms.push_back(x.reward_model_target + Weight(x) * (x.reward - x.reward_model_logged));
  }
  return MeanEstimate(terms);
}

}  // namespace dynspec
