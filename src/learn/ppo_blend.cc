#include "learn/ppo_blend.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace dynspec {
namespace {

constexpr double kAdamBeta1 = 0.9;
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEpsilon = 1e-8;

double Dot(const std::vector<float>& w, size_t offset, const FeatureVector& x) {
  double z = 0;
  for (size_t i = 0; i < x.size(); ++i) z += double(w[offset + x.index[i]]) * x.value[i];
  return z;
}

// Blended outputs of one candidate.
std::vector<double> Outputs(const BlendedCandidate& c, const FeatureVector& x,
                            const BlendedParams& params, const ModelLayout& layout) {
  std::vector<double> o = TunedOutputs(c, x, params, layout);
  for (size_t h = 0; h < o.size(); ++h) o[h] += c.fixed_outputs[h];
  return o;
}

// dR/do by central differences.
std::vector<double> RewardSlopes(const std::vector<double>& o, const RewardFunction& reward) {
  constexpr double kStep = 1e-6;
  std::vector<double> slopes(o.size()), probe = o;
  for (size_t h = 0; h < o.size(); ++h) {
    probe[h] = o[h] + kStep;
    const double up = reward.Expected(probe);
    probe[h] = o[h] - kStep;
    const double down = reward.Expected(probe);
    probe[h] = o[h];
    slopes[h] = (up - down) / (2 * kStep);
  }
  return slopes;
}

Status Validate(const BlendedEvent& e, const BlendedParams& params, const ModelLayout& layout) {
  if (e.candidates.empty()) return Status::InvalidArgument("candidates is empty");
  if (e.chosen >= e.candidates.size()) return Status::InvalidArgument("chosen is out of range");
  if (!(e.logged_propensity > 0 && e.logged_propensity <= 1)) {
    return Status::InvalidArgument("logged_propensity is not in (0, 1]");
  }
  if (!std::isfinite(e.reward) || !std::isfinite(e.baseline)) {
    return Status::InvalidArgument("reward and baseline must be finite");
  }
  const size_t width = static_cast<size_t>(layout.width);
  for (uint32_t idx : e.x.index) {
    if (idx >= width) return Status::InvalidArgument("feature index outside the model width");
  }
  for (size_t j = 0; j < e.candidates.size(); ++j) {
    const auto& c = e.candidates[j];
    const std::string name = "candidates[" + std::to_string(j) + "]";
    if (c.fixed_outputs.size() != layout.heads.size() || c.weights.size() != c.models.size()) {
      return Status::InvalidArgument(name + " has the wrong number of outputs or weights");
    }
    for (size_t m : c.models) {
      if (m >= params.size() || params[m].size() != layout.size()) {
        return Status::InvalidArgument(name + " names a model outside the parameters");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<double> TunedOutputs(const BlendedCandidate& c, const FeatureVector& x,
                                 const BlendedParams& params, const ModelLayout& layout) {
  std::vector<double> o(layout.heads.size(), 0.0);
  const size_t width = static_cast<size_t>(layout.width);
  for (size_t h = 0; h < layout.heads.size(); ++h) {
    for (size_t k = 0; k < c.models.size(); ++k) {
      o[h] +=
          c.weights[k] * HeadOutput(layout.heads[h].kind, Dot(params[c.models[k]], h * width, x));
    }
  }
  return o;
}

std::vector<double> BlendedScores(const BlendedEvent& event, const BlendedParams& params,
                                  const ModelLayout& layout, const RewardFunction& reward) {
  std::vector<double> s;
  s.reserve(event.candidates.size());
  for (const auto& c : event.candidates)
    s.push_back(reward.Expected(Outputs(c, event.x, params, layout)));
  return s;
}

PpoTerms BlendedPpoLoss(const BlendedEvent& event, const BlendedParams& params,
                        const ModelLayout& layout, const RewardFunction& reward,
                        const PpoOptions& options, double scale,
                        std::vector<std::vector<double>>* grad) {
  const size_t n = event.candidates.size();
  std::vector<std::vector<double>> outputs(n);
  std::vector<double> scores(n);
  for (size_t j = 0; j < n; ++j) {
    outputs[j] = Outputs(event.candidates[j], event.x, params, layout);
    scores[j] = reward.Expected(outputs[j]);
  }
  std::vector<double> dscores(grad != nullptr ? n : 0);
  const PpoTerms terms = PpoScoreLoss(scores, event.chosen, event.logged_propensity,
                                      event.reward - event.baseline, options, dscores);
  if (grad == nullptr) return terms;
  const size_t width = static_cast<size_t>(layout.width);
  for (size_t j = 0; j < n; ++j) {
    if (dscores[j] == 0) continue;
    const auto& c = event.candidates[j];
    const std::vector<double> slopes = RewardSlopes(outputs[j], reward);
    for (size_t h = 0; h < layout.heads.size(); ++h) {
      if (slopes[h] == 0) continue;
      for (size_t k = 0; k < c.models.size(); ++k) {
        const auto& w = params[c.models[k]];
        double act_slope = 1;
        if (layout.heads[h].kind == HeadKind::kBinary) {
          const double p = HeadOutput(HeadKind::kBinary, Dot(w, h * width, event.x));
          act_slope = p * (1 - p);
        }
        const double g = scale * dscores[j] * slopes[h] * c.weights[k] * act_slope;
        auto& gm = (*grad)[c.models[k]];
        for (size_t i = 0; i < event.x.size(); ++i) {
          gm[h * width + event.x.index[i]] += g * event.x.value[i];
        }
      }
    }
  }
  return terms;
}

Result<PpoStats> BlendedPpoUpdate(const std::vector<BlendedEvent>& buffer, BlendedParams* params,
                                  const ModelLayout& layout, const RewardFunction& reward,
                                  const PpoOptions& options, uint64_t seed) {
  DYNSPEC_RETURN_IF_ERROR(ValidatePpoOptions(options));
  if (buffer.empty()) return Status::InvalidArgument("buffer is empty");
  for (size_t k = 0; k < buffer.size(); ++k) {
    DYNSPEC_RETURN_IF_ERROR(
        Validate(buffer[k], *params, layout).WithContext("buffer[" + std::to_string(k) + "]"));
  }
  BlendedParams& w = *params;
  auto mean_loss = [&] {
    double sum = 0;
    for (const auto& e : buffer)
      sum += BlendedPpoLoss(e, w, layout, reward, options, 0, nullptr).loss;
    return sum / double(buffer.size());
  };
  PpoStats stats;
  stats.loss_before = mean_loss();

  // Dense gradient and Adam state for the models the buffer blends (the engine passes only
  // those), so each step costs the mini-batch's models, not the catalog.
  std::vector<std::vector<double>> grad(w.size()), m(w.size()), v(w.size());
  std::vector<std::vector<uint32_t>> t(w.size());
  for (size_t b = 0; b < w.size(); ++b) {
    grad[b].assign(w[b].size(), 0.0);
    m[b].assign(w[b].size(), 0.0);
    v[b].assign(w[b].size(), 0.0);
    t[b].assign(w[b].size(), 0);
  }
  std::vector<size_t> order(buffer.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::mt19937_64 rng(seed);
  size_t evaluations = 0, clipped = 0;
  const size_t width = static_cast<size_t>(layout.width);
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    ShuffleOrder(&order, rng);
    for (size_t start = 0; start < order.size(); start += options.batch_size) {
      const size_t end = std::min(order.size(), start + options.batch_size);
      const double scale = 1.0 / double(end - start);
      std::vector<std::pair<size_t, size_t>> touched;
      for (size_t k = start; k < end; ++k) {
        const BlendedEvent& e = buffer[order[k]];
        const PpoTerms terms = BlendedPpoLoss(e, w, layout, reward, options, scale, &grad);
        ++evaluations;
        clipped += terms.clipped ? 1 : 0;
        for (const auto& c : e.candidates) {
          for (size_t model : c.models) {
            for (size_t h = 0; h < layout.heads.size(); ++h) {
              for (uint32_t idx : e.x.index) touched.emplace_back(model, h * width + idx);
            }
          }
        }
      }
      std::sort(touched.begin(), touched.end());
      touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
      for (const auto& [b, i] : touched) {
        const double g = grad[b][i];
        grad[b][i] = 0;
        const uint32_t step = ++t[b][i];
        m[b][i] = kAdamBeta1 * m[b][i] + (1 - kAdamBeta1) * g;
        v[b][i] = kAdamBeta2 * v[b][i] + (1 - kAdamBeta2) * g * g;
        const double m_hat = m[b][i] / (1 - std::pow(kAdamBeta1, step));
        const double v_hat = v[b][i] / (1 - std::pow(kAdamBeta2, step));
        w[b][i] -=
            static_cast<float>(options.learning_rate * m_hat / (std::sqrt(v_hat) + kAdamEpsilon));
      }
      ++stats.updates;
    }
  }
  stats.clip_fraction = double(clipped) / double(evaluations);
  stats.loss_after = mean_loss();
  return stats;
}

}  // namespace dynspec
