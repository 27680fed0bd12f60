// Broker configuration: defaults (schema/protocol.yaml), then YAML files, then flags.
//
// The YAML files use the shape of the Claw example config (broker/claw.example.yaml lists every
// key with its default). Every key is checked: an unknown key or a bad value is an error that
// names the file, line and key ("claw.yaml:12: broker.heartbeat: ..."). Several files apply in
// order, a key in a later file winning; a list (cluster.nodes, discovery endpoints) is replaced
// whole, and a discovery section that states its type replaces the discovery settings whole.
#pragma once

#include <string>
#include <vector>

#include "broker/circuit_breaker.hpp"
#include "broker/cluster_config.hpp"
#include "broker/core.hpp"
#include "broker/health.hpp"
#include "broker/strategy.hpp"
#include "schema/result.hpp"

namespace claw::broker {

// Two brokers as an active-passive pair (Binary Star): see broker/binary_star.hpp.
struct PairConfig {
  bool enabled = false;
  bool primary = true;    // --primary or --backup
  std::string peer_bind;  // our endpoint for the peer (state heartbeats and replication)
  std::string peer;       // the peer's peer_bind endpoint
  bool sync = true;       // ACCEPTED waits for the standby (sync) or not (async)
  std::uint64_t heartbeat_ms = wire::defaults::kPeerHeartbeatMs;
  std::uint64_t ack_timeout_ms = wire::defaults::kReplicationAckTimeoutMs;
  bool operator==(const PairConfig&) const = default;
};

struct BrokerConfig {
  std::string bind = "tcp://*:5555";
  std::string data_dir = "./claw-data";
  std::string log_level = "info";
  // SQLite synchronous mode: "full" (every commit fsync'd: ACCEPTED survives power loss),
  // "normal" (survives a broker crash, not power loss) or "off".
  std::string durability = "full";
  // Also cluster (core.cluster), distribution (core.scheduling) and faultTolerance's
  // healthCheck, circuitBreaker and taskMigration (core.health, core.breaker, core.migration).
  CoreConfig core;
  PairConfig pair;
  FailoverConfig failover;  // faultTolerance.failover
  bool operator==(const BrokerConfig&) const = default;
};

// Applies the settings in the YAML file at `path` over `base`, then validates the result.
Result<BrokerConfig> LoadConfigFile(const std::string& path, BrokerConfig base);
// Applies the files in order over `base`, then validates the result once: a setting may need
// keys from several files (a pair's role in one, its peer in another).
Result<BrokerConfig> LoadConfigFiles(const std::vector<std::string>& paths, BrokerConfig base);
// The same, from YAML text (`name` is used in messages).
Result<BrokerConfig> ParseConfig(const std::string& text, const std::string& name,
                                 BrokerConfig base);

// Checks values that flags and files share (durability and log level names, heartbeat > 0,
// thresholds >= 1, ...). The error starts with the key in file terms: "broker.heartbeat: ...".
Status Validate(const BrokerConfig& config);

}  // namespace claw::broker
