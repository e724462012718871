// The fault test: runs crash_driver (an Engine on a durable store that acknowledges every
// write on stdout), kills it with SIGKILL after a random 50-300 ms, reopens the same data
// directory and checks that everything acknowledged survived, that at most the one
// in-flight call landed beyond that, and that it landed whole (an item's evidence equals
// the number of its stored event ids). Rounds continue on the same directory and alternate
// between syncing every commit and group commit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crash_index_probe.h"
#include "dynspec/engine.h"
#include "dynspec/store.h"

#ifndef CRASH_DRIVER_PATH
#error "CRASH_DRIVER_PATH must name the crash_driver executable"
#endif

namespace dynspec {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Must match CrashOptions() in crash_driver.cc.
EngineOptions CrashOptions() {
  EngineOptions o;
  o.embed.dim = 32;
  o.blend.k = 4;
  o.index.exact_search_max_items = 1 << 20;  // no HNSW build on every restart
  return o;
}

struct Ack {
  std::string kind;  // "ingest" or "feedback"
  std::string id;    // item id or event id
  std::string item;
};

struct RoundOutput {
  std::vector<Ack> acks;
  bool killed = false;  // ended by our SIGKILL (not by exiting on its own)
  int exit_status = 0;  // waitpid status
  bool double_open_checked = false;
  Status double_open;  // what a second open of the directory said while it ran
};

// Starts the driver, reads its acknowledgments for `window` (counted from its READY line,
// or from its start when `from_start`, so that some kills land while it recovers), kills
// it and reads what it had written before it died.
RoundOutput RunDriver(const std::string& dir, int sync_every_ms, int round,
                      std::chrono::milliseconds window, bool from_start) {
  RoundOutput out;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return out;
  }
  std::string path = CRASH_DRIVER_PATH;
  std::string sync = std::to_string(sync_every_ms);
  std::string r = std::to_string(round);
  std::vector<char*> argv = {path.data(), const_cast<char*>(dir.c_str()), sync.data(), r.data(),
                             nullptr};
  const auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);  // the duplicate does not inherit O_CLOEXEC
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    close(fds[0]);
    return out;
  }

  std::string text;
  char buf[4096];
  bool eof = false;
  bool ready = from_start;
  // Waiting for READY is bounded: an engine that cannot open within 20 s is a failure the
  // checks below report (nothing acknowledged, and the driver's stderr).
  auto deadline = from_start ? start + window : start + std::chrono::seconds(20);
  while (!eof && Clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fds[0], POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0)));
    if (n > 0) {
      ssize_t got = read(fds[0], buf, sizeof buf);
      if (got <= 0) {
        eof = true;
      } else {
        text.append(buf, got);
      }
    }
    if (!ready && text.find("READY\n") != std::string::npos) {
      ready = true;
      deadline = Clock::now() + window;
    }
    // While the driver holds the directory, opening it here must be refused.
    if (!out.double_open_checked && text.find("ACK") != std::string::npos) {
      auto second = OpenDurableStore(dir, DurableStoreOptions());
      out.double_open = second.ok() ? Status::Ok() : second.status();
      out.double_open_checked = true;
    }
  }
  kill(pid, SIGKILL);
  // What the driver wrote before it died was acknowledged: read the pipe to its end.
  ssize_t got;
  while ((got = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, got);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  out.exit_status = status;
  out.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;

  // Complete lines only: a torn last line (if any) is treated as not acknowledged.
  std::istringstream lines(text.substr(0, text.rfind('\n') + 1));
  std::string line;
  while (std::getline(lines, line)) {
    if (line == "READY") continue;
    std::istringstream fields(line);
    std::string tag;
    Ack a;
    fields >> tag >> a.kind >> a.id >> a.item;
    if (tag != "ACK" || (a.kind != "ingest" && a.kind != "feedback" && a.kind != "move") ||
        a.item.empty()) {
      ADD_FAILURE() << "unexpected driver output: " << line;
      continue;
    }
    out.acks.push_back(a);
  }
  return out;
}

