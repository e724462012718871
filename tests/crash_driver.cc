// crash_driver: the process that crash_test kills. It opens an Engine on a durable store in
// a given directory and, forever, ingests an item and sends feedback events on the items of
// this run. After every call that returned OK it prints one acknowledgment line and
// flushes stdout:
//
//   ACK ingest <item id> <item id>
//   ACK feedback <event id> <item id>
//   ACK move <provider>@<n> <cluster>
//
// Every 7th iteration n moves provider "prov-<n % 5>" to cluster (n / 7) % 3 (a migration of
// all its items between partitions).
// Before the first call it prints "READY" once the engine is open.
// Ids are unique per round: items "r<round>-i<n>", events "r<round>-e<n>@<item id>" (the
// event id names its item so the test can count stored events per item).
//
// usage: crash_driver <data dir> <sync_every_ms> <round>
// Any failed call ends the process with a message on stderr and a non-zero exit code.
//
// usage: crash_driver --index <data dir> <partitions dir> <probe file>
// Runs the workload of crash_index_probe.h on HNSW partitions (joins, a snapshot, more
// joins, re-embeddings, removals, a provider move), writes the probe of its index to the
// probe file (atomically), prints "DONE" and waits to be killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "crash_index_probe.h"
#include "dynspec/engine.h"
#include "dynspec/store.h"

