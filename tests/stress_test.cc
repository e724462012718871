// Concurrency stress: ingest, predict, feedback, content updates and provider moves from
// several threads at once. Run it under ThreadSanitizer (-DDYNSPEC_SANITIZE=thread) to prove
// the engine's locking; in a normal build it checks that the counts add up afterwards.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <random>
#include <thread>

#include "dynspec/engine.h"

namespace dynspec {
namespace {

std::string TopicText(int topic, int variant) {
  static const char* kTopics[] = {
      "guitar lessons gear reviews music songs", "recipes cooking kitchen family dinner",
      "travel destinations hotels flights adventure", "science physics space research discoveries"};
  return std::string(kTopics[topic % 4]) + " issue " + std::to_string(variant);
}

TEST(Stress, ConcurrentIngestPredictFeedbackAndMoves) {
  EngineOptions o;
  o.embed.dim = 32;
  o.blend.k = 8;
  o.index.exact_search_max_items = 16;  // exercise the HNSW path too
  // At most ef_search: joins link among the candidates of their search (Partition::Add).
  o.index.hnsw_ef_construction = 32;
  auto opened = Engine::Open(o);
  ASSERT_TRUE(opened.ok());
  Engine& engine = **opened;
  constexpr int kSeedItems = 200;
  for (int i = 0; i < kSeedItems; ++i) {
    ASSERT_TRUE(
        engine
            .Ingest(
                {"seed" + std::to_string(i), "prov" + std::to_string(i % 8), {TopicText(i % 4, i)}})
            .ok());
  }
  ASSERT_TRUE(engine.BootstrapClusters(4).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> ingested{0}, feedback_ok{0}, predictions_ok{0}, unexpected{0};
  std::vector<std::thread> threads;     // finite work
  std::vector<std::thread> predictors;  // run until `stop`
  threads.emplace_back([&] {            // ingest new items
    for (int i = 0; i < 300; ++i) {
      Status st = engine.Ingest({"new" + std::to_string(i),
                                 "prov" + std::to_string(i % 10),
                                 {TopicText(i % 4, 1000 + i)}});
      if (st.ok())
        ingested++;
      else
        unexpected++;
    }
  });
  for (int t = 0; t < 2; ++t) {  // feedback
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 1500; ++i) {
        const std::string id = "seed" + std::to_string(rng() % kSeedItems);
        Context c;
        c.sparse = {{"user=" + std::to_string(rng() % 50), 1.0f}};
        auto r = engine.Feedback(
            {"t" + std::to_string(t) + "-" + std::to_string(i),
             id,
             c,
             {{"click", double(rng() % 2)}, {"dwell_seconds", double(rng() % 100)}}});
        if (r.ok())
          feedback_ok++;
        else
          unexpected++;
      }
    });
  }
  for (int t = 0; t < 2; ++t) {  // predict, by id and inline
    predictors.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      while (!stop.load()) {
        PredictRequest req;
        if (rng() % 4 == 0) {
          req.inline_content = ItemContent{TopicText(rng() % 4, 5), {}};
          req.inline_provider = "prov" + std::to_string(rng() % 12);
        } else {
          req.item_id = "seed" + std::to_string(rng() % kSeedItems);
        }
        auto p = engine.Predict(req);
        if (!p.ok()) {
          unexpected++;
          continue;
        }
        double total = 0;
        for (const auto& c : p->contributions) total += c.weight;
        if (!p->contributions.empty() && std::abs(total - 1.0) > 1e-6) unexpected++;
        for (double h : p->heads) {
          if (!std::isfinite(h)) unexpected++;
        }
        predictions_ok++;
      }
    });
  }
  threads.emplace_back([&] {  // provider moves and content updates
    std::mt19937 rng(7);
    for (int i = 0; i < 40; ++i) {
      if (!engine.MoveProvider("prov" + std::to_string(rng() % 8), rng() % 4).ok()) unexpected++;
      if (!engine
               .UpdateContent("seed" + std::to_string(rng() % kSeedItems),
                              {TopicText(rng() % 4, 77)})
               .ok()) {
        unexpected++;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  for (auto& t : predictors) t.join();

  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(ingested.load(), 300);
  EXPECT_EQ(feedback_ok.load(), 3000);
  EXPECT_GT(predictions_ok.load(), 0);
  const EngineStats s = engine.Stats();
  EXPECT_EQ(s.items, uint64_t(kSeedItems + 300));
  EXPECT_EQ(s.feedback_events, 3000u);
  double evidence = 0;
  for (int i = 0; i < kSeedItems; ++i) {
    evidence += engine.GetItem("seed" + std::to_string(i))->model.evidence;
  }
  EXPECT_EQ(evidence, 3000);
  uint64_t served = 0;
  for (const auto& c : engine.ListClusters()) served += c.served_item_count;
  EXPECT_EQ(served, s.served_items);
  // Each served item joined once, whether it reused its prediction's neighbours or searched.
  EXPECT_EQ(s.joins, s.served_items);
  EXPECT_LE(s.joins_reusing_prediction, s.joins);
  EXPECT_GT(s.joins_linked_among_candidates, 0u);
  EXPECT_LE(s.joins_linked_among_candidates, s.joins);
}

// Ranking under concurrency: rank, answer the slates by event id (several threads may answer
// positions of the same decision at once), expire the rest, and remove candidates while
// their decisions are pending. Every decision must end resolved exactly once.
TEST(Stress, ConcurrentRankFeedbackAndExpiry) {
  EngineOptions o;
  o.embed.dim = 32;
  o.blend.k = 8;
  o.rank.expiry_check_ms = 0;
  o.recluster.period_seconds = 0;
  auto opened = Engine::Open(o);
  ASSERT_TRUE(opened.ok());
  Engine& engine = **opened;
  constexpr int kItems = 60;
  for (int i = 0; i < kItems; ++i) {
    ASSERT_TRUE(
        engine
            .Ingest(
                {"item" + std::to_string(i), "prov" + std::to_string(i % 4), {TopicText(i % 4, i)}})
            .ok());
  }
  std::mutex mu;
  std::vector<RankResult> ranked;  // guarded by mu
  std::atomic<bool> ranking_done{false};
  std::atomic<int> unexpected{0}, answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (int i = 0; i < 300; ++i) {
        RankRequest req;
        for (int c = 0; c < 5; ++c) {
          const std::string id = "item" + std::to_string((rng() % 10) * 6 + c);
          req.candidates.push_back(id);
        }
        req.slate_size = 2;
        auto r = engine.Rank(req);
        if (!r.ok()) {
          // A candidate may have been removed by the remover thread.
          if (r.status().code() != StatusCode::kNotFound) unexpected++;
          continue;
        }
        std::lock_guard lock(mu);
        ranked.push_back(*r);
      }
    });
  }
  for (int t = 0; t < 2; ++t) {  // answer positions of random decisions, sometimes twice
    threads.emplace_back([&, t] {
      std::mt19937 rng(200 + t);
      while (!ranking_done.load()) {
        RankResult r;
        {
          std::lock_guard lock(mu);
          if (ranked.empty()) continue;
          r = ranked[rng() % ranked.size()];
        }
        const auto& pick = r.slate[rng() % r.slate.size()];
        auto fb = engine.Feedback({r.event_id, pick.item_id, {}, {{"click", double(rng() % 2)}}});
        if (fb.ok()) {
          answered++;
        } else if (fb.status().code() != StatusCode::kAlreadyExists &&
                   fb.status().code() != StatusCode::kNotFound) {
          unexpected++;
        }
      }
    });
  }
  threads.emplace_back([&] {  // expiry sweeps with a clock far in the future, now and then
    while (!ranking_done.load()) {
      if (!engine.ExpireDecisions(0).ok()) unexpected++;
      std::this_thread::yield();
    }
  });
  threads.emplace_back([&] {  // removes a few candidates while decisions are pending
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!engine.Remove("item" + std::to_string(i * 6)).ok()) unexpected++;
    }
  });
  threads[0].join();
  threads[1].join();
  ranking_done = true;
  for (size_t t = 2; t < threads.size(); ++t) threads[t].join();
  auto swept = engine.ExpireDecisions(INT64_MAX);
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(unexpected.load(), 0);
  const EngineStats s = engine.Stats();
  EXPECT_EQ(s.pending_decisions, 0u);
  // Every served position was closed exactly once: by feedback or by expiry.
  EXPECT_EQ(uint64_t(answered.load()) + s.expired_positions, 2 * ranked.size());
}

}  // namespace
}  // namespace dynspec
