// Engine end to end: ingest, cluster bootstrap, predict with explanations, feedback and
// write-back, own-model dominance, reward changes, provider moves, restart from the store,
// and bad input that must change nothing.
#include "dynspec/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <numeric>
#include <set>
#include <thread>

#include "test_util.h"

namespace dynspec {
namespace {

// Forwards to a store that outlives the engine, so a test can reopen an engine over it,
// and can be told to fail commits.
class TestStore final : public Store {
 public:
  explicit TestStore(std::shared_ptr<Store> inner, std::shared_ptr<bool> fail = nullptr)
      : inner_(std::move(inner)), fail_(std::move(fail)) {}
  Status Commit(const StoreBatch& batch) override {
    if (fail_ && *fail_) return Status::IoError("injected commit failure");
    return inner_->Commit(batch);
  }
  Status LoadAll(StoreBatch* out) const override { return inner_->LoadAll(out); }
  Status Backup(const std::string& dir) override { return inner_->Backup(dir); }

 private:
  std::shared_ptr<Store> inner_;
  std::shared_ptr<bool> fail_;
};

EngineOptions SmallOptions() {
  EngineOptions o;
  o.embed.dim = 64;
  o.blend.k = 4;
  return o;
}

const std::vector<std::pair<std::string, std::string>> kMusic = {
    {"m1", "guitar magazine with guitar lessons, gear reviews and songs for guitarists"},
    {"m2", "guitar player lessons and gear reviews for every guitarist"},
    {"m3", "bass guitar and guitar gear reviews, lessons and songs"},
};
const std::vector<std::pair<std::string, std::string>> kFood = {
    {"f1", "healthy recipes, cooking tips and kitchen ideas for families"},
    {"f2", "quick family recipes and cooking ideas for busy kitchens"},
    {"f3", "baking recipes, desserts and cooking techniques for home kitchens"},
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backing_ = NewMemoryStore();
    fail_ = std::make_shared<bool>(false);
    Reopen();
    for (const auto& [id, text] : kMusic)
      ASSERT_TRUE(engine_->Ingest({id, "MusicCo", {text}}).ok());
    for (const auto& [id, text] : kFood) ASSERT_TRUE(engine_->Ingest({id, "FoodCo", {text}}).ok());
    ASSERT_TRUE(engine_->BootstrapClusters(2).ok());
  }
  void Reopen() {
    engine_.reset();
    auto e = Engine::Open(SmallOptions(), std::make_unique<TestStore>(backing_, fail_));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  void Like(const std::string& item, double like, int times) {
    for (int i = 0; i < times; ++i) {
      auto r = engine_->Feedback({"", item, {}, {{"like", like}}});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  Prediction Predict(const std::string& item) {
    auto p = engine_->Predict({item});
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : Prediction();
  }
  static double Like(const Prediction& p) { return p.heads[1]; }

  std::shared_ptr<Store> backing_;
  std::shared_ptr<bool> fail_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, BootstrapSeparatesProvidersByContent) {
  auto music = engine_->GetProvider("MusicCo");
  auto food = engine_->GetProvider("FoodCo");
  ASSERT_TRUE(music.ok() && food.ok());
  EXPECT_NE(music->cluster, food->cluster);
  EXPECT_EQ(music->item_count, 3u);
  EXPECT_EQ(engine_->ListClusters().size(), 2u);
}

TEST_F(EngineTest, ColdItemIsPredictedFromServedNeighboursWithExplanations) {
  const double cold = Like(Predict("m2"));
  EXPECT_NEAR(cold, 0.5, 1e-9);  // nothing learned anywhere yet
  Like("m1", 1, 30);
  auto info = engine_->GetItem("m1");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->served);
  EXPECT_EQ(info->model.evidence, 30);

  Prediction p = Predict("m2");
  // m2 borrows m1's learned preference (the cluster model learned the same events).
  EXPECT_GT(Like(p), 0.65);
  EXPECT_NEAR(Like(p), Like(Predict("m1")), 0.1);
  double total = 0;
  bool saw_m1 = false;
  for (const auto& c : p.contributions) {
    total += c.weight;
    if (c.item_id == "m1") {
      saw_m1 = true;
      EXPECT_EQ(c.source, Contribution::Source::kNeighbour);
      EXPECT_GT(c.similarity, 0.2);
      EXPECT_EQ(c.evidence, 30);
    }
    EXPECT_NE(c.source, Contribution::Source::kSelf);  // m2 has no evidence of its own
  }
  EXPECT_TRUE(saw_m1);
  EXPECT_NEAR(total, 1.0, 1e-9);
  // The other cluster learned nothing from MusicCo's feedback.
  EXPECT_NEAR(Like(Predict("f1")), 0.5, 1e-9);
}

TEST_F(EngineTest, NewItemsOwnModelStartsFromTheBlendAndThenDominates) {
  Like("m1", 1, 40);
  Like("m2", 0, 1);
  auto m2 = engine_->GetItem("m2");
  ASSERT_TRUE(m2.ok());
  // Initialized from m1's (positive) weights, then one negative step: still positive bias.
  EXPECT_GT(m2->model.weights[1 * (1 + 64)], 0.0f);
  Like("m2", 0, 200);
  Prediction p = Predict("m2");
  EXPECT_LT(Like(p), 0.3);
  ASSERT_FALSE(p.contributions.empty());
  EXPECT_EQ(p.contributions[0].source, Contribution::Source::kSelf);
  EXPECT_GT(p.contributions[0].weight, 0.9);
}

// An engine of its own with the fixture's catalog and clusters, m1 and m3 served.
std::unique_ptr<Engine> EngineWithServedMusic() {
  auto e = Engine::Open(SmallOptions(), std::make_unique<TestStore>(NewMemoryStore()));
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  std::unique_ptr<Engine> engine = std::move(e).value();
  for (const auto& [id, text] : kMusic) EXPECT_TRUE(engine->Ingest({id, "MusicCo", {text}}).ok());
  for (const auto& [id, text] : kFood) EXPECT_TRUE(engine->Ingest({id, "FoodCo", {text}}).ok());
  EXPECT_TRUE(engine->BootstrapClusters(2).ok());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(engine->Feedback({"", "m1", {}, {{"like", 1}}}).ok());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(engine->Feedback({"", "m3", {}, {{"like", 0}}}).ok());
  return engine;
}

// m2's model is the same in both engines, bit for bit.
void ExpectSameModelOfM2(const Engine& a, const Engine& b) {
  auto in_a = a.GetItem("m2");
  auto in_b = b.GetItem("m2");
  ASSERT_TRUE(in_a.ok() && in_b.ok());
  EXPECT_EQ(in_a->served, in_b->served);
  EXPECT_EQ(in_a->model.weights, in_b->model.weights);
  EXPECT_EQ(in_a->model.sq_grad, in_b->model.sq_grad);
  EXPECT_EQ(in_a->model.evidence, in_b->model.evidence);
}

TEST_F(EngineTest, FirstFeedbackLearnsFromThePredictionsNeighboursWithoutSearching) {
  std::unique_ptr<Engine> searched = EngineWithServedMusic();
  std::unique_ptr<Engine> reused = EngineWithServedMusic();
  ASSERT_TRUE(reused->Predict({"m2"}).ok());
  const FeedbackEvent like{"", "m2", {}, {{"like", 1}}};
  ASSERT_TRUE(searched->Feedback(like).ok());
  ASSERT_TRUE(reused->Feedback(like).ok());
  EXPECT_EQ(searched->Stats().joins, 3u);
  EXPECT_EQ(searched->Stats().joins_reusing_prediction, 0u);
  EXPECT_EQ(reused->Stats().joins, 3u);
  EXPECT_EQ(reused->Stats().joins_reusing_prediction, 1u);
  // Nothing changed between the prediction and the feedback, so the prediction blended the
  // neighbours a search finds: the same first model, bit for bit.
  ExpectSameModelOfM2(*searched, *reused);
  // Served items remember nothing: their later feedback never joins again.
  ASSERT_TRUE(reused->Predict({"m2"}).ok());
  ASSERT_TRUE(reused->Feedback(like).ok());
  EXPECT_EQ(reused->Stats().joins, 3u);
}

TEST_F(EngineTest, FirstFeedbackFineTunesTheModelItsPredictionUsed) {
  // A neighbour learns between m2's prediction and m2's first feedback. The feedback starts
  // from the blend that made the prediction (the seed's loop fine-tunes the blended model),
  // so m2 ends as it would had it been fed back right when it was predicted.
  std::unique_ptr<Engine> at_prediction = EngineWithServedMusic();
  std::unique_ptr<Engine> later = EngineWithServedMusic();
  const FeedbackEvent like{"", "m2", {}, {{"like", 1}}};
  ASSERT_TRUE(at_prediction->Feedback(like).ok());
  ASSERT_TRUE(later->Predict({"m2"}).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(later->Feedback({"", "m1", {}, {{"like", 0}}}).ok());
  ASSERT_TRUE(later->Feedback(like).ok());
  EXPECT_EQ(later->Stats().joins_reusing_prediction, 1u);
  ExpectSameModelOfM2(*at_prediction, *later);
  // The neighbour did change: a search now blends a different first model.
  std::unique_ptr<Engine> searched = EngineWithServedMusic();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(searched->Feedback({"", "m1", {}, {{"like", 0}}}).ok());
  ASSERT_TRUE(searched->Feedback(like).ok());
  auto now = searched->GetItem("m2");
  auto then = later->GetItem("m2");
  ASSERT_TRUE(now.ok() && then.ok());
  EXPECT_NE(now->model.weights, then->model.weights);
}

TEST_F(EngineTest, FirstFeedbackReusesThePredictionAfterALittleGrowth) {
  std::unique_ptr<Engine> engine = EngineWithServedMusic();
  ASSERT_TRUE(engine->Predict({"m2"}).ok());
  // One item joins the partition (within k = 4 of the list's partition size).
  ASSERT_TRUE(engine->Ingest({"m4", "MusicCo", {"guitar amplifier reviews"}}).ok());
  ASSERT_TRUE(engine->Feedback({"", "m4", {}, {{"like", 1}}}).ok());
  ASSERT_TRUE(engine->Feedback({"", "m2", {}, {{"like", 1}}}).ok());
  EXPECT_EQ(engine->Stats().joins, 4u);
  EXPECT_EQ(engine->Stats().joins_reusing_prediction, 1u);
}

TEST_F(EngineTest, FirstFeedbackSearchesAgainAfterTheCatalogChanged) {
  const std::vector<std::pair<std::string, std::function<Status(Engine&)>>> changes = {
      {"removal", [](Engine& e) { return e.Remove("m1"); }},
      {"re-embedding",
       [](Engine& e) { return e.UpdateContent("m3", {"electric guitar amplifiers and pedals"}); }},
      {"provider move",
       [](Engine& e) {
         auto food = e.GetProvider("FoodCo");
         return food.ok() ? e.MoveProvider("MusicCo", food->cluster) : food.status();
       }},
      {"partition growth beyond k = 4 items",
       [](Engine& e) {
         for (int i = 0; i < 5; ++i) {
           const std::string id = "m-new" + std::to_string(i);
           Status st = e.Ingest({id, "MusicCo", {"guitar amplifier reviews " + id}});
           if (st.ok()) st = e.Feedback({"", id, {}, {{"like", 1}}}).status();
           if (!st.ok()) return st;
         }
         return Status::Ok();
       }},
  };
  for (const auto& [name, change] : changes) {
    SCOPED_TRACE(name);
    std::unique_ptr<Engine> searched = EngineWithServedMusic();
    std::unique_ptr<Engine> predicted = EngineWithServedMusic();
    ASSERT_TRUE(predicted->Predict({"m2"}).ok());
    ASSERT_TRUE(change(*searched).ok());
    ASSERT_TRUE(change(*predicted).ok());
    const FeedbackEvent like{"", "m2", {}, {{"like", 1}}};
    ASSERT_TRUE(searched->Feedback(like).ok());
    ASSERT_TRUE(predicted->Feedback(like).ok());
    EXPECT_EQ(predicted->Stats().joins_reusing_prediction, 0u);
    ExpectSameModelOfM2(*searched, *predicted);
  }
}

TEST_F(EngineTest, InlineContentUsesTheProvidersClusterWithoutStoringAnything) {
  Like("f1", 1, 20);
  PredictRequest req;
  req.inline_content = ItemContent{"family dinner recipes and cooking", {}};
  req.inline_provider = "FoodCo";
  auto p = engine_->Predict(req);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_GT(Like(*p), 0.6);
  // An unknown provider goes to the nearest cluster by content.
  req.inline_provider = "NewKitchenMag";
  auto q = engine_->Predict(req);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->cluster, engine_->GetProvider("FoodCo")->cluster);
  EXPECT_EQ(engine_->Stats().items, 6u);
  EXPECT_FALSE(engine_->GetProvider("NewKitchenMag").ok());
}

TEST_F(EngineTest, NewProviderJoinsTheNearestCluster) {
  ASSERT_TRUE(engine_->Ingest({"x1", "Chef Weekly", {"recipes and cooking for the kitchen"}}).ok());
  EXPECT_EQ(engine_->GetProvider("Chef Weekly")->cluster, engine_->GetProvider("FoodCo")->cluster);
}

TEST_F(EngineTest, ChangingRewardKeepsModels) {
  Like("m1", 1, 10);
  const auto before = engine_->GetItem("m1")->model.weights;
  const double r1 = Predict("m1").expected_reward;
  ASSERT_TRUE(engine_->SetRewardTerms({{"like", 10, 0}}).ok());
  EXPECT_EQ(engine_->GetItem("m1")->model.weights, before);
  const Prediction p = Predict("m1");
  EXPECT_NEAR(p.expected_reward, 10 * Like(p), 1e-9);
  EXPECT_NE(p.expected_reward, r1);
  EXPECT_FALSE(engine_->SetRewardTerms({{"bogus", 1, 0}}).ok());
  EXPECT_EQ(engine_->RewardTerms().size(), 1u);
}

TEST_F(EngineTest, MoveProviderMigratesItemsWithTheirModels) {
  Like("m1", 1, 10);
  const ClusterId food = engine_->GetProvider("FoodCo")->cluster;
  const auto weights = engine_->GetItem("m1")->model.weights;
  ASSERT_TRUE(engine_->MoveProvider("MusicCo", food).ok());
  EXPECT_EQ(engine_->GetItem("m1")->cluster, food);
  EXPECT_EQ(engine_->GetItem("m1")->model.weights, weights);
  size_t served = 0;
  for (const auto& c : engine_->ListClusters()) {
    if (c.id == food) served = c.served_item_count;
  }
  EXPECT_EQ(served, 1u);
  EXPECT_FALSE(engine_->MoveProvider("Nobody", food).ok());
  EXPECT_FALSE(engine_->BootstrapClusters(2).ok());  // feedback exists now
}

TEST_F(EngineTest, RestartRecoversModelsAndPredictions) {
  Like("m1", 1, 15);
  Like("f2", 0, 15);
  ASSERT_TRUE(engine_->Feedback({"evt-1", "m3", {}, {{"like", 1}}}).ok());
  const Prediction before = Predict("m2");
  const auto m1 = engine_->GetItem("m1")->model.weights;
  Reopen();
  EXPECT_EQ(engine_->GetItem("m1")->model.weights, m1);
  const Prediction after = Predict("m2");
  EXPECT_EQ(after.heads, before.heads);
  ASSERT_EQ(after.contributions.size(), before.contributions.size());
  for (size_t i = 0; i < after.contributions.size(); ++i) {
    EXPECT_EQ(after.contributions[i].item_id, before.contributions[i].item_id);
    EXPECT_DOUBLE_EQ(after.contributions[i].weight, before.contributions[i].weight);
  }
  // Event ids stay applied across a restart.
  EXPECT_EQ(engine_->Feedback({"evt-1", "m3", {}, {{"like", 1}}}).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(engine_->Stats().feedback_events, 31u);
}

// ---- bad input changes nothing -------------------------------------------------------

TEST_F(EngineTest, BadIngestIsRejectedWithANamedField) {
  const EngineStats before = engine_->Stats();
  auto expect_bad = [&](const ItemInput& in, const std::string& needle) {
    Status st = engine_->Ingest(in);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.ToString();
  };
  expect_bad({"", "P", {"text"}}, "id is empty");
  expect_bad({"a", "", {"text"}}, "provider is empty");
  expect_bad({"a", "P", {""}}, "neither text nor vector");
  expect_bad({"a", "P", {"...!"}}, "no words");
  expect_bad({"a", "P", {"", std::vector<float>(63, 1.0f)}}, "63 values, expected 64");
  std::vector<float> nan(64, 1.0f);
  nan[5] = NAN;
  expect_bad({"a", "P", {"", nan}}, "vector[5] is not finite");
  expect_bad({"a", "P", {"", std::vector<float>(64, 0.0f)}}, "zero or non-finite norm");
  expect_bad({"m1", "MusicCo", {"duplicate"}}, "already exists");
  expect_bad({std::string(300, 'x'), "P", {"text"}}, "limit is 256");
  expect_bad({"bad\nid", "P", {"text"}}, "control character");
  // A batch with one bad item adds none of them.
  Status st = engine_->IngestBatch({{"ok1", "P", {"fine text"}}, {"ok2", "P", {""}}});
  EXPECT_NE(st.message().find("items[1].content"), std::string::npos) << st.ToString();
  st = engine_->IngestBatch({{"d", "P", {"one"}}, {"d", "P", {"two"}}});
  EXPECT_NE(st.message().find("twice"), std::string::npos);
  const EngineStats after = engine_->Stats();
  EXPECT_EQ(after.items, before.items);
  EXPECT_EQ(after.providers, before.providers);
  EXPECT_FALSE(engine_->GetItem("ok1").ok());
}

TEST_F(EngineTest, BadFeedbackIsRejectedAndChangesNothing) {
  Like("m1", 1, 3);
  const auto before = engine_->GetItem("m1")->model;
  auto expect_bad = [&](const FeedbackEvent& e, StatusCode code, const std::string& needle) {
    auto r = engine_->Feedback(e);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  };
  expect_bad({"", "nope", {}, {{"like", 1}}}, StatusCode::kNotFound, "item 'nope'");
  expect_bad({"", "m1", {}, {}}, StatusCode::kInvalidArgument, "responses is empty");
  expect_bad({"", "m1", {}, {{"likes", 1}}}, StatusCode::kInvalidArgument, "unknown head 'likes'");
  expect_bad({"", "m1", {}, {{"like", 3}}}, StatusCode::kInvalidArgument, "must be in [0, 1]");
  expect_bad({"", "m1", {}, {{"like", NAN}}}, StatusCode::kInvalidArgument, "not finite");
  expect_bad({"", "m1", {}, {{"dwell_seconds", -4}}}, StatusCode::kInvalidArgument, ">= 0");
  Context bad;
  bad.dense = {1.0f};
  expect_bad({"", "m1", bad, {{"like", 1}}}, StatusCode::kInvalidArgument, "context.dense");
  ASSERT_TRUE(engine_->Feedback({"e1", "m1", {}, {{"like", 1}}}).ok());
  const auto after_e1 = engine_->GetItem("m1")->model;
  expect_bad({"e1", "m1", {}, {{"like", 1}}}, StatusCode::kAlreadyExists, "already applied");
  EXPECT_EQ(engine_->GetItem("m1")->model.weights, after_e1.weights);
  EXPECT_EQ(after_e1.evidence, before.evidence + 1);
}

TEST_F(EngineTest, StoreFailureLeavesMemoryUntouched) {
  Like("m1", 1, 3);
  const auto model = engine_->GetItem("m1")->model;
  const auto stats = engine_->Stats();
  *fail_ = true;
  EXPECT_EQ(engine_->Feedback({"e9", "m1", {}, {{"like", 0}}}).status().code(),
            StatusCode::kIoError);
  EXPECT_FALSE(engine_->Ingest({"new", "MusicCo", {"guitar news"}}).ok());
  EXPECT_FALSE(engine_->Remove("m2").ok());
  EXPECT_FALSE(engine_->MoveProvider("MusicCo", 7).ok());
  *fail_ = false;
  EXPECT_EQ(engine_->GetItem("m1")->model.weights, model.weights);
  EXPECT_EQ(engine_->Stats().items, stats.items);
  EXPECT_EQ(engine_->Stats().clusters, stats.clusters);
  // The failed event id was not consumed.
  EXPECT_TRUE(engine_->Feedback({"e9", "m1", {}, {{"like", 0}}}).ok());
}

TEST_F(EngineTest, RemoveAndUpdateContent) {
  Like("m1", 1, 5);
  ASSERT_TRUE(engine_->UpdateContent("m1", {"guitar amplifiers and pedals"}).ok());
  EXPECT_EQ(engine_->GetItem("m1")->model.evidence, 5);
  ASSERT_TRUE(engine_->Remove("m1").ok());
  EXPECT_EQ(engine_->GetItem("m1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->Remove("m1").code(), StatusCode::kNotFound);
  for (const auto& c : Predict("m2").contributions) EXPECT_NE(c.item_id, "m1");
  EXPECT_EQ(engine_->UpdateContent("m1", {"x"}).code(), StatusCode::kNotFound);
}

TEST(EngineOpen, RejectsBadOptions) {
  EngineOptions o;
  o.blend.k = 0;
  auto e = Engine::Open(o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("blend.k"), std::string::npos);
  o = EngineOptions();
  o.reward = {{"missing_head", 1, 0}};
  EXPECT_FALSE(Engine::Open(o).ok());
}

TEST(EngineOpen, RefusesAStoreWithAnotherEmbeddingDimension) {
  std::shared_ptr<Store> backing = NewMemoryStore();
  EngineOptions o;
  o.embed.dim = 32;
  {
    auto e = Engine::Open(o, std::make_unique<TestStore>(backing));
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE((*e)->Ingest({"a", "p", {"some text"}}).ok());
  }
  o.embed.dim = 64;
  auto e = Engine::Open(o, std::make_unique<TestStore>(backing));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("engine.embedding_dim = '32'"), std::string::npos)
      << e.status().ToString();
  o.embed.dim = 32;
  o.model.heads = {{"click", HeadKind::kBinary, false}};
  o.reward = {{"click", 1, 0}};
  e = Engine::Open(o, std::make_unique<TestStore>(backing));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("engine.heads"), std::string::npos);
  o = EngineOptions();
  o.embed.dim = 32;
  EXPECT_TRUE(Engine::Open(o, std::make_unique<TestStore>(backing)).ok());
}

// ---- retention of seen event ids ---------------------------------------------------------

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<Engine> OpenWithOneItem(const EngineOptions& o, std::unique_ptr<Store> store) {
  auto e = Engine::Open(o, std::move(store));
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  if (!e.ok()) return nullptr;
  if (!(*e)->GetItem("m1").ok()) {
    EXPECT_TRUE((*e)->Ingest({"m1", "MusicCo", {kMusic[0].second}}).ok());
  }
  return std::move(e).value();
}

StatusCode FeedbackCode(Engine& engine, const EventId& id) {
  return engine.Feedback({id, "m1", {}, {{"like", 1}}}).status().code();
}

// ExpireEventIds takes the time as an argument, so the window is tested without waiting.
TEST(EventIdRetention, DuplicateWithinTheWindowAcceptedAgainAfterIt) {
  EngineOptions o = SmallOptions();
  o.event_id_retention_seconds = 3600;
  auto engine = OpenWithOneItem(o, nullptr);
  ASSERT_TRUE(engine);
  const int64_t t0 = NowMs();
  ASSERT_EQ(FeedbackCode(*engine, "e1"), StatusCode::kOk);
  ASSERT_EQ(FeedbackCode(*engine, "e2"), StatusCode::kOk);
  EXPECT_EQ(FeedbackCode(*engine, "e1"), StatusCode::kAlreadyExists);
  EXPECT_EQ(engine->Stats().seen_event_ids, 2u);
  // A minute before the window ends: still a duplicate.
  ASSERT_EQ(*engine->ExpireEventIds(t0 + 3600 * 1000 - 60 * 1000), 0u);
  EXPECT_EQ(FeedbackCode(*engine, "e1"), StatusCode::kAlreadyExists);
  // A minute after: forgotten, and accepted again as a new event.
  ASSERT_EQ(*engine->ExpireEventIds(NowMs() + 3600 * 1000 + 60 * 1000), 2u);
  EXPECT_EQ(engine->Stats().seen_event_ids, 0u);
  EXPECT_EQ(FeedbackCode(*engine, "e1"), StatusCode::kOk);
  EXPECT_EQ(FeedbackCode(*engine, "e1"), StatusCode::kAlreadyExists);
  EXPECT_EQ(engine->Stats().seen_event_ids, 1u);

  o.event_id_retention_seconds = 0;  // forever
  auto forever = OpenWithOneItem(o, nullptr);
  ASSERT_EQ(FeedbackCode(*forever, "e1"), StatusCode::kOk);
  EXPECT_EQ(*forever->ExpireEventIds(INT64_MAX), 0u);
  EXPECT_EQ(FeedbackCode(*forever, "e1"), StatusCode::kAlreadyExists);
}

// The seen times are stored: a restart keeps the window. Ids seen two days ago are forgotten
// on open (in the store too); ids of the last hour are still duplicates.
TEST(EventIdRetention, TheWindowSurvivesARestart) {
  testing_util::ScopedTempDir dir;
  EngineOptions o = SmallOptions();
  o.event_id_retention_seconds = 86400;
  auto durable = [&] { return std::move(OpenDurableStore(dir.Sub("data"), {})).value(); };
  {
    auto store = durable();
    const int64_t now = NowMs();
    ASSERT_TRUE(store
                    ->Commit({.seen_events = {"ancient", "recent"},
                              .seen_unix_ms = {now - 2 * 86400 * 1000, now - 3600 * 1000}})
                    .ok());
  }
  {
    auto engine = OpenWithOneItem(o, durable());
    ASSERT_TRUE(engine);
    EXPECT_EQ(engine->Stats().seen_event_ids, 1u);
    EXPECT_EQ(FeedbackCode(*engine, "recent"), StatusCode::kAlreadyExists);
    EXPECT_EQ(FeedbackCode(*engine, "fresh"), StatusCode::kOk);
  }
  {
    auto store = durable();
    StoreBatch all;
    ASSERT_TRUE(store->LoadAll(&all).ok());
    EXPECT_EQ(std::set<EventId>(all.seen_events.begin(), all.seen_events.end()),
              (std::set<EventId>{"recent", "fresh"}));
  }
  auto engine = OpenWithOneItem(o, durable());
  ASSERT_TRUE(engine);
  EXPECT_EQ(FeedbackCode(*engine, "fresh"), StatusCode::kAlreadyExists);
  EXPECT_EQ(FeedbackCode(*engine, "ancient"), StatusCode::kOk);  // forgotten: new again
}

// With a one-second window and the background sweep every 50 ms, the remembered ids stay
// those of about the last second while events keep coming, in memory and on disk, and
// drop to none once they stop.
TEST(EventIdRetention, TheBackgroundSweepKeepsTheCountBounded) {
  testing_util::ScopedTempDir dir;
  EngineOptions o = SmallOptions();
  o.event_id_retention_seconds = 1;
  o.rank.expiry_check_ms = 50;
  auto engine = OpenWithOneItem(o, std::move(OpenDurableStore(dir.Sub("data"), {})).value());
  ASSERT_TRUE(engine);
  std::vector<int64_t> sent;  // when each event was acknowledged
  uint64_t most = 0;
  const int64_t start = NowMs();
  while (NowMs() - start < 3000) {
    ASSERT_EQ(FeedbackCode(*engine, "ev-" + std::to_string(sent.size())), StatusCode::kOk);
    sent.push_back(NowMs());
    const uint64_t count = engine->Stats().seen_event_ids;
    most = std::max(most, count);
    // Everything acknowledged more than the window plus generous slack for the sweep on a
    // loaded machine ago must be gone.
    const int64_t now = NowMs();
    const uint64_t recent =
        std::count_if(sent.begin(), sent.end(), [&](int64_t t) { return t > now - 1000 - 700; });
    ASSERT_LE(count, recent) << "after " << sent.size() << " events";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::cout << sent.size() << " events in 3 s, at most " << most << " ids remembered\n";
  EXPECT_LT(most, sent.size() / 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  EXPECT_EQ(engine->Stats().seen_event_ids, 0u);
  engine.reset();
  auto store = std::move(OpenDurableStore(dir.Sub("data"), {})).value();
  StoreBatch all;
  ASSERT_TRUE(store->LoadAll(&all).ok());
  EXPECT_TRUE(all.seen_events.empty()) << all.seen_events.size() << " ids left on disk";
}

TEST(EventIdRetention, BadRetentionIsRefused) {
  EngineOptions o = SmallOptions();
  o.event_id_retention_seconds = -1;
  auto e = Engine::Open(o);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("event_id_retention_seconds"), std::string::npos)
      << e.status().ToString();
}

}  // namespace
}  // namespace dynspec
