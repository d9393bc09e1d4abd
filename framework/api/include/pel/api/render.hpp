#pragma once
/// \file
/// The HTTP API's documents (docs/api.md) as plain functions of the runtime's snapshots, so
/// that they are testable without a socket. Rates and fractions come from two snapshots of
/// the same job: the previous sample and the current one.

#include "pel/runtime/job.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pel::api {

/// One snapshot of a job: its status and graph, taken together by the sampler.
struct sample {
  runtime::job_status status;
  runtime::job_graph graph;
};

/// A pipeline as the server knows it: its name and file, and its two latest samples
/// (`prev` == `cur` when only one was taken yet: then rates are `null`).
struct pipeline_view {
  std::string name;
  std::string file;
  const sample* prev = nullptr;
  const sample* cur = nullptr;
};

/// One point of `/history`: rates and fractions over one sampling interval.
struct history_point {
  std::int64_t at_ms = 0;
  double records_in_per_s = 0, records_out_per_s = 0;
  struct component {
    std::string name;
    double in = 0, out = 0, busy = 0, backpressured = 0;
  };
  std::vector<component> components;  ///< in graph order
};

/// `"2024-01-02T14:30:00.000Z"` for `ns` since the epoch (UTC, milliseconds).
std::string iso_time(std::int64_t ns);

/// `{"error": "text"}`.
std::string render_error(std::string_view text);

/// `GET /api/v1/pipelines`.
std::string render_pipelines(const std::vector<pipeline_view>& pipelines);
/// `GET /api/v1/pipelines/{name}`: the physical graph as it is now.
std::string render_pipeline(const pipeline_view& p);
/// `GET /api/v1/pipelines/{name}/instances`.
std::string render_instances(const sample& prev, const sample& cur);
/// `GET /api/v1/pipelines/{name}/sources`.
std::string render_sources(const sample& prev, const sample& cur);
/// `GET /api/v1/pipelines/{name}/dead-letters`.
std::string render_dead_letters(const runtime::job_status& s);
/// `GET /api/v1/pipelines/{name}/late`.
std::string render_late(const runtime::job_status& s);
/// `GET /api/v1/pipelines/{name}/checkpoints`.
std::string render_checkpoints(const runtime::job_status& s);
/// `GET /api/v1/pipelines/{name}/restarts`.
std::string render_restarts(const runtime::job_status& s);
/// `GET /api/v1/pipelines/{name}/scaling`.
std::string render_scaling(const runtime::job_status& s);

/// The `/history` point for the interval from `prev` to `cur`.
history_point make_history_point(const sample& prev, const sample& cur);
/// `GET /api/v1/pipelines/{name}/history`.
std::string render_history(const std::deque<history_point>& points, double interval_s);

/// One line of a tap stream (without the newline): `row_json` is the row as a JSON object.
std::string render_tap_line(std::string_view component, std::string_view port, std::int64_t at_ms,
                            std::string_view row_json);

/// Request durations of the API itself, by route, for `pel_http_request_duration_seconds`.
/// Not thread-safe: the server guards it.
class request_histograms {
public:
  /// Upper bounds of the buckets, in seconds (+Inf is implied).
  static const std::vector<double>& bounds();
  /// Counts one request to `path` (a route pattern, so that the label stays bounded).
  void observe(const std::string& path, double seconds);
  /// Appends the histogram family in the Prometheus text format.
  void render(std::string& out) const;

private:
  struct histogram {
    std::vector<std::uint64_t> counts;  ///< per bucket, not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  std::map<std::string, histogram> by_path_;
};

/// A pipeline for `/metrics`: its name and a status and graph read at scrape time.
struct metrics_input {
  std::string name;
  const runtime::job_status* status = nullptr;
  const runtime::job_graph* graph = nullptr;
};

/// `GET /metrics`: the Prometheus text format 0.0.4, one family per metric name.
std::string render_metrics(const std::vector<metrics_input>& pipelines,
                           const request_histograms& requests);

/// `s` as a Prometheus label value (backslash, double quote and newline escaped).
std::string escape_label(std::string_view s);

}  // namespace pel::api
