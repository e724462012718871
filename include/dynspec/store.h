// Store: where the engine keeps its state. An extension point: the engine holds a working
// copy in memory and writes every acknowledged change through a Store before it answers.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dynspec/status.h"
#include "dynspec/types.h"

namespace dynspec {

struct ItemRecord {
  ItemId id;
  ProviderId provider;
  uint64_t label = 0;  // engine-internal dense id; the partition label of the item
  bool served = false;
  uint64_t version = 0;
  std::vector<float> embedding;
  ModelState model;
};

struct ProviderRecord {
  ProviderId id;
  ClusterId cluster = 0;
};

struct ClusterRecord {
  ClusterId id = 0;
  ModelState model;  // the cluster's shared model (also the prior of every blend)
};

// A set of changes applied atomically: after Commit returns OK all of them are stored,
// after it fails none are. Items are upserted by id; providers and clusters likewise.
struct StoreBatch {
  std::vector<ItemRecord> put_items;
  std::vector<ItemId> delete_items;
  std::vector<ProviderRecord> put_providers;
  std::vector<ClusterRecord> put_clusters;
  std::vector<ClusterId> delete_clusters;
  std::vector<EventId> seen_events;  // feedback event ids, for idempotency after restart
  // Small metadata the engine checks on open (format version, embedding dimension, heads),
  // so a data directory is never reopened silently with an incompatible configuration.
  std::map<std::string, std::string> put_meta;
};

// Contract: Commit is atomic and, for durable stores, durable when it returns OK; it may be
// called from several threads at once. LoadAll returns everything committed so far.
class Store {
 public:
  virtual ~Store() = default;
  virtual Status Commit(const StoreBatch& batch) = 0;
  virtual Status LoadAll(StoreBatch* out) const = 0;
  // Writes a consistent copy of everything committed so far into `dir` (which must not
  // exist) while commits go on; opening that copy restores it. Stores that keep nothing
  // durable answer FailedPrecondition.
  virtual Status Backup(const std::string& dir) = 0;
};

// Keeps everything in memory: nothing survives the process.
std::unique_ptr<Store> NewMemoryStore();

}  // namespace dynspec
