#include "pel/buffer/buffered_sink.hpp"

#include "pel/buffer/segment_queue.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace fs = std::filesystem;

namespace pel::buffer {
namespace {

using clock = std::chrono::steady_clock;
using level = core::source_notice::level;

constexpr std::uint64_t mib = 1ull << 20;
/// How long a blocked `write` waits per attempt before saying so again and re-checking.
constexpr std::chrono::milliseconds block_step{500};
/// A sink failing this long is said again (with the backlog) while it keeps failing.
constexpr auto repeat_failure = std::chrono::seconds(30);

std::string describe(const core::schema& s) {
  std::string out;
  for (const auto& f : s.fields()) {
    out += f.name;
    out += ':';
    out += f.type ? std::string(core::to_string(*f.type)) : std::string("any");
    out += '\n';
  }
  return out;
}

std::string seconds_text(clock::duration d) {
  std::ostringstream o;
  o.precision(1);
  o << std::fixed << std::chrono::duration<double>(d).count() << " s";
  return o.str();
}

class buffered_sink final : public core::sink_base {
public:
  buffered_sink(std::function<core::sink_ptr()> make, sink_options o)
      : make_(std::move(make)), o_(std::move(o)) {}

  ~buffered_sink() override { stop_forwarder(false); }

  void bind(const core::sink_binding& b) override {
    notify_ = b.notify;
    if (b.gauges != nullptr) g_ = b.gauges;
  }

