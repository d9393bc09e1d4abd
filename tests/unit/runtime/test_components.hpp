#pragma once
// Small components for planner and runtime tests, and a builder of hand-made pipelines (so
// the tests do not depend on the YAML loader).

#include "pel/core/operator.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pel::test {

using core::schema_ptr;

inline schema_ptr make_schema(std::vector<std::string> names) {
  std::vector<core::field> f;
  for (auto& n : names) f.push_back({std::move(n), std::nullopt});
  return std::make_shared<core::schema>(std::move(f));
}

/// A row of the test stream: key, sequence number per key, event time in ms.
struct row {
  std::int64_t key;
  std::int64_t seq;
  std::int64_t ts_ms;
};

/// Rows for `keys` keys, `per_key` each, in per-key order, interleaved.
inline std::vector<row> make_rows(int keys, int per_key) {
  std::vector<row> rows;
  for (int s = 0; s < per_key; ++s)
    for (int k = 0; k < keys; ++k) rows.push_back({k, s, 1000 + s * 10 + k});
  return rows;
}

/// What a vector source did, shared with the test.
struct source_probe {
  std::atomic<std::uint64_t> emitted{0};
  std::mutex mu;
  std::map<std::uint64_t, std::uint64_t> barrier_pos;  // id → emitted at on_barrier
  std::vector<std::uint64_t> committed;
  std::atomic<std::uint64_t> commit_violations{0};
  std::function<std::uint64_t()> flushed_rows;  // for commit checks
};

/// Emits the rows whose key % parallelism == instance (so per-key order holds), `chunk` rows per poll, with event
/// time ts_ms (ns). Then ends, or stays idle when `end` is false. Schema: key, seq, ts.
/// With `unbounded`, emits `key = n % 7` rows forever.
class vector_source : public core::source_base {
public:
  vector_source(std::shared_ptr<const std::vector<row>> rows, std::size_t chunk, bool end,
                std::shared_ptr<source_probe> probe, bool unbounded = false, bool ts_as_text = false)
    : rows_(std::move(rows)), chunk_(chunk), end_(end), probe_(std::move(probe)),
      unbounded_(unbounded), ts_as_text_(ts_as_text) {}
  schema_ptr output_schema() const override { return make_schema({"key", "seq", "ts"}); }
  void open(const core::operator_context& ctx) override {
    instance_ = ctx.instance;
    step_ = ctx.parallelism;
  }
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    std::size_t n = std::min(max_rows, chunk_);
    if (unbounded_) {
      for (std::size_t i = 0; i < n; ++i, ++count_) {
        core::value* r = out.main.append(static_cast<std::int64_t>(count_) * 1000);
        r[0] = static_cast<std::int64_t>(count_ % 7);
        r[1] = static_cast<std::int64_t>(count_);
        r[2] = static_cast<std::int64_t>(count_);
      }
      if (probe_) probe_->emitted += n;
      return core::poll_status::data;
    }
    std::size_t done = 0;
    while (done < n && next_ < rows_->size()) {
      const row& x = (*rows_)[next_++];
      if (static_cast<std::uint32_t>(x.key % step_) != instance_) continue;
      core::value* r = out.main.append(x.ts_ms * 1'000'000);
      r[0] = x.key;
      r[1] = x.seq;
      if (ts_as_text_) r[2] = x.seq % 10 == 3 ? std::string("bad") : std::to_string(x.ts_ms);
      else r[2] = x.ts_ms;
      ++done;
    }
    if (probe_) probe_->emitted += done;
    if (next_ >= rows_->size()) return end_ ? core::poll_status::end : core::poll_status::idle;
    return core::poll_status::data;
  }
  void progress(std::uint64_t& done, std::uint64_t& total) const override {
    if (!rows_) return source_base::progress(done, total);
    done = next_;
    total = rows_->size();
  }
  void on_barrier(std::uint64_t id) override {
    if (!probe_) return;
    std::lock_guard<std::mutex> lock(probe_->mu);
    probe_->barrier_pos[id] = probe_->emitted.load();
  }
  void on_committed(std::uint64_t id) override {
    if (!probe_) return;
    std::lock_guard<std::mutex> lock(probe_->mu);
    probe_->committed.push_back(id);
    if (probe_->flushed_rows && probe_->flushed_rows() < probe_->barrier_pos[id])
      ++probe_->commit_violations;
  }
  bool replayable() const override { return true; }
  void snapshot(core::state_writer& w) override {
    w.put<std::uint64_t>(next_);
    w.put<std::uint64_t>(count_);
  }
  void restore(core::state_reader& r) override {
    next_ = r.get<std::uint64_t>();
    count_ = r.get<std::uint64_t>();
  }

