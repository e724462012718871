// Internal to the store layer: the checks and defaults both stores apply to a StoreBatch, so
// the memory store and the durable store accept and store exactly the same batches.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dynspec/status.h"
#include "dynspec/store.h"

namespace dynspec::store_batch {

// InvalidArgument unless seen_unix_ms is empty or has one entry per seen_events.
Status CheckSeenTimes(const StoreBatch& batch);
// InvalidArgument when a partition change has sequence 0.
Status CheckPartitionOps(const StoreBatch& batch);
// The seen time of batch.seen_events[i]: its entry in seen_unix_ms, or now when the batch
// gives none.
int64_t SeenTime(const StoreBatch& batch, size_t i, int64_t now_unix_ms);
int64_t NowUnixMs();

}  // namespace dynspec::store_batch
