// The HTTP server end to end on an ephemeral loopback port: every route, the error paths
// (each a 4xx naming the problem and changing nothing), authentication, limits, a concurrent
// mixed workload, and graceful shutdown of `dynspec serve` on SIGTERM.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "dynspec/engine.h"
#include "server/http_server.h"
#include "test_util.h"

namespace dynspec::server {
namespace {

using nlohmann::json;
using testing_util::ScopedTempDir;

EngineOptions SmallOptions() {
  EngineOptions o;
  o.embed.dim = 64;
  o.blend.k = 4;
  o.recluster.period_seconds = 0;
  o.rank.expiry_check_ms = 0;
  return o;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith(ServerOptions{}); }
  void StartWith(ServerOptions so) {
    server_.reset();
    auto e = Engine::Open(SmallOptions());
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    so.port = 0;
    so.threads = 4;
    so.limits.max_body_bytes = 64 * 1024;
    auto s = HttpServer::Start(engine_.get(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override { server_.reset(); }

  struct Reply {
    int status = 0;
    json body;
    std::string raw;
  };
  static Reply From(const httplib::Result& r) {
    Reply out;
    if (!r) return out;
    out.status = r->status;
    out.raw = r->body;
    out.body = json::parse(r->body, nullptr, false);
    return out;
  }
  Reply Post(const std::string& path, const std::string& body, const httplib::Headers& h = {}) {
    return From(client_->Post(path.c_str(), h, body, "application/json"));
  }
  Reply Put(const std::string& path, const std::string& body, const httplib::Headers& h = {}) {
    return From(client_->Put(path.c_str(), h, body, "application/json"));
  }
  Reply Get(const std::string& path) { return From(client_->Get(path.c_str())); }
  Reply Delete(const std::string& path) { return From(client_->Delete(path.c_str())); }

  void SeedCatalog() {
    ASSERT_EQ(Put("/v1/items/g1",
                  R"({"provider":"Music","text":"guitar lessons and gear reviews for guitarists"})")
                  .status,
              201);
    ASSERT_EQ(Put("/v1/items/g2",
                  R"({"provider":"Music","text":"guitar player lessons, songs and gear"})")
                  .status,
              201);
    auto batch = Post("/v1/items:batch", R"({"items":[
      {"id":"r1","provider":"Food","text":"healthy recipes and cooking tips for families"},
      {"id":"r2","provider":"Food","text":"quick family recipes for busy kitchens"}]})");
    ASSERT_EQ(batch.status, 201) << batch.raw;
  }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ServerTest, EveryRouteAnswers) {
  SeedCatalog();
  auto item = Get("/v1/items/g1");
  ASSERT_EQ(item.status, 200) << item.raw;
  EXPECT_EQ(item.body["provider"], "Music");
  EXPECT_FALSE(item.body.contains("embedding"));
  EXPECT_EQ(Get("/v1/items/g1?embedding=true").body["embedding"].size(), 64u);

  // Re-PUT updates the content and keeps the model.
  auto update = Put("/v1/items/g2", R"({"provider":"Music","text":"guitar songs"})");
  EXPECT_EQ(update.status, 200) << update.raw;

  auto fb = Post("/v1/feedback", R"({"item_id":"g1","responses":{"click":1,"like":1},
                                     "context":{"sparse":{"country=de":1}}})");
  ASSERT_EQ(fb.status, 200) << fb.raw;
  EXPECT_DOUBLE_EQ(fb.body["reward"].get<double>(), 3.0);
  EXPECT_TRUE(fb.body["item_joined_partition"].get<bool>());

  auto p = Post("/v1/predict", R"({"item_id":"g2","context":{"sparse":{"country=de":1}}})");
  ASSERT_EQ(p.status, 200) << p.raw;
  EXPECT_TRUE(p.body["heads"].contains("click"));
  ASSERT_FALSE(p.body["blend"].empty());
  double total = 0;
  for (const auto& c : p.body["blend"]) total += c["weight"].get<double>();
  EXPECT_NEAR(total, 1.0, 1e-9);
  auto inline_p = Post("/v1/predict", R"({"content":{"text":"guitar gear"},"provider":"Music"})");
  EXPECT_EQ(inline_p.status, 200) << inline_p.raw;

