#include "server/http_server.h"

#include <httplib.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "config/options_table.h"
#include "server/metrics.h"

namespace dynspec::server {
namespace {

constexpr const char* kJson = "application/json";

// Compares without an early exit, so response time does not reveal how much of a guessed
// token was right.
bool SameToken(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(Engine* engine, const ServerOptions& options)
      : engine_(engine), options_(options) {}

  ~HttpServerImpl() override { Stop(); }

  Status Init() {
    const int threads = std::max(1, options_.threads);
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server_.set_payload_max_length(options_.limits.max_body_bytes);
    server_.set_read_timeout(options_.read_timeout_seconds, 0);
    // Without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK hold every small
    // response back by about 40 ms on Linux (measured with bench_http).
    server_.set_tcp_nodelay(true);
    server_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      // Requests that never reached a route: unknown paths (404), bodies over the limit
      // (413), and the like.
      if (!res.body.empty()) return;
      Status st =
          res.status == 404 ? Status::NotFound("no route for " + req.method + " " + req.path)
          : res.status == 413
              ? Status::ResourceExhausted("body: is larger than the limit of " +
                                          std::to_string(options_.limits.max_body_bytes) + " bytes")
              : Status::InvalidArgument("request refused by the HTTP layer");
      res.set_content(EncodeError(st), kJson);
      metrics_.Record("unmatched", res.status, 0);
    });
    server_.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            if (ep) std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          res.status = 500;
          res.set_content(EncodeError(Status::Internal(what)), kJson);
        });
    AddRoutes();
    port_ = options_.port == 0
                ? server_.bind_to_any_port(options_.host)
                : (server_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
    if (port_ < 0) {
      return Status::IoError("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + ": " + std::strerror(errno));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Stop() before the accept loop runs would be lost (stop() acts only on a running
    // server), so Start returns once it runs.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::Ok();
  }

  int port() const override { return port_; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  enum class Access { kRead, kWrite };

  // Wraps a handler with authentication, timing and metrics.
  Handler Wrap(const std::string& route, Access access, Handler inner) {
    return [this, route, access, inner](const httplib::Request& req, httplib::Response& res) {
      const auto start = std::chrono::steady_clock::now();
      if (access == Access::kWrite && !options_.token.empty() && !Authorized(req)) {
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer");
        res.set_content(
            R"({"error":{"code":"UNAUTHENTICATED","message":"Authorization: missing or wrong bearer token"}})",
            kJson);
      } else {
        inner(req, res);
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      metrics_.Record(route, res.status, seconds);
    };
  }

  bool Authorized(const httplib::Request& req) const {
    const std::string header = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    return header.size() > prefix.size() && header.compare(0, prefix.size(), prefix) == 0 &&
           SameToken(header.substr(prefix.size()), options_.token);
  }

  static void Reply(httplib::Response& res, const Status& st) {
    res.status = HttpStatusFor(st);
    res.set_content(EncodeError(st), kJson);
  }
  static void Ok(httplib::Response& res, std::string body, int http_status = 200) {
    res.status = http_status;
    res.set_content(std::move(body), kJson);
  }

  void AddRoutes() {
    const std::string item = R"(/v1/items/([^/]+))";
    server_.Put(item, Wrap("put_item", Access::kWrite, [this](const auto& req, auto& res) {
                  auto input = DecodeItemPut(req.matches[1].str(), req.body, options_.limits);
                  if (!input.ok()) return Reply(res, input.status());
                  auto existing = engine_->GetItem(input->id);
                  if (existing.ok()) {
                    if (existing->provider != input->provider) {
                      return Reply(res,
                                   Status::FailedPrecondition(
                                       "provider: item '" + input->id + "' belongs to provider '" +
                                       existing->provider + "'; remove it to change its provider"));
                    }
                    Status st = engine_->UpdateContent(input->id, input->content);
                    if (!st.ok()) return Reply(res, st);
                    return Ok(res, EncodeItem(*engine_->GetItem(input->id), false));
                  }
                  Status st = engine_->Ingest(*input);
                  if (!st.ok()) return Reply(res, st);
                  auto info = engine_->GetItem(input->id);
                  if (!info.ok()) return Reply(res, info.status());
                  Ok(res, EncodeItem(*info, false), 201);
                }));
    server_.Get(item, Wrap("get_item", Access::kRead, [this](const auto& req, auto& res) {
                  auto info = engine_->GetItem(req.matches[1].str());
                  if (!info.ok()) return Reply(res, info.status());
                  Ok(res, EncodeItem(*info, req.get_param_value("embedding") == "true"));
                }));
    server_.Delete(item, Wrap("delete_item", Access::kWrite, [this](const auto& req, auto& res) {
                     Status st = engine_->Remove(req.matches[1].str());
                     if (!st.ok()) return Reply(res, st);
                     Ok(res, R"({"deleted":true})");
                   }));
    server_.Post("/v1/items:batch",
                 Wrap("items_batch", Access::kWrite, [this](const auto& req, auto& res) {
                   auto items = DecodeItemBatch(req.body, options_.limits);
                   if (!items.ok()) return Reply(res, items.status());
                   Status st = engine_->IngestBatch(*items);
                   if (!st.ok()) return Reply(res, st);
                   Ok(res, "{\"ingested\":" + std::to_string(items->size()) + "}", 201);
                 }));
    server_.Post("/v1/predict", Wrap("predict", Access::kRead, [this](const auto& req, auto& res) {
                   auto request = DecodePredict(req.body, options_.limits);
                   if (!request.ok()) return Reply(res, request.status());
                   auto p = engine_->Predict(*request);
                   if (!p.ok()) return Reply(res, p.status());
                   Ok(res, EncodePrediction(*p));
                 }));
    server_.Post("/v1/rank", Wrap("rank", Access::kWrite, [this](const auto& req, auto& res) {
                   auto request = DecodeRank(req.body, options_.limits);
                   if (!request.ok()) return Reply(res, request.status());
                   auto r = engine_->Rank(*request);
                   if (!r.ok()) return Reply(res, r.status());
                   Ok(res, EncodeRank(*r));
                 }));
    server_.Post("/v1/feedback",
                 Wrap("feedback", Access::kWrite, [this](const auto& req, auto& res) {
                   auto event = DecodeFeedback(req.body, options_.limits);
                   if (!event.ok()) return Reply(res, event.status());
                   auto r = engine_->Feedback(*event);
                   if (!r.ok()) return Reply(res, r.status());
                   Ok(res, EncodeFeedback(*r));
                 }));
    server_.Get(R"(/v1/providers/([^/]+))",
                Wrap("get_provider", Access::kRead, [this](const auto& req, auto& res) {
                  auto p = engine_->GetProvider(req.matches[1].str());
                  if (!p.ok()) return Reply(res, p.status());
                  Ok(res, EncodeProvider(*p));
                }));
    server_.Get("/v1/clusters", Wrap("clusters", Access::kRead, [this](const auto&, auto& res) {
                  Ok(res, EncodeClusters(engine_->ListClusters()));
                }));
    server_.Post("/v1/recluster", Wrap("recluster", Access::kWrite, [this](const auto&, auto& res) {
                   auto r = engine_->Recluster();
                   if (!r.ok()) return Reply(res, r.status());
                   Ok(res, EncodeRecluster(*r));
                 }));
    server_.Post("/v1/admin/backup",
                 Wrap("backup", Access::kWrite, [this](const auto& req, auto& res) {
                   auto dir = DecodeBackup(req.body, options_.limits);
                   if (!dir.ok()) return Reply(res, dir.status());
                   Status st = engine_->Backup(*dir);
                   if (!st.ok()) return Reply(res, st);
                   Ok(res, R"({"backed_up":true})");
                 }));
    server_.Post("/v1/admin/snapshot",
                 Wrap("snapshot", Access::kWrite, [this](const auto&, auto& res) {
                   Status st = engine_->SnapshotPartitions();
                   if (!st.ok()) return Reply(res, st);
                   Ok(res, R"({"snapshotted":true})");
                 }));
    server_.Get("/v1/config", Wrap("config", Access::kRead, [this](const auto&, auto& res) {
                  Ok(res, EngineOptionsToJson(engine_->options()));
                }));
    server_.Get("/healthz", Wrap("healthz", Access::kRead,
                                 [](const auto&, auto& res) { Ok(res, R"({"status":"ok"})"); }));
    server_.Get("/metrics", Wrap("metrics", Access::kRead, [this](const auto&, auto& res) {
                  std::vector<std::string> heads;
                  for (const auto& h : engine_->options().model.heads) heads.push_back(h.name);
                  res.status = 200;
                  res.set_content(metrics_.Render(engine_->Stats(), engine_->ListClusters(), heads),
                                  "text/plain; version=0.0.4");
                }));
  }

  Engine* const engine_;
  const ServerOptions options_;
  httplib::Server server_;
  RequestMetrics metrics_;
  std::thread thread_;
  int port_ = -1;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(Engine* engine,
                                                      const ServerOptions& options) {
  if (engine == nullptr) return Status::InvalidArgument("engine is null");
  if (options.port < 0 || options.port > 65535) {
    return Status::InvalidArgument("port must be in [0, 65535], got " +
                                   std::to_string(options.port));
  }
  auto server = std::make_unique<HttpServerImpl>(engine, options);
  DYNSPEC_RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace dynspec::server
