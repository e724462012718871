// Engine::Rank end to end: slates and their propensities, the sampling frequencies of the
// policy, feedback by event id with the logged context, expiry with the default reward,
// the decision log, durability of pending decisions across a restart, and bad input that
// must change nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "dynspec/engine.h"
#include "engine/decisions.h"
#include "test_util.h"

namespace dynspec {
namespace {

using testing_util::ScopedTempDir;

EngineOptions RankOptionsForTest() {
  EngineOptions o;
  o.embed.dim = 64;
  o.blend.k = 4;
  o.rank.expiry_check_ms = 0;  // the tests expire decisions themselves
  o.recluster.period_seconds = 0;
  return o;
}

const std::vector<std::pair<std::string, std::string>> kItems = {
    {"g1", "guitar magazine with guitar lessons, gear reviews and songs for guitarists"},
    {"g2", "guitar player lessons and gear reviews for every guitarist"},
    {"r1", "healthy recipes, cooking tips and kitchen ideas for families"},
    {"r2", "quick family recipes and cooking ideas for busy kitchens"},
};

class RankTest : public ::testing::Test {
 protected:
  void Open(EngineOptions o = RankOptionsForTest(), std::unique_ptr<Store> store = nullptr) {
    engine_.reset();
    auto e = Engine::Open(o, std::move(store));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }
  void IngestAll() {
    for (const auto& [id, text] : kItems) {
      ASSERT_TRUE(engine_->Ingest({id, id.substr(0, 1) == "g" ? "Music" : "Food", {text}}).ok());
    }
  }
  // Teaches g1 that users like it and r1 that they do not, so scores differ.
  void Train() {
    for (int i = 0; i < 30; ++i) {
      ASSERT_TRUE(engine_->Feedback({"", "g1", {}, {{"click", 1}, {"like", 1}}}).ok());
      ASSERT_TRUE(engine_->Feedback({"", "r1", {}, {{"click", 0}, {"like", 0}}}).ok());
    }
  }
  std::unique_ptr<Engine> engine_;
};

TEST_F(RankTest, SlateHasPropensitiesAndScoresFromTheModels) {
  Open();
  IngestAll();
  Train();
  auto r = engine_->Rank({"", {}, {"g1", "g2", "r1", "r2"}, 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->event_id.empty());
  ASSERT_EQ(r->slate.size(), 2u);
  EXPECT_NE(r->slate[0].item_id, r->slate[1].item_id);
  for (const auto& s : r->slate) {
    EXPECT_GT(s.propensity, 0);
    EXPECT_LE(s.propensity, 1);
    auto p = engine_->Predict({s.item_id});
    ASSERT_TRUE(p.ok());
    EXPECT_DOUBLE_EQ(s.score, p->expected_reward);
  }
  // The first position's propensity is the policy probability itself.
  EXPECT_DOUBLE_EQ(r->slate[0].propensity, r->slate[0].probability);
  EXPECT_EQ(engine_->Stats().pending_decisions, 1u);
  EXPECT_EQ(engine_->Stats().rank_decisions, 1u);
  // slate_size 0 ranks everything.
  auto all = engine_->Rank({"", {}, {"g1", "g2", "r1", "r2"}, 0});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->slate.size(), 4u);
}

TEST_F(RankTest, FirstPositionFrequenciesMatchThePolicyProbabilities) {
  Open();
  IngestAll();
  Train();
  const std::vector<ItemId> candidates = {"g1", "g2", "r1", "r2"};
  std::map<ItemId, double> probability;
  std::map<ItemId, int> count;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    auto r = engine_->Rank({"", {}, candidates, 1});
    ASSERT_TRUE(r.ok());
    count[r->slate[0].item_id]++;
    probability[r->slate[0].item_id] = r->slate[0].probability;
  }
  double total = 0;
  for (const auto& [id, p] : probability) total += p;
  EXPECT_NEAR(total, 1.0, 1e-9) << "every candidate was served at least once";
  // Each frequency within 4.5 binomial standard deviations of its probability (fixed seed:
  // the test is deterministic; the bound only says the sampler follows the policy).
  for (const auto& [id, p] : probability) {
    const double sd = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(double(count[id]) / n, p, 4.5 * sd + 1e-12) << id;
  }
  EXPECT_GT(probability["g1"], probability["r1"]) << "the liked item is favoured";
}

TEST_F(RankTest, GreedyRanksByScoreAndFillsDeterministically) {
  EngineOptions o = RankOptionsForTest();
  o.rank.policy = RankPolicy::kGreedy;
  Open(o);
  IngestAll();
  Train();
  auto r = engine_->Rank({"", {}, {"r1", "g2", "g1", "r2"}, 0});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->slate.size(), 4u);
  EXPECT_EQ(r->slate[0].item_id, "g1");
  EXPECT_DOUBLE_EQ(r->slate[0].propensity, 1.0);
  for (size_t p = 1; p < r->slate.size(); ++p) {
    EXPECT_GE(r->slate[p - 1].score, r->slate[p].score);
    EXPECT_DOUBLE_EQ(r->slate[p].propensity, 1.0);
  }
}