  auto rank = Post("/v1/rank", R"({"candidates":["g1","g2","r1"],"slate_size":2})");
  ASSERT_EQ(rank.status, 200) << rank.raw;
  ASSERT_EQ(rank.body["slate"].size(), 2u);
  const std::string event = rank.body["event_id"];
  const std::string first = rank.body["slate"][0]["item_id"];
  auto rank_fb =
      Post("/v1/feedback",
           json{{"event_id", event}, {"item_id", first}, {"responses", {{"click", 1}}}}.dump());
  EXPECT_EQ(rank_fb.status, 200) << rank_fb.raw;
  auto replay =
      Post("/v1/feedback",
           json{{"event_id", event}, {"item_id", first}, {"responses", {{"click", 1}}}}.dump());
  EXPECT_EQ(replay.status, 409) << replay.raw;

  auto provider = Get("/v1/providers/Food");
  ASSERT_EQ(provider.status, 200);
  EXPECT_EQ(provider.body["items"], 2);
  auto clusters = Get("/v1/clusters");
  ASSERT_EQ(clusters.status, 200);
  EXPECT_FALSE(clusters.body["clusters"].empty());
  auto recluster = Post("/v1/recluster", "");
  EXPECT_EQ(recluster.status, 200) << recluster.raw;
  EXPECT_TRUE(recluster.body.contains("moves"));
  auto config = Get("/v1/config");
  ASSERT_EQ(config.status, 200);
  EXPECT_EQ(config.body["embed.dim"], "64");
  EXPECT_EQ(Get("/healthz").body["status"], "ok");

  auto del = Delete("/v1/items/r2");
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(Get("/v1/items/r2").status, 404);

  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* want :
       {"dynspec_http_requests_total{route=\"predict\",code=\"200\"} 2",
        "dynspec_http_request_duration_seconds_bucket{route=\"feedback\",le=\"+Inf\"} 3",
        "dynspec_feedback_events_total 2", "dynspec_learner_loss{head=\"click\"}",
        "dynspec_partition_items{cluster=", "dynspec_items 3"}) {
    EXPECT_NE(metrics->body.find(want), std::string::npos) << want << "\n" << metrics->body;
  }
}

TEST_F(ServerTest, BadInputIsA4xxNamingTheProblemAndChangesNothing) {
  SeedCatalog();
  ASSERT_EQ(Post("/v1/feedback", R"({"item_id":"g1","responses":{"click":1}})").status, 200);
  const EngineStats before = engine_->Stats();
  const uint64_t g1_version = engine_->GetItem("g1")->version;
  struct Case {
    std::string method, path, body;
    int status;
    std::string message;
  };
  const std::string long_id(300, 'x');
  const std::vector<Case> cases = {
      {"POST", "/v1/feedback", "{not json", 400, "not valid JSON"},
      {"POST", "/v1/feedback", "[1,2]", 400, "must be a JSON object"},
      {"POST", "/v1/feedback", R"({"item_id":"g1"})", 400, "responses: is required"},
      {"POST", "/v1/feedback", R"({"item_id":"g1","responses":{"click":"yes"}})", 400,
       "responses.click: must be a number"},
      {"POST", "/v1/feedback", R"({"item_id":"g1","responses":{"click":1},"respones":1})", 400,
       "respones: is not a known field"},
      {"POST", "/v1/feedback", R"({"item_id":"g1","responses":{"clicks":1}})", 400,
       "unknown head 'clicks'"},
      {"POST", "/v1/feedback", R"({"item_id":"nope","responses":{"click":1}})", 404, "'nope'"},
      {"POST", "/v1/feedback", R"({"item_id":"g1","responses":{"click":1e999}})", 400, ""},
      {"POST", "/v1/feedback",
       R"({"item_id":"g1","responses":{"click":1},"context":{"dense":[1]}})", 400, "dense"},
      {"POST", "/v1/predict", R"({"item_id":5})", 400, "item_id: must be a string"},
      {"POST", "/v1/predict", R"({})", 400, "item_id: is required"},
      {"POST", "/v1/predict", R"({"item_id":")" + long_id + R"("})", 400, "limit is 256"},
      {"POST", "/v1/predict", R"({"content":{"vector":[1,2,3]},"provider":"Music"})", 400,
       "expected 64"},
      {"POST", "/v1/rank", R"({"candidates":"g1"})", 400, "candidates: must be an array"},
      {"POST", "/v1/rank", R"({"candidates":["g1","zz"]})", 404, "'zz'"},
      {"POST", "/v1/rank", R"({"candidates":["g1"],"slate_size":-1})", 400, "slate_size"},
      {"PUT", "/v1/items/x1", R"({"provider":"Music"})", 400, "exactly one of text and vector"},
      {"PUT", "/v1/items/x1", R"({"provider":"Music","vector":[1,null]})", 400, "vector[1]"},
      {"PUT", "/v1/items/g1", R"({"provider":"Food","text":"recipes"})", 409,
       "belongs to provider 'Music'"},
      {"POST", "/v1/items:batch", R"({"items":[{"id":"b1","provider":"P","text":"ok"},
        {"id":"b2","provider":"P","vector":[0,0]}]})",
       400, "items[1]"},
      {"POST", "/v1/items:batch", R"({"items":[]})", 400, "items: is empty"},
      {"POST", "/v1/admin/backup", R"({"dir":""})", 400, "dir: is empty"},
      {"POST", "/v1/feedback", std::string(40, '[') + std::string(40, ']'), 400, "nests deeper"},
      {"GET", "/v1/items/nope", "", 404, "'nope'"},
      {"GET", "/v1/providers/nope", "", 404, "'nope'"},
      {"GET", "/v1/nothing-here", "", 404, "no route"},
      {"DELETE", "/v1/items/nope", "", 404, "'nope'"},
  };
  for (const auto& c : cases) {
    Reply r;
    if (c.method == "POST") r = Post(c.path, c.body);
    if (c.method == "PUT") r = Put(c.path, c.body);
    if (c.method == "GET") r = Get(c.path);
    if (c.method == "DELETE") r = Delete(c.path);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << "\n" << r.raw;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.raw;
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find(c.message), std::string::npos)
        << c.body << "\n"
        << r.raw;
  }
  const EngineStats after = engine_->Stats();
  EXPECT_EQ(after.items, before.items);
  EXPECT_EQ(after.feedback_events, before.feedback_events);
  EXPECT_EQ(after.pending_decisions, before.pending_decisions);
  EXPECT_EQ(engine_->GetItem("g1")->version, g1_version);
  EXPECT_FALSE(engine_->GetItem("b1").ok()) << "a batch is all or nothing";
}

