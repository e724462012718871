#include "eval/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace dynspec::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kClip = 1e-7;

// Rank-sum AUC over n pairs given by accessors; ties share their average rank.
template <typename P, typename Y>
double AucImpl(size_t n, P p, Y y) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p(a) < p(b); });
  double positives = 0;
  double rank_sum = 0;  // sum of (1-based, tie-averaged) ranks of the positives
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    double group_pos = 0;
    while (j < n && p(order[j]) == p(order[i])) {
      group_pos += y(order[j]) ? 1 : 0;
      ++j;
    }
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    rank_sum += group_pos * avg_rank;
    positives += group_pos;
    i = j;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives);
}

}  // namespace

void BinaryMetrics::Add(double p, int y) {
  assert(std::isfinite(p) && p >= 0 && p <= 1 && "BinaryMetrics: p must be in [0, 1]");
  assert((y == 0 || y == 1) && "BinaryMetrics: y must be 0 or 1");
  if (!(p >= 0)) p = 0;  // also maps NaN to 0 when asserts are off
  if (p > 1) p = 1;
  const uint8_t label = y != 0 ? 1 : 0;
  const double q = std::clamp(p, kClip, 1 - kClip);
  log_loss_sum_ -= label ? std::log(q) : std::log1p(-q);
  p_sum_ += p;
  positives_ += label;
  p_.push_back(p);
  y_.push_back(label);
}

double BinaryMetrics::LogLoss() const {
  return p_.empty() ? kNaN : log_loss_sum_ / static_cast<double>(p_.size());
}

double BinaryMetrics::Auc() const {
  return AucImpl(
      p_.size(), [&](size_t i) { return p_[i]; }, [&](size_t i) { return y_[i] != 0; });
}

double BinaryMetrics::MeanPrediction() const {
  return p_.empty() ? kNaN : p_sum_ / static_cast<double>(p_.size());
}

double BinaryMetrics::PositiveRate() const {
  return p_.empty() ? kNaN : static_cast<double>(positives_) / static_cast<double>(p_.size());
}

double BinaryMetrics::ExpectedCalibrationError(int bins) const {
  if (p_.empty() || bins < 1) return kNaN;
  std::vector<double> sum_p(bins, 0.0), sum_y(bins, 0.0), count(bins, 0.0);
  for (size_t i = 0; i < p_.size(); ++i) {
    int b = static_cast<int>(p_[i] * bins);
    b = std::clamp(b, 0, bins - 1);
    sum_p[b] += p_[i];
    sum_y[b] += y_[i];
    count[b] += 1;
  }
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] == 0) continue;
    ece += std::fabs(sum_p[b] - sum_y[b]);  // = count * |mean p - mean y|
  }
  return ece / static_cast<double>(p_.size());
}

double Auc(const std::vector<double>& p, const std::vector<int>& y) {
  assert(p.size() == y.size() && "Auc: p and y differ in size");
  if (p.size() != y.size()) return kNaN;
  for (double v : p) {
    if (std::isnan(v)) return kNaN;  // NaN has no rank
  }
  return AucImpl(
      p.size(), [&](size_t i) { return p[i]; }, [&](size_t i) { return y[i] != 0; });
}

}  // namespace dynspec::eval