std::string ItemOfEvent(const std::string& event) {
  size_t at = event.find('@');
  return at == std::string::npos ? std::string() : event.substr(at + 1);
}

TEST(CrashTest, KilledDriverLosesNothingAcknowledged) {
  const fs::path root =
      fs::temp_directory_path() / ("dynspec-crash-test-" + std::to_string(getpid()));
  fs::remove_all(root);
  // Removed at the end, also when an assertion stops the test early, unless
  // DYNSPEC_KEEP_CRASH_DIR is set (to look at a failing directory).
  struct Cleanup {
    fs::path root;
    ~Cleanup() {
      std::error_code ec;
      if (!std::getenv("DYNSPEC_KEEP_CRASH_DIR")) fs::remove_all(root, ec);
    }
  } cleanup{root};
  const std::string dir = (root / "data").string();
  const unsigned seed = std::random_device()();
  std::mt19937 rng(seed);
  std::cout << "seed " << seed << ", data " << dir << "\n";

  constexpr int kRounds = 24;
  std::set<ItemId> known_items;    // acknowledged or found stored so far
  std::set<EventId> known_events;  // likewise
  std::map<ItemId, int> acked_feedbacks;
  std::map<ProviderId, ClusterId> acked_cluster;  // last acknowledged move per provider
  int total_acks = 0, in_flight_landed = 0, double_open_checks = 0;
  const auto test_start = Clock::now();

  for (int round = 0; round < kRounds; ++round) {
    const int sync_ms = round % 2 == 0 ? 0 : 50;
    const auto window = std::chrono::milliseconds(50 + rng() % 251);
    const bool from_start = round % 4 == 3;  // every 4th kill may land during recovery
    SCOPED_TRACE("round " + std::to_string(round) + ", sync_every_ms " + std::to_string(sync_ms) +
                 ", killed " + std::to_string(window.count()) + " ms after " +
                 (from_start ? "start" : "READY"));
    RoundOutput run = RunDriver(dir, sync_ms, round, window, from_start);
    ASSERT_TRUE(run.killed) << "the driver ended on its own (wait status " << run.exit_status
                            << "); see its stderr above";
    if (run.double_open_checked) {
      ++double_open_checks;
      EXPECT_EQ(run.double_open.code(), StatusCode::kFailedPrecondition)
          << run.double_open.ToString();
      EXPECT_NE(run.double_open.message().find("is in use by another process"), std::string::npos)
          << run.double_open.ToString();
    }
    total_acks += run.acks.size();
    std::cout << "round " << round << ": sync_every_ms " << sync_ms << ", killed " << window.count()
              << " ms after " << (from_start ? "start" : "READY") << ", " << run.acks.size()
              << " acknowledged calls\n";
    std::set<ItemId> acked_items;
    std::vector<std::pair<EventId, ItemId>> round_events;
    // Provider moves: the last acknowledged target per provider, and the one move that may
    // have been in flight (the driver's next move after its last acknowledged one).
    long long last_move_n = -7;
    for (const Ack& a : run.acks) {
      if (a.kind == "move") {
        const size_t at = a.id.find('@');
        last_move_n = std::stoll(a.id.substr(at + 1));
        acked_cluster[a.id.substr(0, at)] = static_cast<ClusterId>(std::stoul(a.item));
      } else if (a.kind == "ingest") {
        acked_items.insert(a.id);
      } else {
        ++acked_feedbacks[a.item];
        round_events.emplace_back(a.id, a.item);
        EXPECT_EQ(ItemOfEvent(a.id), a.item);
      }
    }
    known_items.insert(acked_items.begin(), acked_items.end());
    for (const auto& [e, item] : round_events) known_events.insert(e);

    // Read what survived, without changing it.
    const std::string copy = (root / ("copy-" + std::to_string(round))).string();
    {
      auto opened = OpenDurableStore(dir, DurableStoreOptions());
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      auto store = std::move(opened).value();
      StoreBatch all;
      Status st = store->LoadAll(&all);
      ASSERT_TRUE(st.ok()) << st.ToString();
      std::map<ItemId, double> evidence;
      for (const auto& r : all.put_items) evidence[r.id] = r.model.evidence;
      std::set<EventId> events(all.seen_events.begin(), all.seen_events.end());
      std::map<ItemId, int> stored_feedbacks;
      for (const auto& e : events) ++stored_feedbacks[ItemOfEvent(e)];

      // Everything acknowledged (this round or earlier) or seen stored before is there.
      for (const auto& id : known_items) EXPECT_TRUE(evidence.count(id)) << "lost item " << id;
      for (const auto& e : known_events) EXPECT_TRUE(events.count(e)) << "lost event " << e;
      // Beyond that, at most the single in-flight call landed.
      int unacked = 0;
      for (const auto& [id, ev] : evidence) unacked += !known_items.count(id);
      for (const auto& e : events) unacked += !known_events.count(e);
      EXPECT_LE(unacked, 1);
      in_flight_landed += unacked;
      // All or nothing: an item's evidence is the number of its stored event ids, which is
      // the number acknowledged or that plus the in-flight one.
      for (const auto& [id, ev] : evidence) {
        const int stored = stored_feedbacks.count(id) ? stored_feedbacks.at(id) : 0;
        const int acked = acked_feedbacks.count(id) ? acked_feedbacks.at(id) : 0;
        EXPECT_EQ(ev, stored) << id;
        EXPECT_GE(stored, acked) << id;
        EXPECT_LE(stored, acked + 1) << id;
      }
      for (const auto& [id, n] : stored_feedbacks) EXPECT_TRUE(evidence.count(id)) << id;
      for (const auto& [id, ev] : evidence) known_items.insert(id);
      known_events.insert(events.begin(), events.end());
      ASSERT_TRUE(store->Backup(copy).ok());
    }

    // On a copy: the engine opens, and acknowledged event ids are refused as applied.
    {
      auto store = OpenDurableStore(copy, DurableStoreOptions());
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      auto engine = Engine::Open(CrashOptions(), std::move(store).value());
      ASSERT_TRUE(engine.ok()) << engine.status().ToString();
      for (const auto& id : acked_items) {
        auto item = (*engine)->GetItem(id);
        ASSERT_TRUE(item.ok()) << item.status().ToString();
        EXPECT_GE(item->model.evidence, acked_feedbacks[id]);
      }
      for (size_t i = 0; i < round_events.size();
           i += std::max<size_t>(1, round_events.size() / 5)) {
        const auto& [event, item] = round_events[i];
        auto again = (*engine)->Feedback({event, item, {}, {{"click", 1}}});
        ASSERT_FALSE(again.ok()) << event;
        EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();
      }
      // Moves: every acknowledged move holds (or the in-flight one replaced it), and every
      // item is in exactly one partition: its provider's.
      const long long next_n = last_move_n + 7;
      const ProviderId in_flight_provider = "prov-" + std::to_string(next_n % 5);
      const auto in_flight_target = static_cast<ClusterId>((next_n / 7) % 3);
      bool in_flight_move_landed = false;
      for (const auto& [provider, cluster] : acked_cluster) {
        auto info = (*engine)->GetProvider(provider);
        ASSERT_TRUE(info.ok()) << provider;
        if (provider == in_flight_provider && info->cluster == in_flight_target) {
          in_flight_move_landed = true;
          continue;
        }
        EXPECT_EQ(info->cluster, cluster) << "lost move of " << provider;
      }
      // A move that landed unacknowledged is the state later rounds must keep.
      if (in_flight_move_landed) acked_cluster[in_flight_provider] = in_flight_target;
      uint64_t served = 0, in_partitions = 0;
      for (const auto& c : (*engine)->ListClusters()) in_partitions += c.served_item_count;
      for (const auto& id : known_items) {
        auto item = (*engine)->GetItem(id);
        if (!item.ok()) continue;
        served += item->served;
        EXPECT_EQ(item->cluster, (*engine)->GetProvider(item->provider)->cluster) << id;
      }
      EXPECT_EQ(in_partitions, served);
      EXPECT_EQ(in_partitions, (*engine)->Stats().served_items);
      if (!round_events.empty()) {
        const auto& [event, item] = round_events.back();
        auto again = (*engine)->Feedback({event, item, {}, {{"click", 1}}});
        EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << event;
      }
    }
    fs::remove_all(copy);
  }
  std::cout
      << kRounds << " rounds, " << total_acks << " acknowledged calls, " << in_flight_landed
      << " unacknowledged in-flight calls landed whole, " << double_open_checks
      << " double-open checks, "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - test_start).count()
      << " ms\n";
  EXPECT_GT(total_acks, 0);
}

