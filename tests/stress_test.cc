// Concurrency stress: ingest, predict, feedback, content updates and provider moves from
// several threads at once. Run it under ThreadSanitizer (-DDYNSPEC_SANITIZE=thread) to prove
// the engine's locking; in a normal build it checks that the counts add up afterwards.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
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
  o.index.exact_search_max_items = 64;  // exercise the HNSW path too
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
}

}  // namespace
}  // namespace dynspec