TEST_F(RankTest, FeedbackByEventIdUsesTheLoggedContextOncePerPosition) {
  Open();
  IngestAll();
  Context ctx;
  ctx.sparse = {{"country=de", 1.0f}};
  auto r = engine_->Rank({"ev-1", ctx, {"g1", "g2", "r1"}, 2});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->event_id, "ev-1");
  const ItemId first = r->slate[0].item_id, second = r->slate[1].item_id;

  // A context with an event id is refused: the ranked context is the one learned from.
  auto with_ctx = engine_->Feedback({"ev-1", first, ctx, {{"click", 1}}});
  EXPECT_EQ(with_ctx.status().code(), StatusCode::kInvalidArgument);
  // An item that was not served.
  const ItemId unserved =
      first != "r1" && second != "r1" ? "r1" : (first != "g2" && second != "g2" ? "g2" : "g1");
  auto not_served = engine_->Feedback({"ev-1", unserved, {}, {{"click", 1}}});
  EXPECT_EQ(not_served.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_served.status().message().find("was not served"), std::string::npos);

  const uint64_t before = engine_->GetItem(first)->version;
  auto fb = engine_->Feedback({"ev-1", "", {}, {{"click", 1}, {"like", 1}}});  // position 1
  ASSERT_TRUE(fb.ok()) << fb.status().ToString();
  EXPECT_EQ(engine_->GetItem(first)->version, before + 1);
  EXPECT_DOUBLE_EQ(fb->reward, 3.0);  // 1 * click + 2 * like
  auto again = engine_->Feedback({"ev-1", first, {}, {{"click", 1}}});
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(engine_->Stats().pending_decisions, 1u) << "one position is still open";

  ASSERT_TRUE(engine_->Feedback({"ev-1", second, {}, {{"click", 0}}}).ok());
  EXPECT_EQ(engine_->Stats().pending_decisions, 0u);
  auto resolved = engine_->Feedback({"ev-1", second, {}, {{"click", 0}}});
  EXPECT_EQ(resolved.status().code(), StatusCode::kAlreadyExists);
  // The id is spent for ranking too.
  EXPECT_EQ(engine_->Rank({"ev-1", {}, {"g1"}, 1}).status().code(), StatusCode::kAlreadyExists);
}

