// claw-broker: flags and config files in, a running Server out.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "broker/config.hpp"
#include "broker/server.hpp"
#include "schema/duration.hpp"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"claw-broker: the Claw job broker"};
  std::vector<std::string> config_files;
  std::string bind, data, log_level, durability, heartbeat;
  app.add_option("--config", config_files,
                 "YAML config file; give it again for more files, a later file's keys win")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  app.add_option("--bind", bind, "endpoint to bind (default tcp://*:5555)");
  app.add_option("--data", data, "data directory (default ./claw-data)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
  app.add_option("--durability", durability, "full (fsync every commit, default), normal or off");
  app.add_option("--heartbeat", heartbeat, "worker heartbeat interval, e.g. 1s");
  bool primary = false, backup = false;
  std::string peer_bind, peer, replication;
  auto* primary_flag = app.add_flag("--primary", primary, "the primary of a broker pair");
  app.add_flag("--backup", backup, "the backup of a broker pair")->excludes(primary_flag);
  app.add_option("--peer-bind", peer_bind, "endpoint for the peer broker (pair only)");
  app.add_option("--peer", peer, "the peer broker's --peer-bind endpoint (pair only)");
  app.add_option("--replication", replication, "sync (default) or async (pair only)")
      ->check(CLI::IsMember({"sync", "async"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every bad flag exits 2, like the other Claw programs.
    return app.exit(e) == 0 ? 0 : 2;
  }

  claw::broker::BrokerConfig config;
  if (!config_files.empty()) {
    auto loaded = claw::broker::LoadConfigFiles(config_files, config);
    if (!loaded) {
      std::cerr << "claw-broker: " << loaded.error().message << "\n";
      return 2;
    }
    config = *loaded;
  }
  if (!bind.empty()) config.bind = bind;
  if (!data.empty()) config.data_dir = data;
  if (!log_level.empty()) config.log_level = log_level;
  if (!durability.empty()) config.durability = durability;
  if (!heartbeat.empty()) {
    auto ms = claw::wire::ParseDuration(heartbeat);
    if (!ms) {
      std::cerr << "claw-broker: --heartbeat: " << ms.error().message << "\n";
      return 2;
    }
    config.core.heartbeat_ms = static_cast<std::uint64_t>(*ms);
  }
  if (primary || backup) {
    config.pair.enabled = true;
    config.pair.primary = primary;
  }
  if (!peer_bind.empty()) config.pair.peer_bind = peer_bind;
  if (!peer.empty()) config.pair.peer = peer;
  if (!replication.empty()) config.pair.sync = replication == "sync";
  if (!config.pair.enabled && (!peer_bind.empty() || !peer.empty() || !replication.empty())) {
    std::cerr << "claw-broker: --peer-bind, --peer and --replication need --primary or --backup\n";
    return 2;
  }
  if (auto valid = claw::broker::Validate(config); !valid) {
    std::cerr << "claw-broker: " << valid.error().message << "\n";
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("broker");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ broker: %v");
  logger->set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_default_logger(logger);

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto server = claw::broker::Server::Start(config);
  if (!server) {
    spdlog::error("{}", server.error().message);
    return 1;
  }
  auto result = (*server)->Run(g_stop);
  if (!result) {
    spdlog::error("{}", result.error().message);
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
