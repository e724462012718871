#include "learn/supervised.h"

#include <algorithm>
#include <cmath>

namespace dynspec {

double SupervisedStep(const LearnOptions& o, const ModelLayout& layout, size_t head, double target,
                      const FeatureVector& x, ModelState* model) {
  const HeadKind kind = layout.heads[head].kind;
  const double score = HeadScore(layout, *model, head, x);
  const double loss = HeadLoss(kind, HeadOutput(kind, score), target);
  const double dz = HeadScoreGradient(kind, score, target);
  const size_t base = head * static_cast<size_t>(layout.width);
  const float cap = static_cast<float>(o.max_abs_weight);
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t j = base + x.index[i];
    const double g = dz * x.value[i] + o.l2 * model->weights[j];
    model->sq_grad[j] += static_cast<float>(g * g);
    const double step = o.learning_rate * g / std::sqrt(double(model->sq_grad[j]));
    model->weights[j] = std::clamp(static_cast<float>(model->weights[j] - step), -cap, cap);
  }
  model->head_counts[head] += 1;
  return loss;
}

}  // namespace dynspec
