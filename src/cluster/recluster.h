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
//  5. Providers with too little evidence (skipped in step 1) are placed by content: each
//     performance cluster matched to an engine cluster in step 3 gets a content centroid,
//     the mean of its members' normalized content centroids. A little-data provider becomes
//     a candidate for the engine cluster whose centroid is most similar to its own (cosine)
//     when that is not its current cluster and the similarity exceeds the one of its current
//     cluster's performance cluster by more than `content_move_margin`. It is then subject
//     to the same hysteresis and the same per-run cap, after every evidence-backed candidate.
//     A provider whose current cluster has no performance cluster, or that has no content,
//     stays where it is.
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
  // The provider's content centroid, normalized (empty: it has no items). Used only when
  // the provider has too little evidence (step 5); all non-empty ones have one dimension.
  std::vector<float> content;
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
  // Placed by content (step 5): too little evidence, so the losses above are what little
  // there is (0 without any), and the case rests on the cosine similarity of the provider's
  // content centroid to its current and its target performance cluster.
  bool by_content = false;
  double home_similarity = 0;
  double target_similarity = 0;
};

// Carried from one run to the next (hysteresis).
struct ReclusterState {
  std::map<ProviderId, std::pair<ClusterId, int>> streaks;  // candidate target, runs in a row
};

struct ReclusterPlan {
  std::vector<MoveDecision> moves;     // to apply now
  std::vector<MoveDecision> deferred;  // candidates still short of the hysteresis or the cap
  size_t providers_profiled = 0;
  size_t providers_skipped = 0;  // too little evidence
  // Of those, the ones compared by content with the performance clusters (step 5).
  size_t providers_by_content = 0;
  std::vector<ProviderId> leaves;  // dendrogram leaf i is provider leaves[i]
  Dendrogram dendrogram;
  std::map<ProviderId, ClusterId> proposed;  // matched performance cluster per provider
  // Agreement between the current assignment and the proposed one over profiled providers.
  double adjusted_rand_index = 1;
};

// InvalidArgument when two content centroids differ in dimension; FailedPrecondition without
// clusters.
Result<ReclusterPlan> PlanRecluster(const std::vector<ProviderProfile>& profiles,
                                    const std::vector<ClusterId>& clusters,
                                    const ReclusterOptions& options, ReclusterState* state);

}  // namespace dynspec