namespace {

// Must match CrashOptions() in crash_test.cc.
dynspec::EngineOptions CrashOptions() {
  dynspec::EngineOptions o;
  o.embed.dim = 32;
  o.blend.k = 4;
  o.index.exact_search_max_items = 1 << 20;  // no HNSW build on every restart
  return o;
}

const char* const kWords[] = {"guitar",      "recipes", "travel",  "science", "football", "garden",
                              "history",     "cooking", "lessons", "reviews", "family",   "cars",
                              "photography", "music",   "design",  "health"};

int Fail(const char* what, const dynspec::Status& st) {
  std::fprintf(stderr, "crash_driver: %s: %s\n", what, st.ToString().c_str());
  return 3;
}

int RunIndexWorkload(const std::string& dir, const std::string& parts, const std::string& probe) {
  namespace ci = dynspec::crash_index;
  dynspec::DurableStoreOptions so;
  so.sync_every_ms = 10;
  auto store = dynspec::OpenDurableStore(dir, so);
  if (!store.ok()) return Fail("opening the store", store.status());
  auto opened = dynspec::Engine::Open(ci::Options(parts), std::move(store).value());
  if (!opened.ok()) return Fail("opening the engine", opened.status());
  auto engine = std::move(opened).value();
  for (size_t n = 0; n < ci::kItems; ++n) {
    auto st = engine->Ingest({ci::ItemId(n), "prov-" + std::to_string(n % 6), {ci::Text(n)}});
    if (!st.ok()) return Fail("ingest", st);
  }
  if (auto st = engine->BootstrapClusters(3); !st.ok()) return Fail("bootstrap", st);
  auto feed = [&](size_t n) {
    dynspec::FeedbackEvent fb;
    fb.event_id = "join-" + std::to_string(n);
    fb.item_id = ci::ItemId(n);
    fb.context.sparse = {{"slot=" + std::to_string(n % 4), 1.0f}};
    fb.responses = {{"click", static_cast<double>(n % 2)}};
    return engine->Feedback(fb).status();
  };
  for (size_t n = 0; n < ci::kSnapshotAfter; ++n) {
    if (auto st = feed(n); !st.ok()) return Fail("feedback", st);
  }
  if (auto st = engine->SnapshotPartitions(); !st.ok()) return Fail("snapshot", st);
  // After the snapshot: every kind of partition change, all logged, none in the snapshot.
  // Half the joins follow a prediction (their insert links among its search's candidates),
  // half search for themselves.
  for (size_t n = ci::kSnapshotAfter; n < ci::kItems; ++n) {
    if (n % 2 == 0) {
      auto p = engine->Predict({ci::ItemId(n), std::nullopt, "", {}});
      if (!p.ok()) return Fail("predict", p.status());
    }
    if (auto st = feed(n); !st.ok()) return Fail("feedback", st);
  }
  if (engine->Stats().joins_linked_among_candidates == 0) {
    return Fail("joins", dynspec::Status::Internal("no join linked among candidates"));
  }
  for (size_t n = 5; n < ci::kItems; n += 37) {
    auto st = engine->UpdateContent(ci::ItemId(n), {ci::Text(n + 500)});
    if (!st.ok()) return Fail("update", st);
  }
  for (size_t n = 7; n < ci::kItems; n += 41) {
    if (auto st = engine->Remove(ci::ItemId(n)); !st.ok()) return Fail("remove", st);
  }
  auto moved = engine->GetProvider("prov-2");
  if (!moved.ok()) return Fail("provider", moved.status());
  if (auto st = engine->MoveProvider("prov-2", (moved->cluster + 1) % 3); !st.ok()) {
    return Fail("move", st);
  }
  const std::string tmp = probe + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << ci::Probe(*engine);
    if (!out.flush()) return Fail("writing the probe", dynspec::Status::IoError(tmp));
  }
  if (std::rename(tmp.c_str(), probe.c_str()) != 0) {
    return Fail("renaming the probe", dynspec::Status::IoError(probe));
  }
  std::printf("DONE\n");
  std::fflush(stdout);
  for (;;) pause();  // the engine is never closed: the test kills this process
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--index") {
    return RunIndexWorkload(argv[2], argv[3], argv[4]);
  }
  if (argc != 4) {
    std::fprintf(stderr, "usage: crash_driver <data dir> <sync_every_ms> <round>\n");
    return 2;
  }
  const std::string dir = argv[1];
  dynspec::DurableStoreOptions so;
  so.sync_every_ms = std::atoi(argv[2]);
  const std::string round = argv[3];

  auto store = dynspec::OpenDurableStore(dir, so);
  if (!store.ok()) return Fail("opening the store", store.status());
  auto opened = dynspec::Engine::Open(CrashOptions(), std::move(store).value());
  if (!opened.ok()) return Fail("opening the engine", opened.status());
  auto engine = std::move(opened).value();
  std::printf("READY\n");  // not an acknowledgment: the engine is open
  std::fflush(stdout);

  std::mt19937 rng(static_cast<unsigned>(std::atoi(argv[3])) * 7919u + 1u);
  std::vector<std::string> items;
  uint64_t next_event = 0;
  for (uint64_t n = 0;; ++n) {
    const std::string item = "r" + round + "-i" + std::to_string(n);
    std::string text;
    for (int w = 0; w < 6; ++w) text += std::string(kWords[rng() % std::size(kWords)]) + " ";
    dynspec::Status st = engine->Ingest({item, "prov-" + std::to_string(n % 5), {text}});
    if (!st.ok()) return Fail("ingest", st);
    std::printf("ACK ingest %s %s\n", item.c_str(), item.c_str());
    std::fflush(stdout);
    items.push_back(item);

    if (n % 7 == 0) {
      const std::string provider = "prov-" + std::to_string(n % 5);
      const auto target = static_cast<dynspec::ClusterId>((n / 7) % 3);
      st = engine->MoveProvider(provider, target);
      if (!st.ok()) return Fail("move", st);
      std::printf("ACK move %s@%llu %u\n", provider.c_str(), static_cast<unsigned long long>(n),
                  target);
      std::fflush(stdout);
    }

    for (int j = 0; j < 3; ++j) {
      const std::string& target = items[rng() % items.size()];
      const std::string event = "r" + round + "-e" + std::to_string(next_event++) + "@" + target;
      dynspec::FeedbackEvent fb;
      fb.event_id = event;
      fb.item_id = target;
      fb.context.sparse = {{"slot=" + std::to_string(rng() % 4), 1.0f}};
      fb.responses = {{"click", static_cast<double>(rng() % 2)},
                      {"dwell_seconds", static_cast<double>(rng() % 120)}};
      auto r = engine->Feedback(fb);
      if (!r.ok()) return Fail("feedback", r.status());
      std::printf("ACK feedback %s %s\n", event.c_str(), target.c_str());
      std::fflush(stdout);
    }
  }
}
