// The named workload of the scale benchmark: a catalog from many providers with skewed
// popularity, items scattered around topic centres, and users whose click probability
// depends on the item's topic, the item itself and the user's segment. Deterministic for a
// seed, so every run and every variant (float32/float16, 1 or 2 threads) sees the same data.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace dynspec::bench {

// P(rank r) proportional to 1 / (r + 1)^s, by inverting the cumulative distribution.
class ZipfSampler {
 public:
  ZipfSampler(size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (size_t r = 0; r < n; ++r) cdf_[r] = (sum += 1 / std::pow(double(r + 1), s));
    for (double& c : cdf_) c /= sum;
  }
  size_t operator()(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::min<size_t>(cdf_.size() - 1,
                            std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

struct WorkloadSpec {
  size_t items = 100000;
  int dim = 256;
  size_t topics = 256;
  size_t providers = 0;  // 0: items / 100
  size_t segments = 32;  // user segments (the sparse context feature "seg=<s>")
  uint64_t seed = 1;
};

class Workload {
 public:
  explicit Workload(const WorkloadSpec& spec) : spec_(spec) {
    if (spec_.providers == 0) spec_.providers = std::max<size_t>(1, spec_.items / 100);
    std::mt19937_64 rng(spec_.seed);
    std::normal_distribution<float> g(0, 1);
    centres_.assign(spec_.topics, std::vector<float>(static_cast<size_t>(spec_.dim)));
    for (auto& c : centres_) {
      for (float& x : c) x = g(rng);
    }
    topic_logit_.resize(spec_.topics);
    for (double& a : topic_logit_) a = -2.0 + 0.7 * g(rng);
    affinity_.resize(spec_.topics * spec_.segments);
    for (double& c : affinity_) c = 0.8 * g(rng);
    // Providers publish about one topic each (a few popular topics hold many providers);
    // items go to providers by a Zipf-like draw (a few providers publish most items).
    ZipfSampler topic_pick(spec_.topics, 0.8);
    provider_topic_.resize(spec_.providers);
    for (auto& t : provider_topic_) t = topic_pick(rng);
    ZipfSampler provider_pick(spec_.providers, 1.0);
    vectors_.resize(spec_.items);
    item_provider_.resize(spec_.items);
    item_topic_.resize(spec_.items);
    item_logit_.resize(spec_.items);
    for (size_t i = 0; i < spec_.items; ++i) {
      const size_t p = provider_pick(rng);
      // One item in ten strays to another topic than its provider's.
      const size_t t = rng() % 10 == 0 ? rng() % spec_.topics : provider_topic_[p];
      item_provider_[i] = p;
      item_topic_[i] = t;
      item_logit_[i] = 0.5 * g(rng);
      auto& v = vectors_[i];
      v.resize(static_cast<size_t>(spec_.dim));
      double n2 = 0;
      for (int d = 0; d < spec_.dim; ++d) {
        v[d] = centres_[t][d] + 0.8f * g(rng);
        n2 += double(v[d]) * v[d];
      }
      const float inv = static_cast<float>(1 / std::sqrt(n2));
      for (float& x : v) x *= inv;
    }
  }

  const WorkloadSpec& spec() const { return spec_; }
  size_t size() const { return vectors_.size(); }
  const std::vector<float>& vector(size_t i) const { return vectors_[i]; }
  std::string item_id(size_t i) const { return "item" + std::to_string(i); }
  std::string provider_id(size_t i) const { return "prov" + std::to_string(item_provider_[i]); }
  static std::string segment_feature(size_t s) { return "seg=" + std::to_string(s); }

  // The true click probability of item i for a user of segment s.
  double ClickProbability(size_t i, size_t s) const {
    const size_t t = item_topic_[i];
    const double z = topic_logit_[t] + item_logit_[i] + affinity_[t * spec_.segments + s];
    return 1 / (1 + std::exp(-z));
  }

  // Items drawn by popularity: Zipf over a fixed random order of the catalog.
  class ItemSampler {
   public:
    ItemSampler(const Workload& w, uint64_t seed) : zipf_(w.size(), 0.9), rng_(seed) {
      std::mt19937_64 shuffle(w.spec().seed + 7);
      order_.resize(w.size());
      for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
      std::shuffle(order_.begin(), order_.end(), shuffle);
    }
    size_t Next() { return order_[zipf_(rng_)]; }
    std::mt19937_64& rng() { return rng_; }

   private:
    ZipfSampler zipf_;
    std::mt19937_64 rng_;
    std::vector<size_t> order_;
  };

 private:
  WorkloadSpec spec_;
  std::vector<std::vector<float>> centres_;
  std::vector<double> topic_logit_, affinity_, item_logit_;
  std::vector<size_t> provider_topic_, item_provider_, item_topic_;
  std::vector<std::vector<float>> vectors_;
};

}  // namespace dynspec::bench
