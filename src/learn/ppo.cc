#include "learn/ppo.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "common/format.h"

namespace dynspec {
namespace {

std::string Num(double v) { return ExactNumber(v); }

constexpr double kAdamBeta1 = 0.9;
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEpsilon = 1e-8;

// Per-coordinate lazy Adam state, allocated per block on first use.
struct AdamState {
  std::vector<std::vector<double>> m, v;
  std::vector<std::vector<uint32_t>> t;
};

}  // namespace

Status ValidatePpoOptions(const PpoOptions& o) {
  if (!std::isfinite(o.clip) || o.clip <= 0) {
    return Status::InvalidArgument("options.clip must be finite and > 0, got " + Num(o.clip));
  }
  if (o.epochs < 1) {
    return Status::InvalidArgument("options.epochs must be >= 1, got " + std::to_string(o.epochs));
  }
  if (o.batch_size < 1) return Status::InvalidArgument("options.batch_size must be >= 1, got 0");
  if (!std::isfinite(o.learning_rate) || o.learning_rate <= 0) {
    return Status::InvalidArgument("options.learning_rate must be finite and > 0, got " +
                                   Num(o.learning_rate));
  }
  if (!std::isfinite(o.entropy_coef) || o.entropy_coef < 0) {
    return Status::InvalidArgument("options.entropy_coef must be finite and >= 0, got " +
                                   Num(o.entropy_coef));
  }
  if (!std::isfinite(o.temperature) || o.temperature <= 0) {
    return Status::InvalidArgument("options.temperature must be finite and > 0, got " +
                                   Num(o.temperature));
  }
  if (!(o.epsilon >= 0 && o.epsilon <= 1)) {
    return Status::InvalidArgument("options.epsilon must be in [0, 1], got " + Num(o.epsilon));
  }
  return Status::Ok();
}

Status ValidatePpoEvent(const PpoEvent& e, const PpoParams& params) {
  const size_t n = e.candidate_features.size();
  if (n == 0) return Status::InvalidArgument("candidate_features is empty");
  if (e.candidate_model.size() != n) {
    return Status::InvalidArgument(
        "candidate_model has " + std::to_string(e.candidate_model.size()) + " entries, expected " +
        std::to_string(n) + " (one per candidate)");
  }
  if (e.chosen >= n) {
    return Status::InvalidArgument("chosen is " + std::to_string(e.chosen) + ", expected < " +
                                   std::to_string(n) + " candidates");
  }
  if (!(e.logged_propensity > 0 && e.logged_propensity <= 1)) {
    return Status::InvalidArgument("logged_propensity is " + Num(e.logged_propensity) +
                                   ", expected in (0, 1]");
  }
  if (!std::isfinite(e.reward)) return Status::InvalidArgument("reward is not finite");
  if (!std::isfinite(e.baseline)) return Status::InvalidArgument("baseline is not finite");
  for (size_t j = 0; j < n; ++j) {
    const size_t b = e.candidate_model[j];
    const std::string cand = "candidate_features[" + std::to_string(j) + "]";
    if (b >= params.size()) {
      return Status::InvalidArgument("candidate_model[" + std::to_string(j) + "] is " +
                                     std::to_string(b) + ", expected < " +
                                     std::to_string(params.size()) + " blocks");
    }
    const FeatureVector& x = e.candidate_features[j];
    if (x.index.size() != x.value.size()) {
      return Status::InvalidArgument(cand + " has " + std::to_string(x.index.size()) +
                                     " indices and " + std::to_string(x.value.size()) + " values");
    }
    for (size_t i = 0; i < x.size(); ++i) {
      if (x.index[i] >= params[b].size()) {
        return Status::InvalidArgument(cand + ".index[" + std::to_string(i) + "] is " +
                                       std::to_string(x.index[i]) + ", expected < " +
                                       std::to_string(params[b].size()) + " (the size of block " +
                                       std::to_string(b) + ")");
      }
      if (!std::isfinite(x.value[i])) {
        return Status::InvalidArgument(cand + ".value[" + std::to_string(i) + "] is not finite");
      }
      if (!std::isfinite(params[b][x.index[i]])) {
        return Status::InvalidArgument("params[" + std::to_string(b) + "][" +
                                       std::to_string(x.index[i]) + "] is not finite");
      }
    }
  }
  return Status::Ok();
}

PpoTerms PpoScoreLoss(std::span<const double> scores, size_t chosen, double logged_propensity,
                      double advantage, const PpoOptions& o, std::span<double> dloss_dscores) {
  const size_t n = scores.size();
  assert(n >= 1 && chosen < n && logged_propensity > 0);
  assert(dloss_dscores.empty() || dloss_dscores.size() == n);
  const double t = o.temperature;
  const double eps = o.epsilon;
  // q = softmax(s / T) on shifted scores; pi = (1 - eps) q + eps / n, exactly as
  // ActionProbabilities computes it for kSoftmax.
  const double max = *std::max_element(scores.begin(), scores.end());
  std::vector<double> q(n), pi(n);
  double sum = 0;
  for (size_t j = 0; j < n; ++j) {
    q[j] = std::exp((scores[j] - max) / t);
    sum += q[j];
  }
  const double floor = eps / static_cast<double>(n);
  for (size_t j = 0; j < n; ++j) {
    q[j] /= sum;
    pi[j] = (1 - eps) * q[j] + floor;
  }

  PpoTerms out;
  out.pi_chosen = pi[chosen];
  out.ratio = pi[chosen] / logged_propensity;
  const double a = advantage;
  const double rho = out.ratio;
  const double lo = 1 - o.clip, hi = 1 + o.clip;
  out.clipped = (a > 0 && rho > hi) || (a < 0 && rho < lo);
  const double surrogate = std::min(rho * a, std::clamp(rho, lo, hi) * a);
  double entropy = 0;
  double q_log_pi = 0;  // sum_a q_a log pi_a
  for (size_t j = 0; j < n; ++j) {
    if (pi[j] <= 0) continue;  // 0 log 0 = 0 (only when eps = 0 and exp underflows)
    const double lp = std::log(pi[j]);
    entropy -= pi[j] * lp;
    q_log_pi += q[j] * lp;
  }
  out.loss = -surrogate - o.entropy_coef * entropy;

  if (dloss_dscores.empty()) return out;
  const double scale = (1 - eps) / t;
  // Surrogate: -(A / mu) d pi_c / d s_j = -(A / mu) scale q_c (delta_cj - q_j).
  const double surr_coef = out.clipped || a == 0 ? 0.0 : -(a / logged_propensity) * scale;
  for (size_t j = 0; j < n; ++j) {
    double g = surr_coef * q[chosen] * ((j == chosen ? 1.0 : 0.0) - q[j]);
    if (o.entropy_coef > 0 && pi[j] > 0) {
      g += o.entropy_coef * scale * q[j] * (std::log(pi[j]) - q_log_pi);
    }
    dloss_dscores[j] = g;
  }
  return out;
}

std::vector<double> PpoScores(const PpoEvent& e, const PpoParams& params) {
  std::vector<double> s(e.candidate_features.size(), 0.0);
  for (size_t j = 0; j < s.size(); ++j) {
    const std::vector<double>& w = params[e.candidate_model[j]];
    const FeatureVector& x = e.candidate_features[j];
    double dot = 0;
    for (size_t i = 0; i < x.size(); ++i) dot += w[x.index[i]] * static_cast<double>(x.value[i]);
    s[j] = dot;
  }
  return s;
}

double PpoLoss(const PpoEvent& e, const PpoParams& params, const PpoOptions& options) {
  const std::vector<double> s = PpoScores(e, params);
  return PpoScoreLoss(s, e.chosen, e.logged_propensity, e.reward - e.baseline, options, {}).loss;
}

namespace {

// Adds scale * dL/dparams of event `e` into `grad` (blocks already sized) and returns its
// terms.
PpoTerms AccumulateGradient(const PpoEvent& e, const PpoParams& params, const PpoOptions& o,
                            double scale, PpoParams* grad) {
  const std::vector<double> s = PpoScores(e, params);
  std::vector<double> ds(s.size());
  const PpoTerms terms =
      PpoScoreLoss(s, e.chosen, e.logged_propensity, e.reward - e.baseline, o, ds);
  for (size_t j = 0; j < s.size(); ++j) {
    if (ds[j] == 0) continue;
    std::vector<double>& g = (*grad)[e.candidate_model[j]];
    const FeatureVector& x = e.candidate_features[j];
    for (size_t i = 0; i < x.size(); ++i) {
      g[x.index[i]] += scale * ds[j] * static_cast<double>(x.value[i]);
    }
  }
  return terms;
}

double MeanLoss(const std::vector<PpoEvent>& buffer, const PpoParams& params, const PpoOptions& o) {
  double sum = 0;
  for (const PpoEvent& e : buffer) sum += PpoLoss(e, params, o);
  return sum / static_cast<double>(buffer.size());
}

}  // namespace

void PpoGradient(const PpoEvent& e, const PpoParams& params, const PpoOptions& options,
                 PpoParams* grad) {
  grad->resize(params.size());
  for (size_t b = 0; b < params.size(); ++b) (*grad)[b].assign(params[b].size(), 0.0);
  AccumulateGradient(e, params, options, 1.0, grad);
}

void ShuffleOrder(std::vector<size_t>* order, std::mt19937_64& rng) {
  for (size_t k = order->size(); k > 1; --k) {
    const size_t j = static_cast<size_t>((static_cast<unsigned __int128>(rng()) * k) >> 64);
    std::swap((*order)[k - 1], (*order)[j]);
  }
}

Result<PpoStats> PpoUpdate(const std::vector<PpoEvent>& buffer, PpoParams* params,
                           const PpoOptions& options, uint64_t seed) {
  DYNSPEC_RETURN_IF_ERROR(ValidatePpoOptions(options));
  if (buffer.empty()) return Status::InvalidArgument("buffer is empty");
  for (size_t k = 0; k < buffer.size(); ++k) {
    DYNSPEC_RETURN_IF_ERROR(
        ValidatePpoEvent(buffer[k], *params).WithContext("buffer[" + std::to_string(k) + "]"));
  }

  PpoParams& w = *params;
  PpoStats stats;
  stats.loss_before = MeanLoss(buffer, w, options);

  // Gradient and optimizer state only for the blocks the buffer uses.
  const size_t nb = w.size();
  PpoParams grad(nb);
  AdamState adam;
  adam.m.resize(nb);
  adam.v.resize(nb);
  adam.t.resize(nb);
  std::vector<std::vector<uint8_t>> touched_mark(nb);
  for (const PpoEvent& e : buffer) {
    for (size_t b : e.candidate_model) {
      if (!grad[b].empty() || w[b].empty()) continue;
      grad[b].assign(w[b].size(), 0.0);
      adam.m[b].assign(w[b].size(), 0.0);
      adam.v[b].assign(w[b].size(), 0.0);
      adam.t[b].assign(w[b].size(), 0);
      touched_mark[b].assign(w[b].size(), 0);
    }
  }

  std::vector<size_t> order(buffer.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::mt19937_64 rng(seed);
  std::vector<std::pair<size_t, uint32_t>> touched;
  size_t evaluations = 0, clipped = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    ShuffleOrder(&order, rng);
    for (size_t start = 0; start < order.size(); start += options.batch_size) {
      const size_t end = std::min(order.size(), start + options.batch_size);
      const double scale = 1.0 / static_cast<double>(end - start);
      touched.clear();
      for (size_t k = start; k < end; ++k) {
        const PpoEvent& e = buffer[order[k]];
        const PpoTerms terms = AccumulateGradient(e, w, options, scale, &grad);
        ++evaluations;
        clipped += terms.clipped ? 1 : 0;
        for (size_t j = 0; j < e.candidate_features.size(); ++j) {
          const size_t b = e.candidate_model[j];
          for (uint32_t idx : e.candidate_features[j].index) {
            if (touched_mark[b][idx]) continue;
            touched_mark[b][idx] = 1;
            touched.emplace_back(b, idx);
          }
        }
      }
      // Lazy Adam step on the coordinates this mini-batch touched.
      for (const auto& [b, idx] : touched) {
        const double g = grad[b][idx];
        double& m = adam.m[b][idx];
        double& v = adam.v[b][idx];
        const uint32_t t = ++adam.t[b][idx];
        m = kAdamBeta1 * m + (1 - kAdamBeta1) * g;
        v = kAdamBeta2 * v + (1 - kAdamBeta2) * g * g;
        const double m_hat = m / (1 - std::pow(kAdamBeta1, t));
        const double v_hat = v / (1 - std::pow(kAdamBeta2, t));
        w[b][idx] -= options.learning_rate * m_hat / (std::sqrt(v_hat) + kAdamEpsilon);
        grad[b][idx] = 0;
        touched_mark[b][idx] = 0;
      }
      ++stats.updates;
    }
  }
  stats.clip_fraction = static_cast<double>(clipped) / static_cast<double>(evaluations);
  stats.loss_after = MeanLoss(buffer, w, options);
  return stats;
}

}  // namespace dynspec
