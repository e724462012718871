// The Open Bandit Dataset sample (data/open_bandit_dataset, see its SOURCE.md): the reader on
// all four logs and on malformed files, and off-policy estimates on real logged propensities.
//
// How the OBD rows are treated. Each row is one (impression, position) pair of the 3-slot
// widget; propensity_score is the probability that the logging policy put this item at this
// position (for the uniform-random policy 1/n_items at every position: a uniformly random
// slate shows any given item at any given slot with probability 1/n_items). A target policy is
// therefore specified per position, pi(item | user, position), and the estimand is the click
// rate per (impression, position) that the target would earn, assuming the click at a slot
// depends on the user, the slot and the item in it but not on the other two items (the
// independent-slot treatment of the OBD paper's standard benchmark). The estimates below are
// printed for docs; they are checked for sanity only, because 5,000 rows with ~25 clicks make
// them noisy by nature.
#include "eval/obd.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <vector>

#include "learn/ope.h"

namespace dynspec::eval {
namespace {

const std::string kDir = std::string(DYNSPEC_DATA_DIR) + "/open_bandit_dataset/";

struct Log {
  const char* name;
  const char* file;
  size_t items;
  int clicks;  // CTR in SOURCE.md: 0.46%, 0.46%, 0.69%, 0.46%
  std::vector<ObdRow> rows;
};

std::vector<Log>& Logs() {
  static std::vector<Log>* logs = [] {
    auto* l = new std::vector<Log>{{"random/men", "random/men/men.csv", 34, 46, {}},
                                   {"random/women", "random/women/women.csv", 46, 46, {}},
                                   {"bts/men", "bts/men/men.csv", 34, 69, {}},
                                   {"bts/women", "bts/women/women.csv", 46, 46, {}}};
    for (Log& log : *l) {
      auto rows = ReadObd(kDir + log.file);
      if (rows.ok())
        log.rows = std::move(rows).value();
      else
        std::fprintf(stderr, "%s\n", rows.status().ToString().c_str());
    }
    return l;
  }();
  return *logs;
}

const Log& Find(const std::string& name) {
  for (const Log& l : Logs()) {
    if (l.name == name) return l;
  }
  std::abort();
}

TEST(Obd, ReadsAllFourLogs) {
  for (const Log& log : Logs()) {
    SCOPED_TRACE(log.name);
    ASSERT_EQ(log.rows.size(), 10000u);
    std::set<int> items;
    int clicks = 0;
    for (size_t i = 0; i < log.rows.size(); ++i) {
      const ObdRow& r = log.rows[i];
      ASSERT_EQ(r.index, static_cast<int64_t>(i));
      ASSERT_EQ(r.affinity.size(), log.items);
      ASSERT_EQ(r.user_features.size(), 4u);
      ASSERT_GE(r.position, 1);
      ASSERT_LE(r.position, 3);
      ASSERT_FALSE(r.timestamp.empty());
      items.insert(r.item_id);
      clicks += r.click;
      if (std::string(log.name).starts_with("random")) {
        ASSERT_NEAR(r.propensity, 1.0 / static_cast<double>(log.items), 1e-15);
      }
    }
    EXPECT_EQ(items.size(), log.items);
    EXPECT_EQ(clicks, log.clicks);
    const double ctr_percent = 100.0 * clicks / 10000.0;
    EXPECT_EQ(std::round(ctr_percent * 100) / 100, log.clicks == 69 ? 0.69 : 0.46);
  }
  const ObdRow& first = Find("random/men").rows[0];
  EXPECT_EQ(first.timestamp, "2019-11-24 00:03:13.442536+00:00");
  EXPECT_EQ(first.item_id, 14);
  EXPECT_EQ(first.position, 3);
  EXPECT_EQ(first.click, 0);
  EXPECT_EQ(first.user_features[0], "cef3390ed299c09874189c387777674a");
}

class ObdReaderErrors : public ::testing::Test {
 protected:
  std::string Write(const std::string& content) {
    const std::string path =
        (std::filesystem::temp_directory_path() /
         ("dynspec_obd_test_" + std::to_string(::getpid()) + "_" + std::to_string(n_++) + ".csv"))
            .string();
    std::ofstream(path, std::ios::binary) << content;
    paths_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const auto& p : paths_) std::filesystem::remove(p);
  }
  std::vector<std::string> paths_;
  int n_ = 0;
};

const char* kHeader =
    ",timestamp,item_id,position,click,propensity_score,user_feature_0,user-item_affinity_0,"
    "user-item_affinity_1\n";

TEST_F(ObdReaderErrors, NamesLineAndColumn) {
  auto good =
      ReadObd(Write(std::string("\xEF\xBB\xBF") + kHeader + "0,t,1,2,1,0.5,u,0.0,2.5\r\n\n"));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  ASSERT_EQ(good->size(), 1u);
  EXPECT_EQ((*good)[0].affinity, (std::vector<float>{0.0f, 2.5f}));

  struct Case {
    std::string content, want;
  };
  const Case cases[] = {
      {std::string(kHeader) + "0,t,1,2,2,0.5,u,0,0\n", ":2: column \"click\": \"2\" is not 0 or 1"},
      {std::string(kHeader) + "0,t,1,2,1,0.5,u,0\n", ":2: has 8 fields, expected 9"},
      {std::string(kHeader) + "0,t,2,2,1,0.5,u,0,0\n",
       ":2: column \"item_id\": \"2\" is out of range: there are 2 items"},
      {std::string(kHeader) + "0,t,1,2,1,0.5,u,0,0\n1,t,x,2,1,0.5,u,0,0\n",
       ":3: column \"item_id\": \"x\" is not an integer >= 0"},
      {std::string(kHeader) + "0,t,1,0,1,0.5,u,0,0\n", ":2: column \"position\""},
      {std::string(kHeader) + "0,t,1,1,1,0,u,0,0\n",
       ":2: column \"propensity_score\": \"0\" is not a number in (0, 1]"},
      {std::string(kHeader) + "0,t,1,1,1,0.5,u,0,nan\n",
       ":2: column \"user-item_affinity_1\": \"nan\" is not a finite number"},
      {std::string(kHeader) + "0,,1,1,1,0.5,u,0,0\n", ":2: column \"timestamp\": \"\" is empty"},
      {",timestamp,item,position\n", ":1: column 2 is \"item\", expected \"item_id\""},
      {",timestamp,item_id,position,click,propensity_score,user_feature_0,foo\n",
       ":1: column 7 is \"foo\", expected \"user_feature_1\" or \"user-item_affinity_0\""},
      {"", ": no header line"},
  };
  for (const Case& c : cases) {
    auto r = ReadObd(Write(c.content));
    ASSERT_FALSE(r.ok()) << c.want;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(ReadObd("/nonexistent/obd.csv").status().code(), StatusCode::kIoError);
}

void Print(const char* label, const Estimate& e) {
  std::printf("  %-34s %.3f%%  95%% CI [%.3f%%, %.3f%%]  se %.3f%%  n %zu\n", label, 100 * e.value,
              100 * e.ci_low, 100 * e.ci_high, 100 * e.std_error, e.n);
}

// Click rate of a log with its normal 95% interval (a binomial proportion).
Estimate ClickRate(const std::vector<ObdRow>& rows, size_t begin, size_t end) {
  std::vector<LoggedDecision> d;
  for (size_t i = begin; i < end; ++i) d.push_back({double(rows[i].click), 1, 1, 0, 0});
  return Ips(d).value();
}

// Per-item click rate of rows [0, end), shrunk toward the overall rate with the weight of 100
// impressions: the reward model q_hat(item) for DR, independent of the user and slot.
std::vector<double> ItemClickRates(const std::vector<ObdRow>& rows, size_t end, size_t items) {
  std::vector<double> clicks(items, 0), shown(items, 0);
  double total = 0;
  for (size_t i = 0; i < end; ++i) {
    clicks[rows[i].item_id] += rows[i].click;
    shown[rows[i].item_id] += 1;
    total += rows[i].click;
  }
  const double overall = total / static_cast<double>(end);
  std::vector<double> q(items);
  for (size_t a = 0; a < items; ++a) q[a] = (clicks[a] + 100 * overall) / (shown[a] + 100);
  return q;
}

TEST(ObdOpe, OnPolicyIpsIsTheLoggedClickRate) {
  for (const Log& log : Logs()) {
    SCOPED_TRACE(log.name);
    std::vector<LoggedDecision> d;
    for (const ObdRow& r : log.rows) d.push_back({double(r.click), r.propensity, r.propensity});
    auto ips = Ips(d);
    auto snips = Snips(d);
    ASSERT_TRUE(ips.ok() && snips.ok());
    EXPECT_DOUBLE_EQ(ips->value, log.clicks / 10000.0);
    EXPECT_DOUBLE_EQ(snips->value, log.clicks / 10000.0);
  }
}

// The value of the uniform-random policy estimated from the Thompson-sampling logs, next to
// what the uniform-random policy actually earned in its own logs. The first (earlier) half of
// each bts log fits the reward model; all estimators use the later half; "IPS, all rows" uses
// the whole log.
TEST(ObdOpe, BtsLogsEstimateTheUniformRandomPolicy) {
  std::printf("\nValue of the uniform-random policy (clicks per impression-slot)\n");
  for (const char* campaign : {"men", "women"}) {
    const Log& bts = Find(std::string("bts/") + campaign);
    const Log& random = Find(std::string("random/") + campaign);
    const size_t n = bts.rows.size(), half = n / 2, items = bts.items;
    const double uniform = 1.0 / static_cast<double>(items);
    const std::vector<double> q = ItemClickRates(bts.rows, half, items);
    double q_uniform = 0;
    for (double v : q) q_uniform += v * uniform;
    std::vector<LoggedDecision> all, eval;
    double max_weight = 0;
    for (size_t i = 0; i < n; ++i) {
      const ObdRow& r = bts.rows[i];
      const LoggedDecision d{double(r.click), r.propensity, uniform, q[r.item_id], q_uniform};
      all.push_back(d);
      if (i >= half) eval.push_back(d);
      max_weight = std::max(max_weight, uniform / r.propensity);
    }
    std::printf("%s: estimated from bts/%s (max importance weight %.0f)\n", campaign, campaign,
                max_weight);
    auto ips_all = Ips(all);
    auto ips = Ips(eval);
    auto snips = Snips(eval);
    auto dr = DoublyRobust(eval);
    ASSERT_TRUE(ips_all.ok() && ips.ok() && snips.ok() && dr.ok());
    Print("IPS, all rows", *ips_all);
    Print("IPS, later half", *ips);
    Print("SNIPS, later half", *snips);
    Print("DR, later half", *dr);
    const Estimate actual = ClickRate(random.rows, 0, random.rows.size());
    Print(("actual, random/" + std::string(campaign)).c_str(), actual);
    for (const Estimate* e : {&*ips_all, &*ips, &*snips, &*dr}) {
      EXPECT_TRUE(std::isfinite(e->value) && std::isfinite(e->std_error));
    }
    // IPS and SNIPS average non-negative terms; DR can go below 0 (a huge weight times
    // r - q_hat = -q_hat on a row without a click).
    EXPECT_GE(ips->value, 0.0);
    EXPECT_GE(snips->value, 0.0);
  }
}

// The Thompson-sampling policy's value estimated from the uniform-random logs, next to the
// click rate it actually earned in its own logs. Bernoulli TS in OBD ignores the user
// features, so its probability of showing item i at position p is the same for every user at
// a given time; the bts log's propensity_score of (i, p), averaged over the log, stands for
// that probability (TS drifts as it learns, so this is the policy averaged over the period).
TEST(ObdOpe, RandomLogsEstimateTheThompsonSamplingPolicy) {
  std::printf("\nValue of the Thompson-sampling policy (clicks per impression-slot)\n");
  for (const char* campaign : {"men", "women"}) {
    const Log& bts = Find(std::string("bts/") + campaign);
    const Log& random = Find(std::string("random/") + campaign);
    std::map<std::pair<int, int>, std::pair<double, double>> sum;  // (item, pos) -> (sum, n)
    for (const ObdRow& r : bts.rows) {
      auto& cell = sum[{r.item_id, r.position}];
      cell.first += r.propensity;
      cell.second += 1;
    }
    const double mean_click = ClickRate(random.rows, 0, random.rows.size()).value;
    std::vector<LoggedDecision> rows;
    for (const ObdRow& r : random.rows) {
      auto it = sum.find({r.item_id, r.position});
      const double pi = it == sum.end() ? 0.0 : it->second.first / it->second.second;
      rows.push_back({double(r.click), r.propensity, pi, mean_click, mean_click});
    }
    auto ips = Ips(rows);
    auto snips = Snips(rows);
    auto dr = DoublyRobust(rows);
    ASSERT_TRUE(ips.ok() && snips.ok() && dr.ok());
    std::printf("%s: estimated from random/%s\n", campaign, campaign);
    Print("IPS", *ips);
    Print("SNIPS", *snips);
    Print("DR", *dr);
    const Estimate actual = ClickRate(bts.rows, 0, bts.rows.size());
    Print(("actual, bts/" + std::string(campaign)).c_str(), actual);
    // The uniform logging policy gives every (item, position) the same propensity, so the
    // weights are bounded and the estimates are usable: each interval must be finite.
    for (const Estimate* e : {&*ips, &*snips, &*dr}) {
      EXPECT_TRUE(std::isfinite(e->ci_low) && std::isfinite(e->ci_high));
      EXPECT_GE(e->value, 0.0);
    }
  }
}

// A deterministic ranking policy evaluated on the uniform-random logs: slot p shows the item
// ranked p-th by the user's affinity (descending), ties broken by the item's click rate on the
// earlier half of the log (descending), then by item id. The earlier half also fits the DR
// reward model; all estimators use the later half.
TEST(ObdOpe, RandomLogsEstimateAnAffinityRanking) {
  std::printf("\nValue of the affinity-then-popularity ranking, from the random logs\n");
  for (const char* campaign : {"men", "women"}) {
    const Log& random = Find(std::string("random/") + campaign);
    const size_t n = random.rows.size(), half = n / 2, items = random.items;
    const std::vector<double> q = ItemClickRates(random.rows, half, items);
    std::vector<LoggedDecision> eval;
    size_t matched = 0;
    int matched_clicks = 0;
    std::vector<int> order(items);
    for (size_t i = half; i < n; ++i) {
      const ObdRow& r = random.rows[i];
      for (size_t a = 0; a < items; ++a) order[a] = static_cast<int>(a);
      std::partial_sort(order.begin(), order.begin() + r.position, order.end(), [&](int a, int b) {
        if (r.affinity[a] != r.affinity[b]) return r.affinity[a] > r.affinity[b];
        if (q[a] != q[b]) return q[a] > q[b];
        return a < b;
      });
      const int target_item = order[r.position - 1];
      const bool match = r.item_id == target_item;
      matched += match ? 1 : 0;
      matched_clicks += match ? r.click : 0;
      eval.push_back(
          {double(r.click), r.propensity, match ? 1.0 : 0.0, q[r.item_id], q[target_item]});
    }
    auto ips = Ips(eval);
    auto snips = Snips(eval);
    auto dr = DoublyRobust(eval);
    ASSERT_TRUE(ips.ok() && snips.ok() && dr.ok());
    std::printf("%s: %zu of %zu later-half rows show the target's item (%d clicks)\n", campaign,
                matched, eval.size(), matched_clicks);
    if (matched_clicks == 0) {
      // No click among the matched rows: IPS and SNIPS are 0 with a zero-width normal
      // interval, which says nothing. The rule of three bounds the matched rows' click rate.
      std::printf(
          "  no click observed: 95%% upper bound on the target's click rate %.2f%% "
          "(rule of three, 3 / %zu)\n",
          300.0 / static_cast<double>(matched), matched);
    }
    Print("IPS", *ips);
    Print("SNIPS", *snips);
    Print("DR", *dr);
    Print("logged (uniform random), later half", ClickRate(random.rows, half, n));
    Print(("logged bts/" + std::string(campaign) + ", all rows").c_str(),
          ClickRate(Find(std::string("bts/") + campaign).rows, 0, n));
    EXPECT_GT(matched, 0u);
    for (const Estimate* e : {&*ips, &*snips, &*dr}) {
      EXPECT_TRUE(std::isfinite(e->value) && std::isfinite(e->std_error));
    }
  }
}

}  // namespace
}  // namespace dynspec::eval