private:
  std::shared_ptr<const std::vector<row>> rows_;
  std::size_t chunk_;
  bool end_;
  std::shared_ptr<source_probe> probe_;
  bool unbounded_;
  bool ts_as_text_;
  std::size_t next_ = 0;
  std::uint32_t instance_ = 0, step_ = 1;
  std::uint64_t count_ = 0;
};

/// Everything the collecting sinks received, across instances.
struct collected {
  std::mutex mu;
  std::vector<std::vector<core::value>> rows;
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> flushed{0};  // rows written before the latest flush, summed
  std::atomic<int> closed{0};
  std::atomic<int> opened{0};
  schema_ptr schema;

  std::size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return rows.size();
  }
};

/// Appends every row to `collected`; optionally sleeps `delay_us` per batch (a slow sink).
class collect_sink : public core::sink_base {
public:
  collect_sink(std::shared_ptr<collected> c, int delay_us = 0) : c_(std::move(c)), delay_us_(delay_us) {}
  void open(const core::operator_context&, const schema_ptr& in) override {
    c_->schema = in;
    ++c_->opened;
  }
  void write(const core::batch& b) override {
    if (delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us_));
    std::lock_guard<std::mutex> lock(c_->mu);
    for (std::size_t i = 0; i < b.size(); ++i) c_->rows.emplace_back(b.row(i), b.row(i) + b.width);
    c_->written += b.size();
    mine_ += b.size();
  }
  void flush() override {
    c_->flushed += mine_ - flushed_;
    flushed_ = mine_;
  }
  void close() override { ++c_->closed; }

private:
  std::shared_ptr<collected> c_;
  int delay_us_;
  std::uint64_t mine_ = 0, flushed_ = 0;
};

/// Passes rows through unchanged.
class pass_op : public core::operator_base {
public:
  explicit pass_op(schema_ptr in) : in_(std::move(in)) {}
  schema_ptr output_schema() const override { return in_; }
  void process(core::batch& in, int, core::outputs& out) override {
    if (out.main.empty()) std::swap(out.main, in);
    else
      for (std::size_t i = 0; i < in.size(); ++i) out.main.append_move(in.row(i), in.times[i]);
  }

private:
  schema_ptr in_;
};

/// Keyed on column 0; throws when a key's `seq` (column 1) does not increase.
class keyed_check_op : public pass_op {
public:
  using pass_op::pass_op;
  std::vector<int> key_columns(int) const override { return {0}; }
  void open(const core::operator_context& ctx) override { ctx_ = ctx; }
  void process(core::batch& in, int input, core::outputs& out) override {
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto key = std::get<std::int64_t>(in.row(i)[0]);
      auto seq = std::get<std::int64_t>(in.row(i)[1]);
      auto kg = static_cast<std::uint32_t>(core::stable_hash(in.row(i)[0]) % ctx_.max_parallelism);
      if (kg < ctx_.key_group_begin || kg >= ctx_.key_group_end)
        throw std::runtime_error("key group " + std::to_string(kg) + " not owned");
      auto it = last_.find(key);
      if (it != last_.end() && it->second >= seq)
        throw std::runtime_error("key " + std::to_string(key) + " out of order");
      last_[key] = seq;
    }
    pass_op::process(in, input, out);
  }

private:
  core::operator_context ctx_;
  std::map<std::int64_t, std::int64_t> last_;
};

/// Throws "boom" on its `n`-th batch.
class boom_op : public pass_op {
public:
  boom_op(schema_ptr in, int n) : pass_op(std::move(in)), n_(n) {}
  void process(core::batch& in, int input, core::outputs& out) override {
    if (++seen_ >= n_) throw std::runtime_error("boom");
    pass_op::process(in, input, out);
  }

private:
  int n_;
  int seen_ = 0;
};

/// Throws "poison record" on the row with key 3 and seq 7, every time it sees it; passes the
/// others. Counts the rows it passed over all its instances.
class poison_op : public pass_op {
public:
  explicit poison_op(schema_ptr in) : pass_op(std::move(in)) {}
  void process(core::batch& in, int input, core::outputs& out) override {
    for (std::size_t i = 0; i < in.size(); ++i)
      if (std::get<std::int64_t>(in.row(i)[0]) == 3 && std::get<std::int64_t>(in.row(i)[1]) == 7)
        throw std::runtime_error("poison record");
    pass_op::process(in, input, out);
  }
};