TEST_F(RankTest, ExpiryResolvesWithTheDefaultRewardAndWritesTheLog) {
  ScopedTempDir dir;
  EngineOptions o = RankOptionsForTest();
  o.rank.pending_ttl_ms = 1000;
  o.rank.expired_reward = -0.25;
  o.rank.decision_log = dir.Sub("decisions.jsonl");
  Open(o);
  IngestAll();
  auto r = engine_->Rank({"ev-x", {}, {"g1", "g2", "r1"}, 2});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(engine_->Feedback({"ev-x", r->slate[0].item_id, {}, {{"click", 1}}}).ok());
  const ItemId unanswered = r->slate[1].item_id;
  const uint64_t before = engine_->GetItem(unanswered)->version;

  auto early = engine_->ExpireDecisions(r->expires_unix_ms - 1);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(*early, 0u);
  auto expired = engine_->ExpireDecisions(r->expires_unix_ms);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 1u);
  EXPECT_EQ(engine_->Stats().pending_decisions, 0u);
  EXPECT_EQ(engine_->Stats().expired_positions, 1u);
  // learn_from_expired: the unanswered item learned "no response".
  EXPECT_EQ(engine_->GetItem(unanswered)->version, before + 1);
  auto late = engine_->Feedback({"ev-x", unanswered, {}, {{"click", 1}}});
  EXPECT_EQ(late.status().code(), StatusCode::kAlreadyExists);

  std::ifstream in(o.rank.decision_log);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  auto d = DecisionFromJsonLine(line);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, "ev-x");
  ASSERT_EQ(d->chosen.size(), 2u);
  EXPECT_EQ(d->answered[0], kPositionAnswered);
  EXPECT_DOUBLE_EQ(d->rewards[0], 1.0);
  EXPECT_EQ(d->answered[1], kPositionExpired);
  EXPECT_DOUBLE_EQ(d->rewards[1], -0.25);
  EXPECT_DOUBLE_EQ(d->propensities[0], r->slate[0].propensity);
  EXPECT_FALSE(std::getline(in, line)) << "one resolved decision, one line";
}

TEST_F(RankTest, ExpiryWithoutLearningLeavesModelsAlone) {
  EngineOptions o = RankOptionsForTest();
  o.rank.learn_from_expired = false;
  Open(o);
  IngestAll();
  auto r = engine_->Rank({"", {}, {"g1", "g2"}, 1});
  ASSERT_TRUE(r.ok());
  const uint64_t before = engine_->GetItem(r->slate[0].item_id)->version;
  ASSERT_EQ(*engine_->ExpireDecisions(r->expires_unix_ms), 1u);
  EXPECT_EQ(engine_->GetItem(r->slate[0].item_id)->version, before);
}

