// Strategies compared side by side by the replay: each predicts one binary head for an
// event, then learns from the revealed response (progressive validation).
//
//   global          one model for every item
//   per_provider    one model per provider
//   static_cluster  one shared model per provider cluster (the established approach, after
//                   US 10,489,719 / US 11,580,447), clusters fixed at the start
//   per_item        one model per item, no sharing (cold items start at p = 0.5)
//   dynamic         dynspec: a model specialized per item from its neighbours (the Engine)
// The baselines use the same features, heads, learner and learning options as the engine,
// so the comparison isolates how models are shared.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "dynspec/engine.h"
#include "eval/events.h"
#include "model/features.h"
#include "model/model.h"

namespace dynspec::eval {

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // Probability of the evaluated head for this event, before its response is revealed.
  virtual Result<double> Predict(const ReplayEvent& event, const Context& context) = 0;
  virtual Status Learn(const ReplayEvent& event, const Context& context) = 0;
};

// Maps an event to the key of the model that serves it.
enum class SharingKey { kGlobal, kProvider, kCluster, kItem };

// A baseline: one model per key, trained with the engine's learner on the evaluated head.
// `cluster_of` gives the provider -> cluster map for kCluster.
std::unique_ptr<Strategy> NewKeyedStrategy(
    std::string name, SharingKey key, const EngineOptions& options, const std::string& head,
    std::unordered_map<std::string, ClusterId> cluster_of = {});

// The dynamic specialization: predicts through `engine` (items must already be ingested)
// and learns by Engine::Feedback.
std::unique_ptr<Strategy> NewEngineStrategy(std::string name, Engine* engine,
                                            const std::string& head);

}  // namespace dynspec::eval