TEST_F(ServerTest, OversizedBodyIs413) {
  SeedCatalog();
  const std::string big =
      R"({"item_id":"g1","responses":{"click":1},"pad":")" + std::string(70 * 1024, 'a') + "\"}";
  auto r = Post("/v1/feedback", big);
  EXPECT_EQ(r.status, 413) << r.raw;
  EXPECT_EQ(engine_->Stats().feedback_events, 0u);
}

TEST_F(ServerTest, WritesNeedTheBearerToken) {
  ServerOptions so;
  so.token = "s3cret-token-0123456789";
  StartWith(so);
  const httplib::Headers good = {{"Authorization", "Bearer s3cret-token-0123456789"}};
  const httplib::Headers bad = {{"Authorization", "Bearer s3cret-token-0123456788"}};
  const std::string body = R"({"provider":"P","text":"guitar"})";
  EXPECT_EQ(Put("/v1/items/a", body).status, 401);
  auto wrong = Put("/v1/items/a", body, bad);
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body["error"]["code"], "UNAUTHENTICATED");
  EXPECT_FALSE(engine_->GetItem("a").ok());
  EXPECT_EQ(Put("/v1/items/a", body, good).status, 201);
  EXPECT_EQ(Post("/v1/feedback", R"({"item_id":"a","responses":{"click":1}})").status, 401);
  EXPECT_EQ(Post("/v1/recluster", "").status, 401);
  // Reads stay open.
  EXPECT_EQ(Get("/v1/items/a").status, 200);
  EXPECT_EQ(Post("/v1/predict", R"({"item_id":"a"})").status, 200);
}

