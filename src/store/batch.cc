#include "store/batch.h"

#include <chrono>
#include <string>

namespace dynspec::store_batch {

Status CheckSeenTimes(const StoreBatch& batch) {
  if (batch.seen_unix_ms.empty() || batch.seen_unix_ms.size() == batch.seen_events.size()) {
    return Status::Ok();
  }
  return Status::InvalidArgument("store batch has " + std::to_string(batch.seen_unix_ms.size()) +
                                 " seen_unix_ms for " + std::to_string(batch.seen_events.size()) +
                                 " seen_events; give none or one per event");
}

Status CheckPartitionOps(const StoreBatch& batch) {
  for (const auto& op : batch.put_partition_ops) {
    if (op.sequence == 0) {
      return Status::InvalidArgument("partition change of cluster " + std::to_string(op.cluster) +
                                     " for label " + std::to_string(op.label) + " has sequence 0");
    }
  }
  return Status::Ok();
}

int64_t SeenTime(const StoreBatch& batch, size_t i, int64_t now_unix_ms) {
  return batch.seen_unix_ms.empty() ? now_unix_ms : batch.seen_unix_ms[i];
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace dynspec::store_batch
