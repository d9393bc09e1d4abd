// The schedule policy: changes given in advance, each returned once when due.
#include "format.hpp"
#include "pel/scaling/policy.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace pel::scaling {
namespace {

class schedule_policy final : public policy {
public:
  schedule_policy(std::vector<scheduled_change> steps, std::int64_t start_ns)
      : steps_(std::move(steps)), start_ns_(start_ns) {
    // By time; steps at the same time keep their order, so the later one listed wins.
    std::stable_sort(
        steps_.begin(), steps_.end(),
        [](const scheduled_change& a, const scheduled_change& b) { return a.at_ns < b.at_ns; });
  }

  std::string name() const override { return "schedule"; }

  std::vector<decision> decide(const sample& s) override {
    const std::int64_t since_start = s.at_ns - start_ns_;
    while (next_ < steps_.size() && steps_[next_].at_ns <= since_start) {
      due_[steps_[next_].unit] = steps_[next_];  // a later due step for the unit replaces it
      ++next_;
    }
    std::vector<decision> out;
    for (const unit_sample& u : s.units) {
      const auto it = due_.find(u.unit);
      if (it == due_.end()) continue;  // a step for a unit not sampled waits for it
      const scheduled_change step = it->second;
      due_.erase(it);
      if (step.parallelism == u.parallelism) continue;
      decision d;
      d.unit = u.unit;
      d.name = u.name;
      d.from = u.parallelism;
      d.to = step.parallelism;
      d.reason = "schedule: at " + plain(step.at_ns * 1e-9) + " s";
      d.inputs = "at_s=" + plain(step.at_ns * 1e-9) +
                 " parallelism=" + std::to_string(u.parallelism) +
                 " scheduled=" + std::to_string(step.parallelism);
      out.push_back(std::move(d));
    }
    return out;
  }

private:
  std::vector<scheduled_change> steps_;  ///< by time
  std::int64_t start_ns_;
  std::size_t next_ = 0;                 ///< first step not yet due
  std::map<int, scheduled_change> due_;  ///< due, not yet returned, by unit
};

}  // namespace

std::unique_ptr<policy> make_schedule(std::vector<scheduled_change> steps, std::int64_t start_ns) {
  return std::make_unique<schedule_policy>(std::move(steps), start_ns);
}

}  // namespace pel::scaling