TEST_F(ServerTest, ConcurrentMixedWorkloadKeepsCountsExact) {
  SeedCatalog();
  constexpr int kThreads = 4, kRounds = 60;
  std::atomic<int> failures{0}, feedback_ok{0}, ingested{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", server_->port());
      for (int i = 0; i < kRounds; ++i) {
        auto check = [&](const httplib::Result& r, int want) {
          if (!r || r->status != want) failures++;
          return r && r->status == want;
        };
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (check(c.Put(("/v1/items/" + id).c_str(),
                        R"({"provider":"P)" + std::to_string(t % 2) +
                            R"(","text":"guitar recipes )" + std::to_string(i) + "\"}",
                        "application/json"),
                  201)) {
          ingested++;
        }
        check(c.Post("/v1/predict", R"({"item_id":")" + id + "\"}", "application/json"), 200);
        auto rank =
            c.Post("/v1/rank", R"({"candidates":["g1","g2","r1","r2"]})", "application/json");
        if (check(rank, 200)) {
          const std::string event = json::parse(rank->body)["event_id"];
          if (check(c.Post("/v1/feedback",
                           json{{"event_id", event}, {"responses", {{"click", i % 2}}}}.dump(),
                           "application/json"),
                    200)) {
            feedback_ok++;
          }
        }
        if (check(c.Post("/v1/feedback", R"({"item_id":")" + id + R"(","responses":{"like":1}})",
                         "application/json"),
                  200)) {
          feedback_ok++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const EngineStats s = engine_->Stats();
  EXPECT_EQ(s.items, 4u + ingested.load());
  EXPECT_EQ(s.feedback_events, static_cast<uint64_t>(feedback_ok.load()));
  EXPECT_EQ(s.pending_decisions, 0u);
  EXPECT_EQ(feedback_ok.load(), 2 * kThreads * kRounds);
}

// `dynspec serve` as a separate process: SIGTERM stops it cleanly, and what it acknowledged
// is in the data directory afterwards.
TEST(ServeProcess, SigtermStopsGracefullyAndKeepsAcknowledgedWrites) {
  ScopedTempDir dir;
  const std::string data = dir.Sub("data");
  int out_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    close(out_pipe[0]);
    execl(DYNSPEC_CLI_PATH, "dynspec", "serve", "--data-dir", data.c_str(), "--port", "0",
          "--embed.dim", "64", "--recluster.period_seconds", "0", nullptr);
    _exit(127);
  }
  close(out_pipe[1]);
  FILE* out = fdopen(out_pipe[0], "r");
  char line[512] = {0};
  ASSERT_NE(fgets(line, sizeof line, out), nullptr) << "the server printed nothing";
  const std::string banner = line;
  const auto colon = banner.rfind(':');
  ASSERT_NE(colon, std::string::npos) << banner;
  const int port = std::atoi(banner.c_str() + colon + 1);
  ASSERT_GT(port, 0) << banner;

  httplib::Client c("127.0.0.1", port);
  auto put =
      c.Put("/v1/items/a", R"({"provider":"P","text":"guitar lessons"})", "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 201);
  auto fb = c.Post("/v1/feedback", R"({"item_id":"a","responses":{"like":1}})", "application/json");
  ASSERT_TRUE(fb);
  EXPECT_EQ(fb->status, 200);

  // Hot backup through the running server with the CLI, then restore by opening the copy.
  const std::string backup = dir.Sub("backup");
  const std::string cmd = std::string(DYNSPEC_CLI_PATH) +
                          " backup --server 127.0.0.1:" + std::to_string(port) + " --to " + backup +
                          " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // The copy carries the partition snapshots, so it opens without rebuilding its indexes.
  EXPECT_TRUE(std::filesystem::exists(backup + "/partitions/cluster-0.part"));
  {
    auto copy = OpenDurableStore(backup, {});
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    EngineOptions with_snapshots = SmallOptions();
    with_snapshots.partition_snapshot_dir = backup + "/partitions";
    auto restored = Engine::Open(with_snapshots, std::move(copy).value());
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    auto item = (*restored)->GetItem("a");
    ASSERT_TRUE(item.ok());
    EXPECT_EQ(item->model.evidence, 1) << "the backup holds the acknowledged feedback";
  }

  // On-demand re-clustering of the serving engine from the CLI.
  const std::string recluster = std::string(DYNSPEC_CLI_PATH) +
                                " recluster --server 127.0.0.1:" + std::to_string(port) + " > " +
                                dir.Sub("recluster.json");
  ASSERT_EQ(std::system(recluster.c_str()), 0) << recluster;
  {
    std::ifstream in(dir.Sub("recluster.json"));
    const json report = json::parse(in, nullptr, false);
    ASSERT_TRUE(report.is_object());
    EXPECT_TRUE(report.contains("moves") && report.contains("stability_ari"));
  }

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  std::string rest;
  while (fgets(line, sizeof line, out)) rest += line;
  fclose(out);
  EXPECT_NE(rest.find("stopped"), std::string::npos) << rest;

  auto store = OpenDurableStore(data, {});
  ASSERT_TRUE(store.ok()) << store.status().ToString() << " (the lock must be released)";
  EngineOptions o = SmallOptions();
  auto engine = Engine::Open(o, std::move(store).value());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto item = (*engine)->GetItem("a");
  ASSERT_TRUE(item.ok());
  EXPECT_EQ(item->model.evidence, 1);
}

}  // namespace
}  // namespace dynspec::server
