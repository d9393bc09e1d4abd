#pragma once
/// \file
/// Helpers for the Kafka tests: configs built in code, a kcat runner (the independent
/// client), polling with deadlines, and driving a source or sink without the runtime.

#include "kafka_sink.hpp"
#include "kafka_source.hpp"

#include "pel/connectors/kafka_broker.hpp"
#include "pel/spec/config.hpp"
#include "pel/testing/poll.hpp"
#include "pel/spec/node.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pel::kafka_test {

// --- config trees ------------------------------------------------------------------------

inline spec::node_ptr scalar(std::string text) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::scalar;
  n->text = std::move(text);
  n->at = {3, 5};
  return n;
}

inline spec::node_ptr list(const std::vector<std::string>& items) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::sequence;
  n->at = {4, 5};
  for (const auto& i : items) n->items.push_back(scalar(i));
  return n;
}

inline spec::node_ptr map(std::vector<std::pair<std::string, spec::node_ptr>> entries) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::map;
  n->at = {2, 3};
  int line = 3;
  for (auto& [k, v] : entries) n->entries.push_back({k, {line++, 3}, std::move(v)});
  return n;
}

/// A config with its params kept alive beside it.
struct owned_config {
  std::shared_ptr<std::vector<spec::param>> params;
  spec::config cfg;
  owned_config(spec::node_ptr n, std::vector<spec::param> p, std::string path)
      : params(std::make_shared<std::vector<spec::param>>(std::move(p))),
        cfg(std::move(n), std::move(path), params.get()) {}
};

inline owned_config source_config(std::vector<std::pair<std::string, spec::node_ptr>> e) {
  return owned_config(map(std::move(e)), connectors::kafka_source_params(), "sources.in");
}
inline owned_config sink_config(std::vector<std::pair<std::string, spec::node_ptr>> e) {
  return owned_config(map(std::move(e)), connectors::kafka_sink_params(), "sinks.out");
}

/// The JSON schema used by most tests: {id: int, sym: string, px: double}.
inline spec::node_ptr test_schema() {
  return map({{"id", scalar("int")}, {"sym", scalar("string")}, {"px", scalar("double")}});
}

// --- processes and files -----------------------------------------------------------------

/// A fresh directory, removed on destruction.
class temp_dir {
public:
  temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("pel-kafka-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
  std::filesystem::path path_;
};

/// Runs a shell command, returns its stdout and exit code.
inline std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (status) *status = rc;
  return out;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

/// kcat's -P: one message per line of `lines` (kcat -K for "key<sep>value" lines).
inline int kcat_produce(const std::string& boot, const std::string& topic,
                        const std::vector<std::string>& lines, const std::string& extra = "") {
  temp_dir dir;
  auto path = dir.file("in.txt");
  {
    std::ofstream f(path);
    for (const auto& l : lines) f << l << "\n";
  }
  int status = -1;
  run("kcat -b " + boot + " -P -t " + topic + " " + extra + " -l " + path + " 2>&1", &status);
  return status;
}

/// kcat's -C from the beginning to the current end; one formatted line per message.
inline std::vector<std::string> kcat_consume(const std::string& boot, const std::string& topic,
                                             const std::string& format = "%s\\n") {
  return split_lines(run("timeout 60 kcat -b " + boot + " -C -t " + topic +
                         " -o beginning -e -q -f '" + format + "' 2>/dev/null"));
}

/// Produces `payloads` to `topic`/`partition` with a plain librdkafka producer (for messages
/// kcat cannot send, such as an empty one) and waits for their delivery. True when all were
/// delivered.
inline bool produce_raw(const std::string& boot, const std::string& topic, int partition,
                        const std::vector<std::string>& payloads) {
  using namespace connectors::kafka_detail;
  conf_ptr conf(rd_kafka_conf_new());
  std::string err;
  try_set(conf.get(), "bootstrap.servers", boot, err);
  char errstr[256];
  handle_ptr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr));
  if (!rk) return false;
  conf.release();
  for (const auto& p : payloads)
    if (rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(const_cast<char*>(p.data()), p.size()),
                          RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return false;
  return rd_kafka_flush(rk.get(), 30000) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/// `pel::testing::poll_until`, by default for 30 s with 2 ms between calls.
template <class F>
bool poll_until(F&& step, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return testing::poll_until(std::forward<F>(step), timeout, std::chrono::milliseconds(2));
}

/// `{"id":i,"sym":"S<i%7>","px":<i>.5}` for i in [from, to).
inline std::vector<std::string> json_lines(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i)
    out.push_back("{\"id\":" + std::to_string(i) + ",\"sym\":\"S" + std::to_string(i % 7) +
                  "\",\"px\":" + std::to_string(i) + ".5}");
  return out;
}

/// The same lines keyed `k<i>|...` for kcat's `-K '|'`: keys spread the messages over the
/// partitions (without keys librdkafka's sticky partitioner may put a whole burst in one).
inline std::vector<std::string> keyed_json_lines(int from, int to) {
  auto lines = json_lines(from, to);
  for (int i = from; i < to; ++i) lines[i - from] = "k" + std::to_string(i) + "|" + lines[i - from];
  return lines;
}

/// kcat option for keyed_json_lines.
inline const char* keyed = "-K '|'";

/// Polls `src` into `out` until `rows` main rows are there or `timeout` passes.
inline bool read_rows(connectors::kafka_source& src, core::outputs& out, std::size_t rows,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return poll_until(
      [&] {
        src.poll(out, 512);
        return out.main.size() >= rows;
      },
      timeout);
}

/// The int64 values of column `col`.
inline std::vector<std::int64_t> ints(const core::batch& b, std::size_t col) {
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < b.size(); ++i) out.push_back(std::get<std::int64_t>(b.row(i)[col]));
  return out;
}

/// The schema of `rows`: id (int), sym (string), px (number).
inline core::schema_ptr row_schema() {
  return std::make_shared<core::schema>(std::vector<core::field>{{"id", core::value_type::integer},
                                                                 {"sym", core::value_type::string},
                                                                 {"px", core::value_type::number}});
}

/// Rows id in [from, to): {id, "S<id%7>", id + 0.5}, event time 1.7e12 ms + id.
inline core::batch rows(int from, int to) {
  core::batch b(3);
  for (int i = from; i < to; ++i) {
    auto* r = b.append((1'700'000'000'000LL + i) * 1'000'000);
    r[0] = std::int64_t{i};
    r[1] = std::string("S") + std::to_string(i % 7);
    r[2] = i + 0.5;
  }
  return b;
}

}  // namespace pel::kafka_test
