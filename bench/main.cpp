// claw-bench: runs the workloads of WORKLOADS.md against a real claw-broker and real worker
// processes and prints the figures (see bench/README.md). Flags in, Runner out; with
// --worker-mode it is one of its own worker processes instead.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "bench/broker_process.hpp"
#include "bench/measure.hpp"
#include "bench/process.hpp"
#include "bench/report.hpp"
#include "bench/worker_mode.hpp"
#include "bench/workloads.hpp"
#include "schema/protocol_constants.hpp"

namespace {

using claw::bench::Figures;
using claw::bench::Shape;

constexpr int kUsageExit = 2;
constexpr int kFailedExit = 1;

const std::vector<std::string> kAllWorkloads = {"W1p", "W1s", "W2",      "W2p",
                                                "W3",  "W4",  "scaling", "store"};

struct Overrides {
  std::optional<std::uint64_t> n;
  std::optional<std::size_t> payload_size;
  std::optional<std::uint32_t> window;
  std::optional<std::uint32_t> workers;
  std::optional<std::uint32_t> credit;
  std::optional<std::uint32_t> producers;
  std::optional<std::uint64_t> backlog;
};

// The workload's defaults with the flags applied where they mean something: W1s and W3 keep
// one job in flight, W3 keeps its single worker and producer, scaling its list of worker counts.
Shape ShapeFor(const std::string& workload, bool smoke, const Overrides& o) {
  Shape s = claw::bench::DefaultShape(workload, smoke);
  const bool one_in_flight = workload == "W1s" || workload == "W3";
  const bool has_workers = workload == "W2" || workload == "W2p" || workload == "W4";
  if (o.n && !smoke) s.n = *o.n;
  if (o.backlog && !smoke && workload == "W4") s.backlog = *o.backlog;
  if (o.payload_size) s.payload_size = *o.payload_size;
  if (o.window && !one_in_flight) s.window = *o.window;
  if (o.workers && has_workers) s.workers = *o.workers;
  if (o.credit && (has_workers || workload == "scaling")) s.credit = *o.credit;
  if (o.producers && workload != "W3") s.producers = *o.producers;
  return s;
}

// Runs `shape` `rounds` times; the median, or nullopt (after printing why) when a round failed.
std::optional<Figures> RunRounds(claw::bench::Runner& runner, const Shape& shape, int rounds) {
  std::vector<Figures> results;
  for (int round = 1; round <= rounds; ++round) {
    std::cerr << "claw-bench: " << shape.workload
              << (shape.workload == "scaling" ? " " + std::to_string(shape.workers) + " workers"
                                              : std::string())
              << ", round " << round << " of " << rounds << "\n";
    auto figures = runner.Run(shape);
    if (!figures) {
      std::cerr << "claw-bench: " << shape.workload << " FAILED: " << figures.error().message
                << "\n";
      return std::nullopt;
    }
    results.push_back(std::move(*figures));
  }
  return claw::bench::MedianOf(results);
}

int RunBenchmarks(const claw::bench::Environment& env, const std::vector<std::string>& workloads,
                  bool smoke, const Overrides& overrides, int rounds, bool json) {
  claw::bench::Runner runner(env);
  int failures = 0;
  for (const auto& workload : workloads) {
    const Shape shape = ShapeFor(workload, smoke, overrides);
    if (workload != "scaling") {
      auto figures = RunRounds(runner, shape, rounds);
      if (!figures) {
        ++failures;
        continue;
      }
      if (json) {
        std::cout << claw::bench::JsonLine(*figures) << std::endl;
      } else {
        claw::bench::PrintBlock(std::cout, *figures);
      }
      continue;
    }
    bool header = false;
    for (std::uint32_t workers : claw::bench::ScalingWorkers()) {
      Shape one = shape;
      one.workers = workers;
      auto figures = RunRounds(runner, one, rounds);
      if (!figures) {
        ++failures;
        break;
      }
      if (json) {
        std::cout << claw::bench::JsonLine(*figures) << std::endl;
        continue;
      }
      if (!header) claw::bench::PrintScalingHeader(std::cout, *figures);
      header = true;
      claw::bench::PrintScalingLine(std::cout, *figures);
      std::cout.flush();
    }
    if (header && !json) std::cout << "\n";
  }
  if (failures > 0) {
    std::cerr << "claw-bench: " << failures << " workload(s) failed\n";
    return kFailedExit;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"claw-bench: the WORKLOADS.md benchmarks against a real claw-broker"};
  std::string workload = "all";
  Overrides overrides;
  std::string durability = "full";
  std::string data_dir = "./bench-data";
  std::string broker_bin = std::string(CLAW_BIN_DIR) + "/claw-broker";
  int rounds = 1;
  bool smoke = false;
  bool json = false;
  bool pool_handlers = false;
  claw::bench::WorkerModeOptions worker;
  bool worker_mode = false;

  app.add_option("--workload", workload,
                 "W1p, W1s, W2, W2p, W3, W4, scaling, store (the broker's SQLite store alone) or "
                 "all (default)")
      ->check(CLI::IsMember({"W1p", "W1s", "W2", "W2p", "W3", "W4", "scaling", "store", "all"}));
  app.add_option("--n", overrides.n, "Jobs measured (W3: latency samples)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
  app.add_option("--payload-size", overrides.payload_size, "Payload bytes, >= 8 (default 128)")
      ->check(CLI::Range(claw::bench::kStampBytes,
                         static_cast<std::size_t>(claw::wire::defaults::kMaxPayloadBytes)));
  app.add_option("--window", overrides.window, "Unacknowledged SUBMITs per producer (default 1000)")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{100000}));
  app.add_option("--workers", overrides.workers, "Worker processes for W2, W2p, W4 (default 4)")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{256}));
  app.add_option("--credit", overrides.credit, "Jobs each worker holds at once (W2 1, W2p 4)")
      ->check(CLI::Range(std::uint32_t{1},
                         static_cast<std::uint32_t>(claw::wire::limits::kMaxCapacity)));
  app.add_option("--producers", overrides.producers, "Producer DEALERs sharing N (default 1)")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{64}));
  app.add_option("--backlog", overrides.backlog, "W4: jobs queued first (default 1000000)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
  app.add_option("--durability", durability,
                 "The broker's --durability: full (default), normal, off")
      ->check(CLI::IsMember({"full", "normal", "off"}));
  app.add_option("--data-dir", data_dir, "Where brokers keep their data (default ./bench-data)");
  app.add_option("--broker-bin", broker_bin, "The claw-broker binary");
  app.add_option("--rounds", rounds, "Repeat each workload and report the median (default 1)")
      ->check(CLI::Range(1, 100));
  app.add_flag("--smoke", smoke,
               "Small N for every workload; exits non-zero when any count is wrong");
  app.add_flag("--json", json, "One JSON object per workload on stdout instead of text");
  app.add_flag("--pool-handlers", pool_handlers,
               "Workers run the no-op handler on a pool thread, as for an external command "
               "(default: inline on the worker's loop thread, as the peers' clients run it)");
  // Worker mode: how claw-bench starts its own worker processes.
  app.add_flag("--worker-mode", worker_mode)->group("");
  app.add_option("--broker", worker.broker)->group("");
  app.add_option("--capacity", worker.capacity)->group("");
  app.add_option("--id", worker.id)->group("");
  app.add_option("--type", worker.type)->group("");
  app.add_flag("--stamp-result", worker.stamp_result)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kUsageExit;
  }

  if (worker_mode) {
    if (worker.broker.empty() || worker.id.empty() || worker.type.empty()) {
      std::cerr << "claw-bench: --worker-mode needs --broker, --id and --type\n";
      return kUsageExit;
    }
    worker.pool_handlers = pool_handlers;
    return claw::bench::RunWorkerMode(worker);
  }

  signal(SIGPIPE, SIG_IGN);
  auto self = claw::bench::SelfExecutable();
  if (!self) {
    std::cerr << "claw-bench: " << self.error().message << "\n";
    return kFailedExit;
  }
  std::error_code ec;
  const std::string root = std::filesystem::absolute(data_dir, ec).lexically_normal().string();
  std::filesystem::create_directories(root, ec);
  if (ec) {
    std::cerr << "claw-bench: cannot create " << root << ": " << ec.message() << "\n";
    return kFailedExit;
  }
  auto fs = claw::bench::FileSystemOf(root);
  const std::string fs_name = fs ? fs->name : "unknown file system";
  if (fs && fs->in_memory) {
    std::cerr << "claw-bench: WARNING: " << root << " is on " << fs->name
              << " (memory): fsync costs nothing there, so durable figures mean little; pass "
                 "--data-dir on a real disk\n";
  }
  std::filesystem::remove(root, ec);  // only if empty; each run creates what it needs

  const std::vector<std::string> workloads =
      workload == "all" ? kAllWorkloads : std::vector<std::string>{workload};
  std::ostream& header = json ? std::cerr : std::cout;
  header << "claw-bench: broker " << broker_bin << ", data under " << root << " (" << fs_name
         << "), durability " << durability << ", " << ::sysconf(_SC_NPROCESSORS_ONLN)
         << " online CPUs" << (smoke ? ", smoke sizes" : "") << ", worker handlers "
         << (pool_handlers ? "on a pool thread" : "inline") << "\n\n";
  return RunBenchmarks({.broker_bin = broker_bin,
                        .self_exe = *self,
                        .data_root = root,
                        .durability = durability,
                        .pool_handlers = pool_handlers},
                       workloads, smoke, overrides, rounds, json);
}