TEST_F(RankTest, PendingDecisionsSurviveARestart) {
  ScopedTempDir dir;
  const std::string data = dir.Sub("data");
  auto store = OpenDurableStore(data, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Open(RankOptionsForTest(), std::move(store).value());
  IngestAll();
  Context ctx;
  ctx.sparse = {{"hour=20", 1.0f}};
  auto r = engine_->Rank({"ev-d", ctx, {"g1", "g2", "r1"}, 2});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(engine_->Feedback({"ev-d", r->slate[0].item_id, {}, {{"like", 1}}}).ok());

  engine_.reset();
  auto reopened = OpenDurableStore(data, {});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  Open(RankOptionsForTest(), std::move(reopened).value());
  EXPECT_EQ(engine_->Stats().pending_decisions, 1u);
  EXPECT_EQ(engine_->Feedback({"ev-d", r->slate[0].item_id, {}, {{"like", 1}}}).status().code(),
            StatusCode::kAlreadyExists)
      << "the answered position stays answered";
  ASSERT_TRUE(engine_->Feedback({"ev-d", r->slate[1].item_id, {}, {{"like", 0}}}).ok());
  EXPECT_EQ(engine_->Stats().pending_decisions, 0u);

  engine_.reset();
  auto third = OpenDurableStore(data, {});
  ASSERT_TRUE(third.ok());
  Open(RankOptionsForTest(), std::move(third).value());
  EXPECT_EQ(engine_->Stats().pending_decisions, 0u);
  EXPECT_EQ(engine_->Rank({"ev-d", {}, {"g1"}, 1}).status().code(), StatusCode::kAlreadyExists)
      << "a resolved id stays spent after a restart";
}

TEST_F(RankTest, BadRequestsAreRefusedAndChangeNothing) {
  EngineOptions o = RankOptionsForTest();
  o.rank.max_candidates = 3;
  Open(o);
  IngestAll();
  auto expect = [&](const RankRequest& req, StatusCode code, const std::string& text) {
    auto r = engine_->Rank(req);
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().ToString();
  };
  expect({"", {}, {}, 1}, StatusCode::kInvalidArgument, "candidates is empty");
  expect({"", {}, {"g1", "g2", "r1", "r2"}, 1}, StatusCode::kInvalidArgument, "limit is 3");
  expect({"", {}, {"g1", "g1"}, 1}, StatusCode::kInvalidArgument, "repeats item 'g1'");
  expect({"", {}, {"g1", "nope"}, 1}, StatusCode::kNotFound, "'nope'");
  expect({"", {}, {"g1", "g2"}, 3}, StatusCode::kInvalidArgument, "slate_size 3 exceeds");
  expect({"bad\nid", {}, {"g1"}, 1}, StatusCode::kInvalidArgument, "event_id");
  Context nan;
  nan.sparse = {{"x", std::nanf("")}};
  expect({"", nan, {"g1"}, 1}, StatusCode::kInvalidArgument, "");
  EXPECT_EQ(engine_->Stats().pending_decisions, 0u);
  EXPECT_EQ(engine_->Stats().rank_decisions, 0u);
  // Unknown event id with no item: plain feedback needs an item.
  EXPECT_EQ(engine_->Feedback({"never-ranked", "", {}, {{"click", 1}}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(RankTest, WithoutSupervisedLearningFeedbackOnlyCountsEvidence) {
  EngineOptions o = RankOptionsForTest();
  o.learn.supervised = false;
  Open(o);
  IngestAll();
  ASSERT_TRUE(engine_->Feedback({"", "g1", {}, {{"click", 1}, {"like", 1}}}).ok());
  auto item = engine_->GetItem("g1");
  ASSERT_TRUE(item.ok());
  EXPECT_EQ(item->model.evidence, 1);
  EXPECT_TRUE(item->served) << "it joins its partition all the same";
  for (float w : item->model.weights) EXPECT_EQ(w, 0.0f) << "no supervised step was taken";
}

TEST(DecisionLog, JsonLineRoundTripsAndRejectsDamage) {
  DecisionRecord d;
  d.id = "e1";
  d.created_unix_ms = 5;
  d.expires_unix_ms = 10;
  d.context.sparse = {{"a", 1.5f}};
  d.candidates = {"x", "y"};
  d.scores = {0.5, 0.25};
  d.probabilities = {0.7, 0.3};
  d.versions = {3, 4};
  d.chosen = {1};
  d.propensities = {0.3};
  d.answered = {kPositionAnswered};
  d.rewards = {2};
  d.blends = {{{"x", 0.9}, {"", 0.1}}};
  auto back = DecisionFromJsonLine(DecisionToJsonLine(d));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->candidates, d.candidates);
  EXPECT_EQ(back->chosen, d.chosen);
  EXPECT_EQ(back->blends, d.blends);
  EXPECT_EQ(back->context.sparse, d.context.sparse);
  EXPECT_FALSE(DecisionFromJsonLine("{not json").ok());
  d.propensities = {0};
  EXPECT_NE(DecisionFromJsonLine(DecisionToJsonLine(d)).status().message().find("propensities[0]"),
            std::string::npos);
  d.propensities = {0.3};
  d.chosen = {5};
  EXPECT_NE(DecisionFromJsonLine(DecisionToJsonLine(d)).status().message().find("chosen[0]"),
            std::string::npos);
}

}  // namespace
}  // namespace dynspec
