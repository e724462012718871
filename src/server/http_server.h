// `dynspec serve`: the versioned JSON API over one Engine (routes and formats in
// docs/api.md), on cpp-httplib.
//
// Contract:
//  - Start binds (port 0 picks a free port), then serves on its own threads until Stop.
//  - Every route answers JSON; errors are {"error": {"code", "message"}} with a 4xx for bad
//    input (the message names the field) and change nothing.
//  - With a token, every route but GET routes and POST /v1/predict requires
//    "Authorization: Bearer <token>"; a missing or wrong token is 401.
//  - Stop stops accepting connections, lets the requests in flight finish, and returns; the
//    caller then destroys the engine (which flushes its state).
#pragma once

#include <memory>
#include <string>

#include "dynspec/engine.h"
#include "dynspec/status.h"
#include "server/api.h"

namespace dynspec::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;    // 0: any free port (see HttpServer::port)
  int threads = 8;    // worker threads
  std::string token;  // empty: no authentication
  ApiLimits limits;
  int read_timeout_seconds = 10;
};

class HttpServer {
 public:
  // Binds and starts serving `engine` (which must outlive the server).
  static Result<std::unique_ptr<HttpServer>> Start(Engine* engine, const ServerOptions& options);
  virtual ~HttpServer() = default;
  virtual int port() const = 0;
  // Idempotent; also called by the destructor.
  virtual void Stop() = 0;
};

}  // namespace dynspec::server