  void open(const core::operator_context& ctx, const core::schema_ptr& input) override {
    ctx_ = ctx;
    schema_ = input;
    width_ = input ? static_cast<std::uint32_t>(input->size()) : 0;
    who_ = "sink '" + ctx.name + "'" + (ctx.parallelism > 1 ? " instance " + std::to_string(ctx.instance) : "");
    dir_ = o_.dir + "/" + ctx.name + "-" + std::to_string(ctx.instance);
    options qo;
    qo.dir = dir_;
    qo.max_size = o_.max_size;
    qo.segment_size = std::clamp<std::uint64_t>(o_.max_size / 4, 1024, 64 * mib);
    qo.when_full = o_.drop_oldest ? when_full::drop_oldest : when_full::block;
    qo.sync = o_.fsync ? sync_policy::every_append : sync_policy::none;
    // A restarted instance may open before its predecessor in this process let go of the
    // directory: wait for it a while. Another process holding it is an error at once.
    const auto give_up = clock::now() + std::chrono::seconds(30);
    for (;;) {
      try {
        q_ = std::make_unique<segment_queue>(qo);
        break;
      } catch (const locked_error& e) {
        if (e.owner() != static_cast<long>(::getpid()) || clock::now() >= give_up) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    const recovery& rec = q_->recovered();
    for (const auto& w : rec.warnings) say(level::warning, "buffer " + dir_ + ": " + w);
    check_schema(rec.records);
    if (rec.records > 0)
      say(level::info, who_ + ": " + std::to_string(rec.records) + " records left in its buffer " +
                           dir_ + " by an earlier run go to the sink first");
    g_->present.store(true, std::memory_order_relaxed);
    g_->max_size.store(o_.max_size, std::memory_order_relaxed);
    publish();
    fwd_ = std::thread([this] { forward_loop(); });
  }

  void write(const core::batch& in) override {
    rethrow_fatal();
    if (in.empty()) return;
    std::vector<std::string> recs;
    std::uint64_t bytes = 0;
    const std::uint64_t chunk = std::max<std::uint64_t>(1, o_.max_size / 8);
    for (std::size_t r = 0; r < in.size(); ++r) {
      recs.push_back(encode_row(in.row(r), in.width, in.times[r]));
      bytes += recs.back().size() + 8;
      if (bytes >= chunk) {
        append(recs);
        recs.clear();
        bytes = 0;
      }
    }
    append(recs);
    publish();
  }

  void flush() override { rethrow_fatal(); }

  void prepare(std::uint64_t) override { rethrow_fatal(); }

  void close() override {
    // End of stream: give the forwarder `drain_timeout` to empty the buffer.
    const auto deadline = clock::now() + o_.drain_timeout;
    while (q_ && clock::now() < deadline && !fatal_flag_.load()) {
      if (q_->stats().records_pending == 0) break;
      std::unique_lock<std::mutex> lk(mu_);
      progress_.wait_for(lk, std::chrono::milliseconds(100));
    }
    const std::uint64_t left = q_ ? q_->stats().records_pending : 0;
    stop_forwarder(left == 0);
    publish();
    say_drops();
    q_.reset();  // lets go of the directory (its lock) at once
    if (left > 0)
      say(level::warning, who_ + ": " + std::to_string(left) + " records stay in its buffer " + dir_ +
                              " (the sink did not take them within buffer.drain_timeout); the "
                              "next run sends them first");
    rethrow_fatal();
  }

  void abort() override {
    stop_forwarder(false);
    publish();
    say_drops();
    const std::uint64_t left = q_ ? q_->stats().records_pending : 0;
    if (left > 0)
      say(level::info, who_ + ": " + std::to_string(left) + " records stay in its buffer " + dir_ +
                           "; the next run sends them first");
    q_.reset();
  }

  std::uint64_t delivered() const override { return forwarded_.load(std::memory_order_relaxed); }

private:
  void say(level l, std::string text, std::uint64_t lost = 0) {
    if (!notify_) return;
    core::source_notice n;
    n.severity = l;
    n.text = std::move(text);
    n.lost = lost;
    notify_(n);
  }

  /// Records of another schema cannot go to this sink: refuse rather than send garbage.
  void check_schema(std::uint64_t pending) {
    if (!schema_) return;
    const std::string now = describe(*schema_);
    const std::string path = dir_ + "/schema";
    std::ifstream in(path);
    if (in && pending > 0) {
      std::stringstream was;
      was << in.rdbuf();
      if (was.str() != now) {
        std::string w = was.str(), n = now;
        std::replace(w.begin(), w.end(), '\n', ' ');
        std::replace(n.begin(), n.end(), '\n', ' ');
        throw std::runtime_error(
            who_ + ": its buffer " + dir_ + " holds " + std::to_string(pending) +
            " records of another schema (" + w + "), the sink now takes (" + n +
            "): run the pipeline that wrote them until the buffer is empty, or move the "
            "directory aside (dropping them)");
      }
    }
    in.close();
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << now;
      if (!out) throw std::runtime_error(who_ + ": cannot write " + tmp);
    }
    fs::rename(tmp, path);
  }

  void append(const std::vector<std::string>& recs) {
    if (recs.empty()) return;
    const counters before = q_->stats();
    bool waited = false;
    for (;;) {
      const append_status st = q_->append(recs, block_step);
      if (st == append_status::ok) break;
      if (st == append_status::too_large)
        throw std::runtime_error(who_ + ": a record is larger than its buffer's segments (" +
                                 std::to_string(std::max<std::uint64_t>(1, o_.max_size / 4)) +
                                 " bytes): raise buffer.max_size");
      rethrow_fatal();
      if (!waited) {
        waited = true;
        g_->full_events.fetch_add(1, std::memory_order_relaxed);
      }
      if (!blocked_) {
        blocked_ = true;
        say(level::warning, who_ + ": its buffer " + dir_ + " is full (" +
                                std::to_string(o_.max_size / mib) + " MiB, " +
                                std::to_string(q_->stats().records_pending) +
                                " records waiting); the pipeline waits (when_full: block) until the "
                                "sink takes records again");
      }
      publish();
    }
    if (blocked_) {
      blocked_ = false;
      say(level::info, who_ + ": its buffer has room again; taking records");
    }
    const counters after = q_->stats();
    g_->appended.fetch_add(recs.size(), std::memory_order_relaxed);
    const std::uint64_t fulls = after.full_events - before.full_events;
    if (fulls > 0 && !waited) g_->full_events.fetch_add(fulls, std::memory_order_relaxed);
    const std::uint64_t dropped = after.dropped - before.dropped;
    if (dropped > 0) {
      g_->dropped.fetch_add(dropped, std::memory_order_relaxed);
      dropped_unsaid_ += dropped;
      if (clock::now() - last_drop_said_ >= std::chrono::seconds(10)) say_drops();
    }
  }

  /// Says the records `drop_oldest` dropped since it last said so (at most every 10 s while
  /// it goes on, and at the end), counting them as lost.
  void say_drops() {
    if (dropped_unsaid_ == 0) return;
    say(level::warning,
        who_ + ": its buffer " + dir_ + " is full (" + std::to_string(o_.max_size / mib) +
            " MiB): dropped the oldest " + std::to_string(dropped_unsaid_) +
            " records not yet sent (when_full: drop_oldest; " +
            std::to_string(g_->dropped.load(std::memory_order_relaxed)) + " in all)",
        dropped_unsaid_);
    dropped_unsaid_ = 0;
    last_drop_said_ = clock::now();
  }

  void publish() {
    if (!q_) return;
    const counters c = q_->stats();
    g_->pending.store(c.records_pending, std::memory_order_relaxed);
    g_->bytes_on_disk.store(c.bytes_on_disk, std::memory_order_relaxed);
  }

  void rethrow_fatal() {
    if (!fatal_flag_.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lk(mu_);
    if (fatal_) std::rethrow_exception(fatal_);
  }

  void stop_forwarder(bool drained) {
    if (!fwd_.joinable()) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      drained_ = drained;
    }
    progress_.notify_all();
    if (q_) q_->wake();
    fwd_.join();
  }

  bool stopping() {
    std::lock_guard<std::mutex> lk(mu_);
    return stop_;
  }

  /// Waits `d` or until stopped; returns false when stopped.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lk(mu_);
    progress_.wait_for(lk, d, [&] { return stop_; });
    return !stop_;
  }

