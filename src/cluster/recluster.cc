#include "cluster/recluster.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace dynspec {
namespace {

// Per engine cluster matched in step 3, the normalized mean of the content centroids of the
// profiled providers in its performance cluster.
std::map<ClusterId, std::vector<double>> ContentCentroids(
    const std::vector<const ProviderProfile*>& used, const std::vector<int>& labels,
    const std::map<int, ClusterId>& matched) {
  std::map<ClusterId, std::vector<double>> sums;
  for (size_t i = 0; i < used.size(); ++i) {
    auto m = matched.find(labels[i]);
    const auto& v = used[i]->content;
    if (m == matched.end() || v.empty()) continue;
    auto& sum = sums[m->second];
    sum.resize(v.size(), 0.0);
    for (size_t d = 0; d < v.size(); ++d) sum[d] += v[d];
  }
  for (auto it = sums.begin(); it != sums.end();) {
    double n2 = 0;
    for (double x : it->second) n2 += x * x;
    if (!(n2 > 0)) {  // members whose contents cancel out: no direction to compare with
      it = sums.erase(it);
      continue;
    }
    for (double& x : it->second) x /= std::sqrt(n2);
    ++it;
  }
  return sums;
}

double Cosine(const std::vector<float>& unit, const std::vector<double>& centroid) {
  double dot = 0;
  for (size_t d = 0; d < unit.size(); ++d) dot += unit[d] * centroid[d];
  return dot;
}

}  // namespace

Result<ReclusterPlan> PlanRecluster(const std::vector<ProviderProfile>& profiles,
                                    const std::vector<ClusterId>& clusters,
                                    const ReclusterOptions& o, ReclusterState* state) {
  ReclusterPlan plan;
  if (clusters.empty()) return Status::FailedPrecondition("there are no clusters to evaluate");

  size_t content_dim = 0;
  for (const auto& p : profiles) {
    if (p.content.empty()) continue;
    if (content_dim == 0) content_dim = p.content.size();
    if (p.content.size() != content_dim) {
      return Status::InvalidArgument("provider '" + p.provider + "' has a content centroid of " +
                                     std::to_string(p.content.size()) + " values, expected " +
                                     std::to_string(content_dim));
    }
  }

  // 1. Profiles.
  std::vector<const ProviderProfile*> used, little;
  std::vector<std::vector<float>> points;
  for (const auto& p : profiles) {
    auto home = p.cells.find(p.current);
    if (home == p.cells.end() || home->second.count < o.min_evidence) {
      plan.providers_skipped++;
      little.push_back(&p);
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
  // Counts one more run in a row of `provider` wanting `target`; returns the streak.
  auto bump_streak = [&](const ProviderId& provider, ClusterId target) {
    auto& streak = state->streaks[provider];
    streak = streak.first == target ? std::make_pair(target, streak.second + 1)
                                    : std::make_pair(target, 1);
    still_candidates.insert(provider);
    return streak.second;
  };
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
    const int streak = bump_streak(p.provider, target);
    candidates.push_back({p.provider, p.current, target, home.mean(), there->second.mean(),
                          home.count, there->second.count, streak});
  }
  // 5. Little-data providers, by content.
  const auto centroids = ContentCentroids(used, labels, matched);
  for (const ProviderProfile* p : little) {
    auto home = centroids.find(p->current);
    if (p->content.empty() || home == centroids.end()) continue;
    plan.providers_by_content++;
    const double home_similarity = Cosine(p->content, home->second);
    ClusterId target = p->current;
    double target_similarity = home_similarity;
    for (const auto& [c, centroid] : centroids) {  // ascending ids: ties keep the lower one
      const double sim = Cosine(p->content, centroid);
      if (sim > target_similarity) {
        target = c;
        target_similarity = sim;
      }
    }
    if (target == p->current || !(target_similarity - home_similarity > o.content_move_margin)) {
      continue;
    }
    MoveDecision d{p->provider, p->current, target, 0, 0, 0, 0, bump_streak(p->provider, target)};
    auto cell = [&](ClusterId c) {
      auto it = p->cells.find(c);
      return it == p->cells.end() ? LossCell() : it->second;
    };
    d.home_loss = cell(p->current).mean();
    d.home_evidence = cell(p->current).count;
    d.target_loss = cell(target).mean();
    d.target_evidence = cell(target).count;
    d.by_content = true;
    d.home_similarity = home_similarity;
    d.target_similarity = target_similarity;
    candidates.push_back(d);
  }
  // Providers that stopped being candidates lose their streak.
  for (auto it = state->streaks.begin(); it != state->streaks.end();) {
    it = still_candidates.count(it->first) ? std::next(it) : state->streaks.erase(it);
  }
  // Evidence before content (a measured gain outranks a similarity), then the largest gain.
  auto gain = [](const MoveDecision& m) {
    return m.by_content ? m.target_similarity - m.home_similarity : m.home_loss - m.target_loss;
  };
  std::sort(candidates.begin(), candidates.end(), [&](const auto& a, const auto& b) {
    if (a.by_content != b.by_content) return !a.by_content;
    if (gain(a) != gain(b)) return gain(a) > gain(b);
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
