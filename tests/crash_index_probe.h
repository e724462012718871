// Shared by crash_driver's --index mode and crash_test's KilledEngineKeepsItsIndex: the
// engine options, the workload and the probe of the index after a kill -9, so that the
// process that is killed and the test that reopens its directory agree on all three.
#pragma once

#include <cstdio>
#include <string>

#include "dynspec/engine.h"

namespace dynspec::crash_index {

constexpr size_t kItems = 400;
constexpr size_t kSnapshotAfter = 150;  // items served when the snapshots are written

inline EngineOptions Options(const std::string& partitions_dir) {
  EngineOptions o;
  o.embed.dim = 32;
  o.blend.k = 8;
  o.index.exact_search_max_items = 16;  // every cluster searches an HNSW graph
  // At most ef_search: joins link among their search's candidates, logged for the replay.
  o.index.hnsw_ef_construction = 32;
  o.partition_snapshot_dir = partitions_dir;
  o.partition_snapshot_interval_seconds = 0;  // only the explicit snapshot: it goes stale
  return o;
}

inline std::string ItemId(size_t n) { return "x-" + std::to_string(n); }

inline std::string Text(size_t n) {
  static const char* const kWords[] = {"guitar", "recipes", "travel",  "science", "football",
                                       "garden", "history", "cooking", "lessons", "reviews",
                                       "family", "cars",    "design",  "health",  "music"};
  std::string text;
  for (size_t w = 0; w < 5; ++w) text += std::string(kWords[(n * 7 + w * w * 3 + w) % 15]) + " ";
  return text + "n" + std::to_string(n % 23);
}

// Every item's neighbours with their similarities (bit-exact, as hex floats) and those of
// 40 inline items, one line each: equal strings mean equal search results.
inline std::string Probe(const Engine& e) {
  std::string out;
  char buf[64];
  auto line = [&](const std::string& what, const Result<Prediction>& p) {
    out += what;
    if (!p.ok()) {
      out += " missing\n";
      return;
    }
    for (const auto& c : p->contributions) {
      std::snprintf(buf, sizeof buf, " %s=%a", c.item_id.c_str(), c.similarity);
      out += buf;
    }
    out += "\n";
  };
  for (size_t n = 0; n < kItems; ++n) line(ItemId(n), e.Predict({ItemId(n), std::nullopt, "", {}}));
  for (size_t q = 0; q < 40; ++q) {
    PredictRequest r;
    r.inline_content = ItemContent{Text(1000 + q * 13)};
    r.inline_provider = "prov-" + std::to_string(q % 6);
    line("query-" + std::to_string(q), e.Predict(r));
  }
  return out;
}

}  // namespace dynspec::crash_index
