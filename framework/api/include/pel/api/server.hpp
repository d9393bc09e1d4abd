#pragma once
/// \file
/// The HTTP API of `pel run --http` (docs/api.md): JSON endpoints, Prometheus `/metrics`, tap
/// streams and the embedded dashboard, read-only, over the runtime's monitoring interface
/// (`runtime::job::status`, `graph`, `tap`). No HTTP type appears here.

#include "pel/runtime/job.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace pel::api {

/// Where and how the server listens.
struct settings {
  std::string host = "127.0.0.1";  ///< address to bind
  int port = 0;                    ///< 0: a free port (see `server::start`)
  /// Bearer token every request must carry; required when `host` is not a loopback address.
  std::string token;
  double sample_interval_s = 1.0;    ///< how often the sampler reads every job
  std::size_t history_points = 300;  ///< samples kept for `/history` (5 minutes at 1 s)
};

/// True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& host);

/// The HTTP server. Add the pipelines, then `start()`. The jobs must outlive the server
/// (or its `stop()`). Methods are not meant to be called from several threads at once.
class server {
public:
  explicit server(settings s);
  /// Stops (see `stop`).
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Serves pipeline `name` (its file as given) from `job`. Before `start` only.
  void add(const std::string& name, const std::string& file, runtime::job& job);

  /// Takes the first sample, binds and listens on threads of its own; returns the port it
  /// listens on. Throws std::runtime_error with a message saying what to do when the
  /// settings are refused (a non-loopback address without a token) or the address cannot be
  /// bound.
  int start();

  /// Ends tap streams, stops listening and sampling, and joins the threads. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pel::api
