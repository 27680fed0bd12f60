// Broker configuration: defaults (schema/protocol.yaml), then a YAML file, then flags.
//
// The YAML file uses the shape of the Claw example config (examples/claw.yaml); every key is
// checked, and an unknown key or a bad value is an error that names the file, line and key.
#pragma once

#include <string>

#include "broker/core.hpp"
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
};

struct BrokerConfig {
  std::string bind = "tcp://*:5555";
  std::string data_dir = "./claw-data";
  std::string log_level = "info";
  // SQLite synchronous mode: "full" (every commit fsync'd: ACCEPTED survives power loss),
  // "normal" (survives a broker crash, not power loss) or "off".
  std::string durability = "full";
  CoreConfig core;
  PairConfig pair;
};

// Applies the settings in the YAML file at `path` over `base`.
Result<BrokerConfig> LoadConfigFile(const std::string& path, BrokerConfig base);
// The same, from YAML text (`name` is used in messages).
Result<BrokerConfig> ParseConfig(const std::string& text, const std::string& name,
                                 BrokerConfig base);

// Checks values that flags and files share: durability and log level names, heartbeat > 0, ...
Status Validate(const BrokerConfig& config);

}  // namespace claw::broker
