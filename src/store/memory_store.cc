// MemoryStore: the Store contract kept in process memory (nothing survives the process).
// Used by tests, benchmarks and the replay; the durable store implements the same contract.
#include <map>
#include <mutex>

#include "dynspec/store.h"
#include "store/batch.h"

namespace dynspec {
namespace {

class MemoryStore final : public Store {
 public:
  Status Commit(const StoreBatch& batch) override {
    DYNSPEC_RETURN_IF_ERROR(store_batch::CheckSeenTimes(batch));
    DYNSPEC_RETURN_IF_ERROR(store_batch::CheckPartitionOps(batch));
    const int64_t now = store_batch::NowUnixMs();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& id : batch.delete_items) items_.erase(id);
    for (const auto& item : batch.put_items) {
      ItemRecord& stored = items_[item.id];
      std::vector<float> kept;
      if (item.embedding.empty()) kept = std::move(stored.embedding);  // the vector stays
      stored = item;
      if (item.embedding.empty()) stored.embedding = std::move(kept);
    }
    for (const auto& p : batch.put_providers) providers_[p.id] = p;
    for (ClusterId id : batch.delete_clusters) clusters_.erase(id);
    for (const auto& c : batch.put_clusters) clusters_[c.id] = c;
    for (const auto& id : batch.forget_events) events_.erase(id);
    for (size_t i = 0; i < batch.seen_events.size(); ++i) {
      events_[batch.seen_events[i]] = store_batch::SeenTime(batch, i, now);
    }
    for (const auto& [k, v] : batch.put_meta) meta_[k] = v;
    for (const auto& id : batch.delete_decisions) decisions_.erase(id);
    for (const auto& d : batch.put_decisions) decisions_[d.id] = d;
    for (const auto& l : batch.put_provider_losses) losses_[l.provider] = l;
    for (const auto& id : batch.delete_streaks) streaks_.erase(id);
    for (const auto& s : batch.put_streaks) streaks_[s.provider] = s;
    for (const auto& [cluster, through] : batch.truncate_partition_ops) {
      ops_.erase(ops_.lower_bound({cluster, 0}), ops_.upper_bound({cluster, through}));
    }
    for (const auto& op : batch.put_partition_ops) ops_[{op.cluster, op.sequence}] = op;
    return Status::Ok();
  }

  Status Backup(const std::string& dir) override {
    return Status::FailedPrecondition("the memory store keeps nothing durable to back up");
  }

  Status LoadAll(StoreBatch* out) const override {
    std::lock_guard<std::mutex> lock(mu_);
    *out = StoreBatch();
    for (const auto& [id, item] : items_) out->put_items.push_back(item);
    for (const auto& [id, p] : providers_) out->put_providers.push_back(p);
    for (const auto& [id, c] : clusters_) out->put_clusters.push_back(c);
    for (const auto& [id, t] : events_) {
      out->seen_events.push_back(id);
      out->seen_unix_ms.push_back(t);
    }
    for (const auto& [id, d] : decisions_) out->put_decisions.push_back(d);
    for (const auto& [id, l] : losses_) out->put_provider_losses.push_back(l);
    for (const auto& [id, s] : streaks_) out->put_streaks.push_back(s);
    out->put_meta = meta_;
    for (const auto& [key, op] : ops_) out->put_partition_ops.push_back(op);
    return Status::Ok();
  }

 private:
  mutable std::mutex mu_;
  std::map<ItemId, ItemRecord> items_;
  std::map<ProviderId, ProviderRecord> providers_;
  std::map<ClusterId, ClusterRecord> clusters_;
  std::map<EventId, int64_t> events_;  // id -> seen unix ms
  std::map<EventId, DecisionRecord> decisions_;
  std::map<ProviderId, ProviderLossRecord> losses_;
  std::map<ProviderId, ReclusterStreakRecord> streaks_;
  std::map<std::string, std::string> meta_;
  std::map<std::pair<ClusterId, uint64_t>, PartitionOpRecord> ops_;
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace dynspec
