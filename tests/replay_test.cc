// Replay on a slice of the real Amazon Magazine Subscriptions data: the learned strategies
// must beat the best constant predictor (the stream's positive rate, known in hindsight),
// and the dynamic specialization must rank better than chance.
#include "eval/replay.h"

#include <gtest/gtest.h>

#include "eval/amazon.h"

namespace dynspec::eval {
namespace {

class AmazonReplay : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = std::string(DYNSPEC_DATA_DIR) + "/amazon_magazine_subscriptions";
    AmazonStats stats;
    auto events = ConvertAmazon(dir + "/Magazine_Subscriptions.csv",
                                dir + "/meta_Magazine_Subscriptions.json.gz", {}, &stats);
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    events_ = new std::vector<ReplayEvent>(std::move(events).value());
  }
  static void TearDownTestSuite() { delete events_; }
  static ReplayOptions Options() {
    ReplayOptions o;
    o.engine.model.heads = {{"like", HeadKind::kBinary, false}};
    o.engine.reward = {{"like", 1, 0}};
    o.engine.model.sparse_dim = 1024;
    o.limit = 20000;
    return o;
  }
  static std::vector<ReplayEvent>* events_;
};
std::vector<ReplayEvent>* AmazonReplay::events_ = nullptr;

const StrategyReport& Find(const ReplayReport& r, const std::string& name) {
  for (const auto& s : r.strategies) {
    if (s.name == name) return s;
  }
  static StrategyReport none;
  ADD_FAILURE() << "no strategy " << name;
  return none;
}

TEST_F(AmazonReplay, LearnedStrategiesBeatTheConstantRate) {
  auto report = RunReplay(*events_, Options());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->events, 20000u);
  EXPECT_EQ(report->strategies.size(), 6u);
  EXPECT_EQ(report->recluster_runs.size(), 2u);  // every 10,000 events
  std::cout << FormatReport(*report);
  for (const char* name : {"global", "static_cluster", "dynamic"}) {
    const StrategyReport& s = Find(*report, name);
    EXPECT_EQ(s.all.count(), 20000u);
    EXPECT_LT(s.all.LogLoss(), report->constant_logloss_all) << name;
  }
  const StrategyReport& dynamic = Find(*report, "dynamic");
  EXPECT_GT(dynamic.all.Auc(), 0.55);
  EXPECT_GT(dynamic.later.Auc(), 0.55);
  EXPECT_GT(dynamic.cold.count(), 0u);
  EXPECT_FALSE(dynamic.curve.empty());
}

TEST_F(AmazonReplay, RejectsAStreamWhoseFirstEventHasNoProvider) {
  std::vector<ReplayEvent> events(2);
  events[0].item = "a";
  events[0].text = "some text";
  events[0].responses = {{"like", 1}};
  auto r = RunReplay(events, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("without a provider"), std::string::npos);
}

TEST_F(AmazonReplay, RejectsAnUnknownHeadOrStrategy) {
  ReplayOptions o = Options();
  o.head = "click";
  EXPECT_FALSE(RunReplay(*events_, o).ok());
  o = Options();
  o.strategies = {"oracle"};
  auto r = RunReplay(*events_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("oracle"), std::string::npos);
}

}  // namespace
}  // namespace dynspec::eval
