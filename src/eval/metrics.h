// Metrics for binary predictions (probability p of a positive label y in {0, 1}).
//
// BinaryMetrics accumulates (p, y) pairs and reports:
//   LogLoss()            mean of -[y log p + (1-y) log(1-p)], with p clipped to
//                        [1e-7, 1 - 1e-7]; NaN when empty.
//   Auc()                exact ROC AUC (Mann-Whitney): the probability that a random positive
//                        scores above a random negative; tied scores get half credit. NaN when
//                        either class is absent. O(n log n).
//   MeanPrediction()     mean p; NaN when empty.
//   PositiveRate()       mean y; NaN when empty.
//   ExpectedCalibrationError(bins)
//                        sum over `bins` equal-width bins of [0, 1] of
//                        (bin count / n) * |mean p - mean y| in that bin (p = 1 falls in the
//                        last bin); NaN when empty or bins < 1.
// Preconditions (programmer errors, asserted): p is finite and in [0, 1], y is 0 or 1. In
// builds without asserts p is clamped to [0, 1] and any non-zero y counts as 1.
//
// Thread-compatible: one owner, or external locking. Memory: 9 bytes per Add (Auc needs the
// pairs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dynspec::eval {

class BinaryMetrics {
 public:
  void Add(double p, int y);
  size_t count() const { return p_.size(); }
  double LogLoss() const;
  double Auc() const;
  double MeanPrediction() const;
  double PositiveRate() const;
  double ExpectedCalibrationError(int bins = 10) const;

 private:
  std::vector<double> p_;
  std::vector<uint8_t> y_;
  double log_loss_sum_ = 0;
  double p_sum_ = 0;
  size_t positives_ = 0;
};

// Exact ROC AUC as above. `p` and `y` must have the same size (asserted; NaN otherwise).
double Auc(const std::vector<double>& p, const std::vector<int>& y);

}  // namespace dynspec::eval
