// Model math: per head h a weight vector w_h over the encoded context c.
//   binary head:      p_h = sigmoid(w_h . c), log-loss, d loss / d z = p - y
//   regression head:  y_h = w_h . c (on log1p(value) when log1p_target), squared loss
//                     0.5 (z - y)^2, d loss / d z = z - y
// Parameters live in a ModelState (types.h): H*F weights, head-major.
#pragma once

#include <span>
#include <vector>

#include "dynspec/options.h"
#include "dynspec/status.h"
#include "dynspec/types.h"
#include "model/features.h"

namespace dynspec {

struct ModelLayout {
  std::vector<HeadSpec> heads;
  int width = 1;  // F
  size_t size() const { return heads.size() * static_cast<size_t>(width); }
};

// Zero weights (p = 0.5, regression 0) and AdaGrad accumulators at `epsilon`.
void InitModel(const ModelLayout& layout, double epsilon, ModelState* model);
bool IsInitialized(const ModelLayout& layout, const ModelState& model);

// w_h . c for head h. The model must be initialized.
double HeadScore(const ModelLayout& layout, const ModelState& model, size_t head,
                 const FeatureVector& x);
// Head output from its score: sigmoid for binary heads, identity for regression heads.
double HeadOutput(HeadKind kind, double score);
// All heads' outputs into `out` (size H). An uninitialized model predicts like a zero model.
void PredictHeads(const ModelLayout& layout, const ModelState& model, const FeatureVector& x,
                  std::span<double> out);

// Prefetch hints (common/prefetch.h) for callers about to read many cold models: issuing
// them for every model first lets the cache misses overlap. Neither changes anything. Both
// read the model's vectors (their addresses and sizes), so the caller must hold the lock
// that guards `model`.
//
// Starts loading the weights PredictHeads(layout, model, x) reads; `x` must be encoded for
// `layout` (as for PredictHeads). Nothing for an uninitialized model.
void PrefetchHeadWeights(const ModelLayout& layout, const ModelState& model,
                         const FeatureVector& x);
// Starts loading the head of `model`'s weights, which ParameterBlend::Add reads in full.
void PrefetchWeights(const ModelState& model);

// The learning target of a response for a head, or InvalidArgument: binary responses must be
// in [0, 1]; log1p regression responses must be >= 0; all must be finite.
Result<double> HeadTarget(const HeadSpec& head, double response);
// Loss of output `output` (a probability or a regression value) against `target`.
double HeadLoss(HeadKind kind, double output, double target);
// d loss / d score at `score`.
double HeadScoreGradient(HeadKind kind, double score, double target);

}  // namespace dynspec