  void forward_loop() {
    std::chrono::milliseconds backoff = o_.retry_min;
    std::vector<core::value> row;
    clock::time_point down_since{}, last_said{};
    std::string last_error;
    while (!stopping()) {
      if (!q_->wait_pending(std::chrono::seconds(1))) continue;
      std::vector<record> recs = q_->peek(o_.batch, 16 * mib);
      if (recs.empty()) continue;
      core::batch b(width_);
      b.reserve(recs.size());
      try {
        for (const auto& r : recs) {
          const std::int64_t t = decode_row(r.data, row);
          if (row.size() != width_)
            throw std::runtime_error("record " + std::to_string(r.offset) + " has " +
                                     std::to_string(row.size()) + " fields, the sink takes " +
                                     std::to_string(width_));
          b.append_move(row.data(), t);
        }
      } catch (const std::exception& e) {
        fail_fatal(std::string(who_) + ": its buffer " + dir_ + " holds a record it cannot read (" +
                   e.what() + "): move the directory aside");
        break;
      }
      try {
        if (!inner_) {
          inner_ = make_();
          inner_->open(ctx_, schema_);
        }
        inner_->write(b);
        inner_->flush();
      } catch (const std::exception& e) {
        g_->failures.fetch_add(1, std::memory_order_relaxed);
        const auto now = clock::now();
        if (g_->forwarding.exchange(false, std::memory_order_relaxed)) {
          down_since = now;
          last_said = now;
          say(level::warning, who_ + " fails (" + e.what() + "); keeping records in its buffer " +
                                  dir_ + " and retrying");
        } else if (now - last_said >= repeat_failure) {
          last_said = now;
          say(level::warning, who_ + " still fails after " + seconds_text(now - down_since) + " (" +
                                  e.what() + "); " + std::to_string(q_->stats().records_pending) +
                                  " records wait in its buffer");
        }
        drop_inner();
        publish();
        if (!pause(backoff)) break;
        backoff = std::min(backoff * 2, o_.retry_max);
        continue;
      }
      q_->ack(recs.back().offset + 1);
      forwarded_.fetch_add(recs.size(), std::memory_order_relaxed);
      g_->forwarded.fetch_add(recs.size(), std::memory_order_relaxed);
      publish();
      backoff = o_.retry_min;
      if (!g_->forwarding.exchange(true, std::memory_order_relaxed))
        say(level::info, who_ + " takes records again after " + seconds_text(clock::now() - down_since) +
                             "; " + std::to_string(q_->stats().records_pending) +
                             " records still wait in its buffer and go first");
      progress_.notify_all();
    }
    bool drained;
    {
      std::lock_guard<std::mutex> lk(mu_);
      drained = drained_;
    }
    if (inner_) {
      try {
        if (drained) inner_->close();
        else inner_->abort();
      } catch (const std::exception& e) {
        say(level::warning, who_ + ": closing the sink failed: " + e.what());
      }
      inner_.reset();
    }
  }

  void drop_inner() {
    if (!inner_) return;
    try {
      inner_->abort();
    } catch (...) {
      // It failed already; what it held is still in the buffer.
    }
    inner_.reset();
  }

  void fail_fatal(std::string what) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      fatal_ = std::make_exception_ptr(std::runtime_error(what));
    }
    fatal_flag_.store(true, std::memory_order_release);
    say(level::error, what);
    progress_.notify_all();
  }

  std::function<core::sink_ptr()> make_;
  sink_options o_;
  std::function<void(const core::source_notice&)> notify_;
  core::sink_buffer_gauges own_gauges_;
  core::sink_buffer_gauges* g_ = &own_gauges_;
  core::operator_context ctx_;
  core::schema_ptr schema_;
  std::uint32_t width_ = 0;
  std::string who_, dir_;
  std::unique_ptr<segment_queue> q_;
  core::sink_ptr inner_;  ///< forwarder thread only
  std::thread fwd_;
  std::mutex mu_;
  std::condition_variable progress_;
  bool stop_ = false;
  bool drained_ = false;
  std::exception_ptr fatal_;
  std::atomic<bool> fatal_flag_{false};
  std::atomic<std::uint64_t> forwarded_{0};
  // Writer (runtime) thread only:
  bool blocked_ = false;
  std::uint64_t dropped_unsaid_ = 0;
  clock::time_point last_drop_said_{};
};

} // namespace

core::sink_ptr make_buffered_sink(std::function<core::sink_ptr()> make_inner, sink_options opts) {
  return std::make_unique<buffered_sink>(std::move(make_inner), std::move(opts));
}

} // namespace pel::buffer
