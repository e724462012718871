#include "cluster/recluster.h"

#include <algorithm>
#include <set>

namespace dynspec {

Result<ReclusterPlan> PlanRecluster(const std::vector<ProviderProfile>& profiles,
                                    const std::vector<ClusterId>& clusters,
                                    const ReclusterOptions& o, ReclusterState* state) {
  ReclusterPlan plan;
  if (clusters.empty()) return Status::FailedPrecondition("there are no clusters to evaluate");

  // 1. Profiles.
  std::vector<const ProviderProfile*> used;
  std::vector<std::vector<float>> points;
  for (const auto& p : profiles) {
    auto home = p.cells.find(p.current);
    if (home == p.cells.end() || home->second.count < o.min_evidence) {
      plan.providers_skipped++;
      continue;
    }
    std::vector<double> row(clusters.size(), 0.0);
    std::vector<bool> known(clusters.size(), false);
    double sum = 0;
    int n = 0;
    for (size_t c = 0; c < clusters.size(); ++c) {
      auto it = p.cells.find(clusters[c]);
      if (it != p.cells.end() && it->second.count >= o.min_evidence) {
        row[c] = it->second.mean();
        known[c] = true;
        sum += row[c];
        n++;
      }
    }
    const double mean = sum / n;
    std::vector<float> point(clusters.size());
    for (size_t c = 0; c < clusters.size(); ++c) {
      point[c] = static_cast<float>(known[c] ? row[c] - mean : 0.0);
    }
    used.push_back(&p);
    points.push_back(std::move(point));
  }
  plan.providers_profiled = used.size();
  if (used.size() < 2) return plan;  // nothing to compare yet

  // 2. Agglomerative clustering of the profiles.
  const size_t k =
      std::min(used.size(), o.target_clusters > 0 ? size_t(o.target_clusters) : clusters.size());
  DYNSPEC_ASSIGN_OR_RETURN(plan.dendrogram, Agglomerate(points, o.linkage));
  const std::vector<int> labels = o.distance_threshold > 0
                                      ? CutAtDistance(plan.dendrogram, o.distance_threshold)
                                      : CutToClusters(plan.dendrogram, k);
  for (const auto* p : used) plan.leaves.push_back(p->provider);

  // 3. Match new groups to old clusters by overlap, largest first, one to one.
  std::map<std::pair<int, ClusterId>, size_t> overlap;
  for (size_t i = 0; i < used.size(); ++i) overlap[{labels[i], used[i]->current}]++;
  std::vector<std::pair<size_t, std::pair<int, ClusterId>>> order;
  for (const auto& [key, count] : overlap) order.push_back({count, key});
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first > b.first;
    return a.second < b.second;  // deterministic ties
  });
  std::map<int, ClusterId> matched;
  std::set<ClusterId> taken;
  for (const auto& [count, key] : order) {
    if (matched.count(key.first) || taken.count(key.second)) continue;
    matched[key.first] = key.second;
    taken.insert(key.second);
  }

  // 4. Evidence, hysteresis, cap.
  std::vector<int> current_labels, proposed_labels;
  std::vector<MoveDecision> candidates;
  std::set<ProviderId> still_candidates;
  for (size_t i = 0; i < used.size(); ++i) {
    const ProviderProfile& p = *used[i];
    auto m = matched.find(labels[i]);
    // A group with no old cluster left to match keeps its members where they are.
    const ClusterId target = m == matched.end() ? p.current : m->second;
    plan.proposed[p.provider] = target;
    current_labels.push_back(static_cast<int>(p.current));
    proposed_labels.push_back(static_cast<int>(target));
    if (target == p.current) continue;
    const LossCell& home = p.cells.at(p.current);
    auto there = p.cells.find(target);
    if (there == p.cells.end() || there->second.count < o.min_evidence) continue;
    if (!(there->second.mean() <= home.mean() * (1.0 - o.move_margin))) continue;
    auto& streak = state->streaks[p.provider];
    streak = streak.first == target ? std::make_pair(target, streak.second + 1)
                                    : std::make_pair(target, 1);
    still_candidates.insert(p.provider);
    candidates.push_back({p.provider, p.current, target, home.mean(), there->second.mean(),
                          home.count, there->second.count, streak.second});
  }
  // Providers that stopped being candidates lose their streak.
  for (auto it = state->streaks.begin(); it != state->streaks.end();) {
    it = still_candidates.count(it->first) ? std::next(it) : state->streaks.erase(it);
  }
  std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
    const double ga = a.home_loss - a.target_loss, gb = b.home_loss - b.target_loss;
    if (ga != gb) return ga > gb;
    return a.provider < b.provider;
  });
  for (const auto& c : candidates) {
    if (c.streak >= o.consecutive_runs &&
        plan.moves.size() < static_cast<size_t>(o.max_moves_per_run)) {
      plan.moves.push_back(c);
      state->streaks.erase(c.provider);
    } else {
      plan.deferred.push_back(c);
    }
  }
  plan.adjusted_rand_index = AdjustedRandIndex(current_labels, proposed_labels);
  return plan;
}

}  // namespace dynspec
