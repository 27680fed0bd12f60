// claw-worker: runs Claw jobs through an external command. Parses flags, builds a Worker with the
// exec handler and runs it until SIGINT or SIGTERM. All behaviour lives in the worker library.
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "schema/protocol_constants.hpp"
#include "worker/exec_handler.hpp"
#include "worker/flags.hpp"
#include "worker/log.hpp"
#include "worker/worker.hpp"

namespace {

constexpr int kUsageExit = 2;

std::atomic<bool> stop_requested = false;

extern "C" void OnStopSignal(int) { stop_requested.store(true); }

void InstallSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: the loop's poll returns at once and sees the flag.
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, nullptr);
}

template <typename Parse>
CLI::Validator ValueCheck(std::string name, Parse parse) {
  return CLI::Validator(
      [parse](std::string& value) -> std::string {
        auto parsed = parse(value);
        return parsed ? std::string() : parsed.error().message;
      },
      "", std::move(name));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace claw;
  CLI::App app{"claw-worker: runs Claw jobs of the given types through an external command"};
  const char* env_broker = std::getenv("CLAW_BROKER");
  std::string brokers =
      env_broker != nullptr && *env_broker != '\0' ? env_broker : "tcp://127.0.0.1:5555";
  std::vector<std::string> types;
  std::uint32_t capacity = 1;
  std::uint32_t prefetch = 0;
  std::vector<std::string> labels;
  std::string id;
  std::string command;
  std::string log_level = "info";
  app.add_option("--broker", brokers,
                 "Broker endpoint(s), comma-separated for failover; dns://host:port for every "
                 "address of a name (default $CLAW_BROKER or tcp://127.0.0.1:5555)");
  app.add_option("--type", types, "Job type to run; repeat or separate with commas")
      ->required()
      ->delimiter(',')
      ->check(ValueCheck("TYPE", worker::CheckJobType));
  app.add_option("--capacity", capacity, "Jobs run at once (default 1)")
      ->check(CLI::Range(std::uint32_t{1}, static_cast<std::uint32_t>(wire::limits::kMaxCapacity)));
  app.add_option("--prefetch", prefetch,
                 "Jobs held beyond capacity, waiting to start (default 0); the adaptive strategy "
                 "moves them to less loaded workers")
      ->check(CLI::Range(std::uint32_t{0}, static_cast<std::uint32_t>(wire::limits::kMaxCapacity)));
  app.add_option("--label", labels, "Label key=value announced to the broker; repeatable")
      ->check(ValueCheck("KEY=VALUE", worker::ParseLabel));
  app.add_option("--id", id, "Worker id (default <hostname>-<pid>)");
  app.add_option("--exec", command, "Command run by /bin/sh -c for each job")->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error (default info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; every usage error exits 2, whatever CLI11's own code.
    return app.exit(e) == 0 ? 0 : kUsageExit;
  }

  worker::WorkerOptions options{.brokers = worker::SplitList(brokers),
                                .id = id.empty() ? worker::DefaultWorkerId() : id,
                                .types = types,
                                .capacity = capacity,
                                .prefetch = prefetch};
  if (options.brokers.empty()) {
    std::cerr << "--broker: no endpoint given\n";
    return kUsageExit;
  }
  if (labels.size() > static_cast<std::size_t>(wire::limits::kMaxLabels)) {
    std::cerr << "--label: at most " << wire::limits::kMaxLabels << " labels\n";
    return kUsageExit;
  }
  for (const auto& label : labels) options.labels.insert(*worker::ParseLabel(label));

  const auto log = worker::Logger();
  log->set_level(spdlog::level::from_str(log_level));
  InstallSignalHandlers();
  // Orphans of a job's process group are re-parented to this worker, so the exec handler can reap
  // them even where the init process does not (containers).
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  log->info("worker {} starting: types {}, capacity {}, prefetch {}, broker(s) {}", options.id,
            fmt::join(options.types, ","), options.capacity, options.prefetch,
            fmt::join(options.brokers, ","));
  worker::Worker worker(options, worker::MakeExecHandler(command));
  if (auto status = worker.Run(stop_requested); !status) {
    log->error("worker {}: {}", options.id, status.error().message);
    return 1;
  }
  return 0;
}
