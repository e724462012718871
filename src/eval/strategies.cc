#include "eval/strategies.h"

#include <algorithm>

#include "learn/supervised.h"

namespace dynspec::eval {
namespace {

class KeyedStrategy final : public Strategy {
 public:
  KeyedStrategy(std::string name, SharingKey key, const EngineOptions& options, size_t head,
                std::unordered_map<std::string, ClusterId> cluster_of)
      : name_(std::move(name)),
        key_(key),
        learn_(options.learn),
        encoder_(options.model, options.limits),
        head_(head),
        cluster_of_(std::move(cluster_of)) {
    layout_.heads = options.model.heads;
    layout_.width = encoder_.width();
  }

  std::string name() const override { return name_; }

  Result<double> Predict(const ReplayEvent& event, const Context& context) override {
    DYNSPEC_ASSIGN_OR_RETURN(FeatureVector x, encoder_.Encode(context));
    DYNSPEC_ASSIGN_OR_RETURN(std::string key, KeyOf(event));
    auto it = models_.find(key);
    const double score = it == models_.end() ? 0.0 : HeadScore(layout_, it->second, head_, x);
    return HeadOutput(layout_.heads[head_].kind, score);
  }

  Status Learn(const ReplayEvent& event, const Context& context) override {
    auto r = event.responses.find(layout_.heads[head_].name);
    if (r == event.responses.end()) return Status::Ok();
    DYNSPEC_ASSIGN_OR_RETURN(FeatureVector x, encoder_.Encode(context));
    DYNSPEC_ASSIGN_OR_RETURN(double target, HeadTarget(layout_.heads[head_], r->second));
    DYNSPEC_ASSIGN_OR_RETURN(std::string key, KeyOf(event));
    ModelState& m = models_[key];
    if (!IsInitialized(layout_, m)) InitModel(layout_, learn_.adagrad_epsilon, &m);
    SupervisedStep(learn_, layout_, head_, target, x, &m);
    m.evidence += 1;
    return Status::Ok();
  }

 private:
  Result<std::string> KeyOf(const ReplayEvent& e) {
    switch (key_) {
      case SharingKey::kGlobal:
        return std::string();
      case SharingKey::kItem:
        return e.item;
      case SharingKey::kProvider: {
        if (!e.provider.empty()) provider_of_[e.item] = e.provider;
        auto it = provider_of_.find(e.item);
        if (it == provider_of_.end()) {
          return Status::InvalidArgument("item '" + e.item + "' has no provider");
        }
        return it->second;
      }
      case SharingKey::kCluster: {
        if (!e.provider.empty()) provider_of_[e.item] = e.provider;
        auto it = provider_of_.find(e.item);
        if (it == provider_of_.end()) {
          return Status::InvalidArgument("item '" + e.item + "' has no provider");
        }
        auto c = cluster_of_.find(it->second);
        return std::to_string(c == cluster_of_.end() ? 0u : c->second);
      }
    }
    return Status::Internal("unknown sharing key");
  }

  std::string name_;
  SharingKey key_;
  LearnOptions learn_;
  FeatureEncoder encoder_;
  ModelLayout layout_;
  size_t head_;
  std::unordered_map<std::string, ClusterId> cluster_of_;
  std::unordered_map<std::string, std::string> provider_of_;
  std::unordered_map<std::string, ModelState> models_;
};

class EngineStrategy final : public Strategy {
 public:
  EngineStrategy(std::string name, Engine* engine, size_t head)
      : name_(std::move(name)), engine_(engine), head_(head) {}
  std::string name() const override { return name_; }

  Result<double> Predict(const ReplayEvent& event, const Context& context) override {
    PredictRequest req;
    req.item_id = event.item;
    req.context = context;
    DYNSPEC_ASSIGN_OR_RETURN(Prediction p, engine_->Predict(req));
    return p.heads[head_];
  }

  Status Learn(const ReplayEvent& event, const Context& context) override {
    FeedbackEvent fb;
    fb.item_id = event.item;
    fb.context = context;
    fb.responses = event.responses;
    return engine_->Feedback(fb).status();
  }

 private:
  std::string name_;
  Engine* engine_;
  size_t head_;
};

size_t HeadIndex(const std::vector<HeadSpec>& heads, const std::string& head) {
  auto it =
      std::find_if(heads.begin(), heads.end(), [&](const HeadSpec& h) { return h.name == head; });
  return static_cast<size_t>(it - heads.begin());
}

}  // namespace

std::unique_ptr<Strategy> NewKeyedStrategy(std::string name, SharingKey key,
                                           const EngineOptions& options, const std::string& head,
                                           std::unordered_map<std::string, ClusterId> cluster_of) {
  return std::make_unique<KeyedStrategy>(
      std::move(name), key, options, HeadIndex(options.model.heads, head), std::move(cluster_of));
}

std::unique_ptr<Strategy> NewEngineStrategy(std::string name, Engine* engine,
                                            const std::string& head) {
  return std::make_unique<EngineStrategy>(std::move(name), engine,
                                          HeadIndex(engine->options().model.heads, head));
}

}  // namespace dynspec::eval