// A kill -9 of an engine with HNSW partitions whose snapshots are stale (written part way,
// then joins, re-embeddings, removals and a move): the reopened engine answers every search
// exactly as the killed one did just before the kill, from the snapshots plus the logged
// changes, with nothing rebuilt or reconciled.
TEST(CrashTest, KilledEngineKeepsItsIndex) {
  namespace ci = crash_index;
  const fs::path root =
      fs::temp_directory_path() / ("dynspec-crash-index-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  struct Cleanup {
    fs::path root;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(root, ec);
    }
  } cleanup{root};
  const std::string dir = (root / "data").string(), parts = (root / "partitions").string(),
                    probe = (root / "probe.txt").string();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0) << std::strerror(errno);
  std::string path = CRASH_DRIVER_PATH, mode = "--index";
  std::vector<char*> argv = {path.data(),
                             mode.data(),
                             const_cast<char*>(dir.c_str()),
                             const_cast<char*>(parts.c_str()),
                             const_cast<char*>(probe.c_str()),
                             nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  ASSERT_GT(pid, 0) << std::strerror(errno);
  std::string text;
  char buf[256];
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (text.find("DONE\n") == std::string::npos && Clock::now() < deadline) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) {
      ssize_t got = read(fds[0], buf, sizeof buf);
      if (got <= 0) break;
      text.append(buf, got);
    }
  }
  kill(pid, SIGKILL);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_NE(text.find("DONE\n"), std::string::npos) << "the driver did not finish its workload";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  std::ifstream in(probe, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(before.empty());

  auto store = OpenDurableStore(dir, DurableStoreOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  StoreBatch all;
  ASSERT_TRUE((*store)->LoadAll(&all).ok());
  // The snapshots are stale: everything after them is in the change log.
  EXPECT_GE(all.put_partition_ops.size(), ci::kItems - ci::kSnapshotAfter);
  testing::internal::CaptureStderr();
  auto engine = Engine::Open(ci::Options(parts), std::move(store).value());
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ(log, "");  // no snapshot rebuilt, no partition reconciled
  const std::string after = ci::Probe(**engine);
  if (after != before) {
    std::istringstream a(before), b(after);
    std::string la, lb;
    size_t differing = 0, lines = 0;
    while (std::getline(a, la) && std::getline(b, lb)) {
      ++lines;
      if (la != lb && differing++ == 0) ADD_FAILURE() << "first difference:\n" << la << "\n" << lb;
    }
    ADD_FAILURE() << differing << " of " << lines << " probe lines differ after the kill";
  }
  size_t hnsw_clusters = 0;
  for (const auto& c : (*engine)->ListClusters()) hnsw_clusters += c.served_item_count > 16;
  EXPECT_GE(hnsw_clusters, 2u);  // graphs, not exact scans
}

}  // namespace
}  // namespace dynspec
