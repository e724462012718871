// Online supervised learner: one AdaGrad step per observed head on a model.
//   g_j = dloss/dz * x_j + l2 * w_j,   G_j += g_j^2,   w_j -= lr * g_j / sqrt(G_j)
// Per-coordinate rates (Duchi et al., 2011) suit hashed sparse contexts: rare features keep
// large steps while the bias settles quickly.
#pragma once

#include "dynspec/options.h"
#include "model/features.h"
#include "model/model.h"

namespace dynspec {

// Applies one step for `head` toward `target` (already mapped by HeadTarget) and returns the
// loss of the model's output before the step. The model must be initialized. Counts one
// observation in model->head_counts[head]; the caller counts evidence per event.
double SupervisedStep(const LearnOptions& options, const ModelLayout& layout, size_t head,
                      double target, const FeatureVector& x, ModelState* model);

}  // namespace dynspec
