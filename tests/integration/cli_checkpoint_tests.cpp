// End-to-end: `pel run --state-dir` on a bounded pipeline (generator -> keyed 1 s windows ->
// exactly-once file sink). A SIGTERM stops it with a final checkpoint and fires no window; the
// newest checkpoint is then damaged on disk; the next run detects it by its checksum, warns,
// resumes from the one before, and the output equals an uninterrupted run's. A run on the
// finished state directory repeats nothing.
#include "e2e_support.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace e2e = pel::e2e;
namespace fs = std::filesystem;

namespace {

std::string pipeline(const std::string& out_dir) {
  return "pipeline:\n"
         "  name: checkpoint_cli\n"
         "  parallelism: 2\n"
         "  checkpoints: {interval: 100ms, keep: 4}\n"
         "sources:\n"
         "  trades:\n"
         "    type: generator\n"
         "    profile: trades\n"
         "    symbols: 12\n"
         "    rate: 20000\n"
         "    count: 80000\n"
         "operators:\n"
         "  bars:\n"
         "    type: window\n"
         "    input: trades\n"
         "    key: symbol\n"
         "    window: {type: tumbling, size: 1s}\n"
         "    aggregates: {n: count(), volume: sum(qty)}\n"
         "sinks:\n"
         "  out:\n"
         "    type: file\n"
         "    input: bars\n"
         "    path: " + out_dir + "/bars.json\n"
         "    delivery: exactly_once\n";
}

/// Every committed output line of a run, sorted.
std::vector<std::string> output_lines(const fs::path& dir) {
  std::vector<std::string> lines;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("bars", 0) != 0) continue;  // hidden parts start with '.'
    for (auto& l : e2e::lines_of(e2e::read_file(e.path().string())))
      if (!l.empty()) lines.push_back(l);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// Complete checkpoints in the state directory, oldest first.
std::vector<fs::path> checkpoints(const fs::path& state) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state, ec))
    if (fs::exists(e.path() / "MANIFEST")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST_CASE("pel run --state-dir: a stop, a damaged checkpoint and a resume give the uninterrupted output",
          "[e2e][chaos][checkpoint]") {
  e2e::temp_dir dir;
  fs::create_directories(dir.path() / "ref");
  fs::create_directories(dir.path() / "out");
  e2e::write_file(dir / "ref.yaml", pipeline(dir / "ref"));
  e2e::write_file(dir / "p.yaml", pipeline(dir / "out"));

  // The uninterrupted run.
  {
    e2e::process ref({e2e::pel_binary(), "run", "--progress", "never", dir / "ref.yaml"});
    auto r = ref.wait(120s);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  const auto want = output_lines(dir.path() / "ref");
  REQUIRE(want.size() >= 12);

  // Stopped once a few checkpoints exist: a final checkpoint, no window fired early.
  const fs::path state = dir.path() / "state";
  {
    e2e::process run({e2e::pel_binary(), "run", "--progress", "never", "--state-dir", state.string(), dir / "p.yaml"});
    REQUIRE(run.wait_until([&] { return checkpoints(state).size() >= 3; }, 60s));
    run.send_signal(SIGTERM);
    auto r = run.wait(60s);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.err.find("stopped with checkpoint") != std::string::npos);
  }
  const auto partial = output_lines(dir.path() / "out");
  // Everything written so far is in the uninterrupted output (no partial bar of a window the
  // stop would have fired), and something is still missing.
  for (const auto& l : partial) CHECK(std::binary_search(want.begin(), want.end(), l));
  REQUIRE(partial.size() < want.size());

  // Damage the newest checkpoint: one byte of one state file.
  auto chks = checkpoints(state);
  REQUIRE(chks.size() >= 2);
  const fs::path newest = chks.back();
  fs::path victim;
  for (const auto& e : fs::directory_iterator(newest))
    if (e.path().extension() == ".state" && fs::file_size(e.path()) > 24) victim = e.path();
  REQUIRE_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(22);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(22);
    f.write(&c, 1);
  }
  const std::string newest_id = std::to_string(std::stoull(newest.filename().string().substr(4)));
  const std::string previous_id = std::to_string(std::stoull(chks[chks.size() - 2].filename().string().substr(4)));

  // The resume sees the damage, says so, takes the checkpoint before, and completes the output.
  {
    e2e::process run({e2e::pel_binary(), "run", "--progress", "never", "--state-dir", state.string(), dir / "p.yaml"});
    auto r = run.wait(120s);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("fails its checksum") != std::string::npos);
    CHECK(r.err.find("checkpoint " + newest_id + " is skipped") != std::string::npos);
    CHECK(r.err.find("resuming from checkpoint " + previous_id) != std::string::npos);
  }
  CHECK(output_lines(dir.path() / "out") == want);

  // The input is finished: another run on the same state directory adds nothing.
  {
    e2e::process run({e2e::pel_binary(), "run", "--progress", "never", "--state-dir", state.string(), dir / "p.yaml"});
    auto r = run.wait(60s);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(std::regex_search(r.err, std::regex("trades +out 0 ")));
  }
  CHECK(output_lines(dir.path() / "out") == want);
}