/// Sends rows whose seq % 10 == 0 to the dead-letter port, passes the others.
class dead_op : public core::operator_base {
public:
  explicit dead_op(schema_ptr in) : in_(std::move(in)) {}
  schema_ptr output_schema() const override { return in_; }
  void process(core::batch& in, int, core::outputs& out) override {
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (std::get<std::int64_t>(in.row(i)[1]) % 10 == 0)
        out.dead("dead_op", "seq is a multiple of 10", in.row(i), *in_, in.times[i]);
      else
        out.main.append_move(in.row(i), in.times[i]);
    }
  }

private:
  schema_ptr in_;
};

/// Records every watermark it sees; takes any number of inputs.
struct wm_log {
  std::mutex mu;
  std::vector<std::int64_t> wms;
  std::atomic<int> finished{0};
  std::int64_t last() {
    std::lock_guard<std::mutex> lock(mu);
    return wms.empty() ? INT64_MIN : wms.back();
  }
};
class wm_op : public pass_op {
public:
  wm_op(schema_ptr in, std::shared_ptr<wm_log> log) : pass_op(std::move(in)), log_(std::move(log)) {}
  void on_watermark(core::event_time wm, core::outputs&) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->wms.push_back(wm.ns);
  }
  void finish(core::outputs&) override { ++log_->finished; }

private:
  std::shared_ptr<wm_log> log_;
};

/// A pipeline built in code.
struct pipeline_builder {
  spec::pipeline p;

  pipeline_builder() { p.file = "test.yaml"; }

  static std::vector<spec::output_ref> refs(const std::vector<std::string>& inputs) {
    std::vector<spec::output_ref> out;
    for (const auto& in : inputs) {
      spec::output_ref r;
      auto dot = in.find('.');
      r.component = in.substr(0, dot);
      if (dot != std::string::npos) r.port = in.substr(dot + 1);
      out.push_back(r);
    }
    return out;
  }
  spec::component& add(spec::component_kind k, const std::string& name, const std::string& type,
                       std::uint32_t par, const std::vector<std::string>& inputs) {
    spec::component c;
    c.name = name;
    c.type = type;
    c.kind = k;
    c.parallelism = par;
    c.inputs = refs(inputs);
    c.at = {static_cast<int>(10 + p.sources.size() + p.operators.size() + p.sinks.size()), 3};
    auto& list = k == spec::component_kind::source ? p.sources
                 : k == spec::component_kind::operator_ ? p.operators
                                                       : p.sinks;
    list.push_back(std::move(c));
    return list.back();
  }
  spec::component& source(const std::string& name, const std::string& type, std::uint32_t par = 1) {
    return add(spec::component_kind::source, name, type, par, {});
  }
  spec::component& op(const std::string& name, const std::string& type, std::vector<std::string> in,
                      std::uint32_t par = 1) {
    return add(spec::component_kind::operator_, name, type, par, in);
  }
  spec::component& sink(const std::string& name, const std::string& type, std::vector<std::string> in,
                        std::uint32_t par = 1) {
    return add(spec::component_kind::sink, name, type, par, in);
  }
};

inline spec::component_schema schema_of(const std::string& type, int min_in = 1, int max_in = 1,
                                        std::vector<std::string> ports = {}) {
  spec::component_schema s;
  s.type = type;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.ports = std::move(ports);
  return s;
}

/// Registers the stateless test operators: pass, keyed, dead, boom (3rd batch), poison (one row).
inline void add_test_operators(spec::registry& reg) {
  reg.add_operator(schema_of("pass"), [](const spec::config&, const std::vector<schema_ptr>& in) {
    return std::make_unique<pass_op>(in.at(0));
  });
  reg.add_operator(schema_of("keyed"), [](const spec::config&, const std::vector<schema_ptr>& in) {
    return std::make_unique<keyed_check_op>(in.at(0));
  });
  reg.add_operator(schema_of("dead"), [](const spec::config&, const std::vector<schema_ptr>& in) {
    return std::make_unique<dead_op>(in.at(0));
  });
  reg.add_operator(schema_of("boom"), [](const spec::config&, const std::vector<schema_ptr>& in) {
    return std::make_unique<boom_op>(in.at(0), 3);
  });
  reg.add_operator(schema_of("poison"), [](const spec::config&, const std::vector<schema_ptr>& in) {
    return std::make_unique<poison_op>(in.at(0));
  });
}

} // namespace pel::test
