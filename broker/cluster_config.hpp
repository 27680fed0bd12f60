// The settings of the `cluster` section and of faultTolerance.failover and
// faultTolerance.taskMigration: plain data, read by broker/config.cpp. The health check and
// circuit breaker settings live beside their logic (broker/health.hpp,
// broker/circuit_breaker.hpp), the distribution settings in broker/strategy.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "schema/protocol_constants.hpp"

namespace claw::broker {

enum class NodeRole { kCoordinator, kWorker };

// One entry of cluster.nodes: a machine of the cluster as the operator declares it. A worker
// node is the worker whose worker_id is its id: CLUSTER shows whether it is up, it runs at most
// `capacity` jobs at once, and it has the zone label `zone` unless it announces one itself.
struct NodeConfig {
  std::string id;
  std::string host;
  NodeRole role = NodeRole::kWorker;
  std::uint32_t capacity = 0;  // workers: at most this many jobs at once; 0: as the worker says
  std::string zone;            // empty: none
  bool operator==(const NodeConfig&) const = default;
};

enum class DiscoveryType { kStatic, kDns };

// How coordinators are found: a static list of endpoints, or one DNS name ("host:port") whose
// addresses are the endpoints.
struct DiscoveryConfig {
  DiscoveryType type = DiscoveryType::kStatic;
  std::vector<std::string> endpoints;  // static
  std::string name;                    // dns: host:port
  bool operator==(const DiscoveryConfig&) const = default;
};

struct ClusterConfig {
  std::string name = "claw";
  std::string region;  // empty: none
  std::vector<NodeConfig> nodes;
  DiscoveryConfig discovery;
  bool operator==(const ClusterConfig&) const = default;
};

enum class FailoverKind { kBinaryStar, kNone };

// faultTolerance.failover: how a broker pair (broker.pair) fails over. binary-star: the backup
// takes over when the primary has been silent for failover_time_ms and clients turn to it.
// none: no pair; a broker.pair section contradicts it.
struct FailoverConfig {
  FailoverKind kind = FailoverKind::kBinaryStar;
  std::uint64_t failover_time_ms = 2 * wire::defaults::kPeerHeartbeatMs;
  bool operator==(const FailoverConfig&) const = default;
};

// faultTolerance.taskMigration: when a worker dies, is drained or its breaker opens, its jobs
// go to another worker; with migrate_in_progress the running ones too, from their last
// checkpoint. Workers send a checkpoint every checkpoint_interval_ms.
struct MigrationConfig {
  bool enabled = true;
  bool migrate_in_progress = true;
  std::uint64_t checkpoint_interval_ms = 60000;
  // Whether running jobs move at once (rather than fail and wait for their retry).
  bool MovesRunning() const { return enabled && migrate_in_progress; }
  bool operator==(const MigrationConfig&) const = default;
};

// The names the config file uses.
inline std::string_view Name(NodeRole role) {
  return role == NodeRole::kCoordinator ? "coordinator" : "worker";
}
inline std::string_view Name(FailoverKind kind) {
  return kind == FailoverKind::kBinaryStar ? "binary-star" : "none";
}

}  // namespace claw::broker
