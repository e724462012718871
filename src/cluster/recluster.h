// Re-clustering plan: from the provider x cluster loss matrix filled by shadow evaluation to
// a set of provider moves. Pure: the engine snapshots its statistics, calls PlanRecluster,
// and applies the moves with Engine::MoveProvider.
//
// Steps:
//  1. Profile: for each provider with enough evidence, its mean loss in every cluster
//     (entries with too little evidence are filled with the provider's mean over the known
//     ones), centred on the provider's own mean, so that the profile says *where* a
//     provider is served well, not how hard its content is.
//  2. Agglomerative clustering of the profiles (configured linkage), cut into the target
//     number of clusters, or at the configured distance threshold.
//  3. Stable ids: each new group is matched to the old cluster it overlaps most (greedy on
//     overlap counts, largest first, one to one), so unchanged groups keep their ids.
//  4. Evidence and hysteresis: a provider whose matched cluster differs from its current one
//     becomes a candidate only if its measured loss there is lower than at home by the
//     configured margin; it moves once it has been a candidate for the same target in
//     `consecutive_runs` runs in a row; at most `max_moves_per_run` move, largest gain first.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cluster/hierarchical.h"
#include "dynspec/options.h"
#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec {

struct LossCell {
  double loss_sum = 0;  // decayed sum of per-event losses
  double count = 0;     // decayed number of shadow evaluations
  double mean() const { return count > 0 ? loss_sum / count : 0; }
};

struct ProviderProfile {
  ProviderId provider;
  ClusterId current = 0;
  std::map<ClusterId, LossCell> cells;
};

struct MoveDecision {
  ProviderId provider;
  ClusterId from = 0;
  ClusterId to = 0;
  double home_loss = 0;
  double target_loss = 0;
  double home_evidence = 0;
  double target_evidence = 0;
  int streak = 0;  // consecutive runs this move has been a candidate
};

// Carried from one run to the next (hysteresis).
struct ReclusterState {
  std::map<ProviderId, std::pair<ClusterId, int>> streaks;  // candidate target, runs in a row
};

struct ReclusterPlan {
  std::vector<MoveDecision> moves;     // to apply now
  std::vector<MoveDecision> deferred;  // candidates still short of the hysteresis or the cap
  size_t providers_profiled = 0;
  size_t providers_skipped = 0;    // too little evidence
  std::vector<ProviderId> leaves;  // dendrogram leaf i is provider leaves[i]
  Dendrogram dendrogram;
  std::map<ProviderId, ClusterId> proposed;  // matched performance cluster per provider
  // Agreement between the current assignment and the proposed one over profiled providers.
  double adjusted_rand_index = 1;
};

Result<ReclusterPlan> PlanRecluster(const std::vector<ProviderProfile>& profiles,
                                    const std::vector<ClusterId>& clusters,
                                    const ReclusterOptions& options, ReclusterState* state);

}  // namespace dynspec
