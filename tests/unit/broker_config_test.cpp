// The config files: every key read, every bad key or value named with its file and line, several
// files applied in order, and the example file stating exactly the defaults.
#include <doctest/doctest.h>

#include <fstream>

#include "broker/config.hpp"
#include "tests/unit/temp_dir.hpp"

namespace claw::broker {
namespace {

// The error of a config that must not load.
std::string ErrorOf(const std::string& text) {
  auto config = ParseConfig(text, "c.yaml", {});
  REQUIRE_MESSAGE(!config.has_value(), text);
  return config.error().message;
}

TEST_CASE("config: every key is read, durations and numbers included") {
  auto config = ParseConfig(R"(
broker:
  bind: "tcp://127.0.0.1:7000"
  data: /var/lib/claw
  logLevel: debug
  durability: normal
  heartbeat: 500ms
  liveness: 4
  maxPayload: 2048
  retention: 1d
  commitDelay: 25ms
distribution:
  taskQueue:
    maxPending: 10
    maxPendingPerType: 5
    timeout: 1m
    retryPolicy:
      maxAttempts: 7
      backoff: exponential
      initialBackoff: 2s
      maxBackoff: 1h
      jitterPercent: 0
)",
                            "claw.yaml", {});
  REQUIRE_MESSAGE(config.has_value(), config.error().message);
  CHECK(config->bind == "tcp://127.0.0.1:7000");
  CHECK(config->data_dir == "/var/lib/claw");
  CHECK(config->log_level == "debug");
  CHECK(config->durability == "normal");
  CHECK(config->core.heartbeat_ms == 500);
  CHECK(config->core.liveness == 4);
  CHECK(config->core.max_payload_bytes == 2048);
  CHECK(config->core.retention_ms == 86400000);
  CHECK(config->core.commit_delay_ms == 25);
  CHECK(config->core.max_pending == 10);
  CHECK(config->core.max_pending_per_type == 5);
  CHECK(config->core.job_timeout_ms == 60000);
  CHECK(config->core.max_attempts == 7);
  CHECK(config->core.backoff_ms == 2000);
  CHECK(config->core.max_backoff_ms == 3600000);
  CHECK(config->core.jitter_percent == 0);
}

TEST_CASE("config: the cluster, distribution and fault tolerance keys are read") {
  auto config = ParseConfig(R"(
cluster:
  name: render-farm
  region: eu-west-1
  nodes:
    - id: coordinator-1
      host: 10.0.1.10
      role: coordinator
    - id: gpu-1
      host: 10.0.2.20
      role: worker
      capacity: 4
      zone: eu-west-1a
  discovery:
    type: dns
    name: claw.internal:5555
distribution:
  strategy: adaptive
  adaptive:
    rebalanceInterval: 1m
    threshold: 0.75
  taskQueue:
    type: priority
    priority: high
  routing:
    affinity: true
    antiAffinity: true
    locality: cross-zone
faultTolerance:
  healthCheck:
    interval: 10s
    timeout: 2s
    unhealthyThreshold: 4
    healthyThreshold: 3
  failover:
    strategy: binary-star
    failoverTime: 5s
  taskMigration:
    enabled: false
    migrateInProgress: false
    checkpointInterval: 30s
  circuitBreaker:
    enabled: false
    failureThreshold: 7
    recoveryTimeout: 1m
    halfOpenRequests: 2
)",
                            "claw.yaml", {});
  REQUIRE_MESSAGE(config.has_value(), config.error().message);
  const auto& cluster = config->core.cluster;
  CHECK(cluster.name == "render-farm");
  CHECK(cluster.region == "eu-west-1");
  REQUIRE(cluster.nodes.size() == 2);
  CHECK(cluster.nodes[0].id == "coordinator-1");
  CHECK(cluster.nodes[0].host == "10.0.1.10");
  CHECK(cluster.nodes[0].role == NodeRole::kCoordinator);
  CHECK(cluster.nodes[0].capacity == 0);
  CHECK(cluster.nodes[0].zone.empty());
  CHECK(cluster.nodes[1].role == NodeRole::kWorker);
  CHECK(cluster.nodes[1].capacity == 4);
  CHECK(cluster.nodes[1].zone == "eu-west-1a");
  CHECK(cluster.discovery.type == DiscoveryType::kDns);
  CHECK(cluster.discovery.name == "claw.internal:5555");

  const auto& s = config->core.scheduling;
  CHECK(s.strategy == Strategy::kAdaptive);
  CHECK(s.rebalance_interval_ms == 60000);
  CHECK(s.threshold == doctest::Approx(0.75));
  CHECK(s.default_priority == 7);
  CHECK(s.affinity);
  CHECK(s.anti_affinity);
  CHECK(s.locality == Locality::kCrossZone);

  CHECK(config->core.health.interval_ms == 10000);
  CHECK(config->core.health.timeout_ms == 2000);
  CHECK(config->core.health.unhealthy_threshold == 4);
  CHECK(config->core.health.healthy_threshold == 3);
  CHECK(config->failover.kind == FailoverKind::kBinaryStar);
  CHECK(config->failover.failover_time_ms == 5000);
  CHECK(!config->core.migration.enabled);
  CHECK(!config->core.migration.migrate_in_progress);
  CHECK(config->core.migration.checkpoint_interval_ms == 30000);
  CHECK(!config->core.breaker.enabled);
  CHECK(config->core.breaker.failure_threshold == 7);
  CHECK(config->core.breaker.recovery_timeout_ms == 60000);
  CHECK(config->core.breaker.half_open_requests == 2);
}

TEST_CASE("config: static discovery lists endpoints; a priority may be a number") {
  auto config = ParseConfig(R"(
cluster:
  discovery:
    type: static
    endpoints: ["tcp://a:5555", "tcp://b:5555"]
distribution:
  strategy: hash
  taskQueue:
    priority: 3
)",
                            "claw.yaml", {});
  REQUIRE_MESSAGE(config.has_value(), config.error().message);
  CHECK(config->core.cluster.discovery.type == DiscoveryType::kStatic);
  CHECK(config->core.cluster.discovery.endpoints ==
        std::vector<std::string>{"tcp://a:5555", "tcp://b:5555"});
  CHECK(config->core.scheduling.strategy == Strategy::kHash);
  CHECK(config->core.scheduling.default_priority == 3);
}

TEST_CASE("config: an unknown key is an error naming file, line and key") {
  CHECK(ErrorOf("broker:\n  bind: tcp://*:1\n  hartbeat: 1s\n")
            .starts_with("c.yaml:3: broker.hartbeat: unknown key"));
  CHECK(ErrorOf("faultTolerance:\n  circuitBreaker:\n    halfOpen: 2\n")
            .starts_with("c.yaml:3: faultTolerance.circuitBreaker.halfOpen: unknown key"));
  CHECK(ErrorOf("cluster:\n  nodes:\n    - id: a\n      host: h\n      cpu: 4\n")
            .starts_with("c.yaml:5: cluster.nodes[0].cpu: unknown key"));
}

TEST_CASE("config: bad values name the file, line and key") {
  CHECK(ErrorOf("broker:\n  heartbeat: 10\n").starts_with("c.yaml:2: broker.heartbeat"));
  CHECK(
      ErrorOf("broker:\n  bind: tcp://*\n")
          .starts_with("c.yaml:2: broker.bind: bad endpoint 'tcp://*': expected tcp://host:port"));
  CHECK(ErrorOf("broker:\n  bind: dns://claw:5555\n")
            .starts_with("c.yaml:2: broker.bind: 'dns://claw:5555': dns:// is for workers"));
  CHECK(ErrorOf("broker:\n  liveness: -3\n")
            .starts_with("c.yaml:2: broker.liveness: expected a whole number"));
  CHECK(ErrorOf("broker:\n  durability: sometimes\n")
            .starts_with("c.yaml:2: broker.durability: 'sometimes' must be full"));
  CHECK(!ParseConfig("broker: [unclosed\n", "c.yaml", {}).has_value());
  CHECK(ErrorOf("distribution:\n  strategy: random\n")
            .starts_with("c.yaml:2: distribution.strategy: expected round-robin, hash, "
                         "least-loaded or adaptive, got 'random'"));
  CHECK(ErrorOf("distribution:\n  routing:\n    locality: nearby\n")
            .starts_with("c.yaml:3: distribution.routing.locality: expected same-zone"));
  CHECK(ErrorOf("distribution:\n  routing:\n    affinity: yes\n")
            .starts_with("c.yaml:3: distribution.routing.affinity: expected true or false"));
  CHECK(ErrorOf("distribution:\n  adaptive:\n    threshold: high\n")
            .starts_with("c.yaml:3: distribution.adaptive.threshold: expected a number"));
  CHECK(ErrorOf("distribution:\n  taskQueue:\n    type: fifo\n")
            .starts_with("c.yaml:3: distribution.taskQueue.type: the only queue type"));
  CHECK(ErrorOf("distribution:\n  taskQueue:\n    priority: urgent\n")
            .starts_with("c.yaml:3: distribution.taskQueue.priority: expected low, normal"));
  CHECK(ErrorOf("cluster:\n  nodes:\n    - id: a\n      host: h\n      role: leader\n")
            .starts_with("c.yaml:5: cluster.nodes[0].role: expected coordinator or worker"));
  CHECK(ErrorOf("cluster:\n  nodes: {id: a}\n")
            .starts_with("c.yaml:2: cluster.nodes: expected a list"));
  CHECK(
      ErrorOf("faultTolerance:\n  failover:\n    strategy: hot-standby\n")
          .starts_with("c.yaml:3: faultTolerance.failover.strategy: expected binary-star or none"));
}

TEST_CASE("config: out-of-range values name the line that set them") {
  CHECK(ErrorOf("distribution:\n  adaptive:\n    threshold: 1.5\n")
            .starts_with("c.yaml:3: distribution.adaptive.threshold: a load ratio must be 0-1"));
  CHECK(ErrorOf("distribution:\n  adaptive:\n    rebalanceInterval: 0\n")
            .starts_with("c.yaml:3: distribution.adaptive.rebalanceInterval: must be > 0"));
  CHECK(ErrorOf("distribution:\n  taskQueue:\n    priority: 12\n")
            .starts_with("c.yaml:3: distribution.taskQueue.priority: expected low"));
  CHECK(ErrorOf("faultTolerance:\n  healthCheck:\n    unhealthyThreshold: 0\n")
            .starts_with("c.yaml:3: faultTolerance.healthCheck.unhealthyThreshold: must be >= 1"));
  CHECK(ErrorOf("faultTolerance:\n  healthCheck:\n    healthyThreshold: 0\n")
            .starts_with("c.yaml:3: faultTolerance.healthCheck.healthyThreshold: must be >= 1"));
  CHECK(ErrorOf("faultTolerance:\n  healthCheck:\n    interval: 2s\n    timeout: 3s\n")
            .starts_with("c.yaml:4: faultTolerance.healthCheck.timeout: 3s must not exceed the "
                         "interval, 2s"));
  CHECK(ErrorOf("faultTolerance:\n  circuitBreaker:\n    failureThreshold: 0\n")
            .starts_with("c.yaml:3: faultTolerance.circuitBreaker.failureThreshold: must be >= 1"));
  CHECK(ErrorOf("faultTolerance:\n  circuitBreaker:\n    halfOpenRequests: 0\n")
            .starts_with("c.yaml:3: faultTolerance.circuitBreaker.halfOpenRequests: must be >= 1"));
  CHECK(ErrorOf("faultTolerance:\n  circuitBreaker:\n    recoveryTimeout: 0\n")
            .starts_with("c.yaml:3: faultTolerance.circuitBreaker.recoveryTimeout: must be > 0"));
  CHECK(ErrorOf("faultTolerance:\n  taskMigration:\n    checkpointInterval: 0\n")
            .starts_with("c.yaml:3: faultTolerance.taskMigration.checkpointInterval: must be > 0"));
  CHECK(ErrorOf("faultTolerance:\n  failover:\n    failoverTime: 0\n")
            .starts_with("c.yaml:3: faultTolerance.failover.failoverTime: must be > 0"));
  const std::string pair =
      "broker:\n  pair:\n    role: primary\n    peerBind: tcp://*:6001\n"
      "    peer: tcp://127.0.0.1:6002\n    heartbeat: 2s\n";
  CHECK(ErrorOf(pair).find("faultTolerance.failover.failoverTime: 2s must be longer than "
                           "broker.pair.heartbeat, 2s") != std::string::npos);
  auto longer =
      ParseConfig(pair + "faultTolerance:\n  failover:\n    failoverTime: 5s\n", "c.yaml", {});
  REQUIRE_MESSAGE(longer.has_value(), longer.error().message);
  CHECK(longer->failover.failover_time_ms == 5000);
}

TEST_CASE("config: cluster nodes need an id and a host, ids are unique, capacity is 0-10000") {
  CHECK(ErrorOf("cluster:\n  nodes:\n    - id: a\n      host: h\n    - host: h2\n")
            .starts_with("c.yaml:5: cluster.nodes[1].id: every node needs an id"));
  CHECK(ErrorOf("cluster:\n  nodes:\n    - id: a\n")
            .starts_with("c.yaml:3: cluster.nodes[0].host: every node needs a host"));
  CHECK(ErrorOf("cluster:\n  nodes:\n    - {id: a, host: h}\n    - {id: a, host: h2}\n")
            .starts_with("c.yaml:4: cluster.nodes[1].id: 'a' is also the id of cluster.nodes[0]"));
  CHECK(ErrorOf("cluster:\n  nodes:\n    - id: a\n      host: h\n      capacity: 10001\n")
            .starts_with("c.yaml:5: cluster.nodes[0].capacity: must be 1-10000 (0: as the worker "
                         "says), got 10001"));
  CHECK(
      ErrorOf("cluster:\n  name: \"\"\n").starts_with("c.yaml:2: cluster.name: must not be empty"));
}

TEST_CASE("config: discovery keys must fit its type") {
  CHECK(ErrorOf("cluster:\n  discovery:\n    type: dns\n    name: claw.internal\n")
            .starts_with("c.yaml:4: cluster.discovery.name: type dns needs a name like"));
  CHECK(ErrorOf("cluster:\n  discovery:\n    type: dns\n    name: host:99999\n")
            .starts_with("c.yaml:4: cluster.discovery.name"));
  CHECK(ErrorOf("cluster:\n  discovery:\n    type: dns\n")
            .starts_with("c.yaml:2: cluster.discovery.name: type dns needs a name"));
  CHECK(ErrorOf("cluster:\n  discovery:\n    type: dns\n    name: a:1\n    endpoints: [x]\n")
            .starts_with("c.yaml:5: cluster.discovery.endpoints: only for type static"));
  CHECK(ErrorOf("cluster:\n  discovery:\n    endpoints: [\"\"]\n")
            .starts_with("c.yaml:3: cluster.discovery.endpoints[0]: bad endpoint ''"));
  CHECK(ErrorOf("cluster:\n  discovery:\n    endpoints: [\"tcp://a:1\", \"tcp://b\"]\n")
            .starts_with("c.yaml:3: cluster.discovery.endpoints[1]: bad endpoint 'tcp://b': "
                         "expected tcp://host:port"));
  CHECK(ErrorOf("cluster:\n  discovery:\n    endpoints: [\"dns://a:1\"]\n")
            .starts_with("c.yaml:3: cluster.discovery.endpoints[0]: 'dns://a:1': dns:// is for "
                         "workers and clients"));
  CHECK(ErrorOf("cluster:\n  discovery:\n    type: dns\n    name: \":5555\"\n")
            .starts_with("c.yaml:4: cluster.discovery.name: type dns needs a name like"));
}

TEST_CASE("config: a broker pair is read from broker.pair and checked") {
  auto config = ParseConfig(R"(
broker:
  pair:
    role: backup
    peerBind: "tcp://*:5556"
    peer: "tcp://a:5556"
    replication: async
    heartbeat: 500ms
    ackTimeout: 3s
)",
                            "pair.yaml", {});
  REQUIRE_MESSAGE(config.has_value(), config.error().message);
  CHECK(config->pair.enabled);
  CHECK(!config->pair.primary);
  CHECK(config->pair.peer_bind == "tcp://*:5556");
  CHECK(config->pair.peer == "tcp://a:5556");
  CHECK(!config->pair.sync);
  CHECK(config->pair.heartbeat_ms == 500);
  CHECK(config->pair.ack_timeout_ms == 3000);
  auto missing = ParseConfig("broker:\n  pair:\n    role: primary\n", "pair.yaml", {});
  REQUIRE(!missing.has_value());
  // peerBind is missing, so the error points at the pair section that needs it.
  CHECK(missing.error().message.starts_with("pair.yaml:2: broker.pair.peerBind: a broker pair"));
  auto bad_role = ParseConfig("broker:\n  pair:\n    role: leader\n", "pair.yaml", {});
  REQUIRE(!bad_role.has_value());
  CHECK(bad_role.error().message.starts_with("pair.yaml:3: broker.pair.role"));
  auto no_failover = ParseConfig(
      "broker:\n  pair: {peerBind: \"tcp://*:1\", peer: \"tcp://b:1\"}\nfaultTolerance:\n  "
      "failover:\n    strategy: none\n",
      "pair.yaml", {});
  REQUIRE(!no_failover.has_value());
  CHECK(no_failover.error().message.starts_with(
      "pair.yaml:5: faultTolerance.failover.strategy: none contradicts broker.pair"));
}

TEST_CASE("config: Validate names the key of a bad value set in code or by a flag") {
  BrokerConfig config;
  CHECK(Validate(config).has_value());
  config.core.health.healthy_threshold = 0;
  REQUIRE(!Validate(config).has_value());
  CHECK(Validate(config).error().message ==
        "faultTolerance.healthCheck.healthyThreshold: must be >= 1");
  config = {};
  config.core.scheduling.threshold = -0.1;
  REQUIRE(!Validate(config).has_value());
  CHECK(Validate(config).error().message.starts_with("distribution.adaptive.threshold"));
  config = {};
  config.durability = "sometimes";
  REQUIRE(!Validate(config).has_value());
  CHECK(Validate(config).error().message ==
        "broker.durability: 'sometimes' must be full, normal or off");
}

class ConfigFiles {
 public:
  std::string Write(const std::string& name, const std::string& text) {
    const auto path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }

 private:
  testing::TempDir dir_;
};

TEST_CASE("config: several files apply in order, a later key winning, lists replaced whole") {
  ConfigFiles files;
  const auto base = files.Write("base.yaml", R"(
distribution:
  strategy: round-robin
  adaptive:
    threshold: 0.5
cluster:
  nodes:
    - {id: a, host: ha}
    - {id: b, host: hb}
  discovery:
    type: static
    endpoints: ["tcp://a:1"]
)");
  const auto site = files.Write("site.yaml", R"(
distribution:
  strategy: hash
cluster:
  nodes:
    - {id: c, host: hc, zone: z1}
  discovery:
    type: dns
    name: claw.site:5555
)");
  auto config = LoadConfigFiles({base, site}, {});
  REQUIRE_MESSAGE(config.has_value(), config.error().message);
  CHECK(config->core.scheduling.strategy == Strategy::kHash);
  CHECK(config->core.scheduling.threshold == doctest::Approx(0.5));  // only in the first file
  REQUIRE(config->core.cluster.nodes.size() == 1);
  CHECK(config->core.cluster.nodes[0].id == "c");
  CHECK(config->core.cluster.discovery.type == DiscoveryType::kDns);
  CHECK(
      config->core.cluster.discovery.endpoints.empty());  // the dns section replaced the static one
  CHECK(config->core.cluster.discovery.name == "claw.site:5555");

  auto reversed = LoadConfigFiles({site, base}, {});
  REQUIRE_MESSAGE(reversed.has_value(), reversed.error().message);
  CHECK(reversed->core.scheduling.strategy == Strategy::kRoundRobin);
  CHECK(reversed->core.cluster.nodes.size() == 2);
  CHECK(reversed->core.cluster.discovery.type == DiscoveryType::kStatic);
}

TEST_CASE("config: validation waits for every file, and an error names the file that set it") {
  ConfigFiles files;
  const auto role = files.Write("role.yaml", "broker:\n  pair:\n    role: backup\n");
  const auto peers = files.Write(
      "peers.yaml", "broker:\n  pair:\n    peerBind: \"tcp://*:6\"\n    peer: tcp://b:6\n");
  auto pair = LoadConfigFiles({role, peers}, {});
  REQUIRE_MESSAGE(pair.has_value(), pair.error().message);
  CHECK(pair->pair.enabled);
  CHECK(!pair->pair.primary);
  CHECK(pair->pair.peer == "tcp://b:6");

  const auto bad = files.Write("bad.yaml",
                               "\nfaultTolerance:\n  circuitBreaker:\n"
                               "    failureThreshold: 0\n");
  const auto fine = files.Write("fine.yaml", "distribution:\n  strategy: hash\n");
  auto error = LoadConfigFiles({bad, fine}, {});
  REQUIRE(!error.has_value());
  CHECK(error.error().message.starts_with(
      bad + ":4: faultTolerance.circuitBreaker.failureThreshold: must be >= 1"));
  auto missing = LoadConfigFiles({fine, files.Write("nothing", "") + ".absent"}, {});
  REQUIRE(!missing.has_value());
  CHECK(missing.error().message.starts_with("cannot read config file"));
}

TEST_CASE("config: the example file parses and states exactly the defaults") {
  auto example = LoadConfigFile(std::string(CLAW_SOURCE_DIR) + "/broker/claw.example.yaml", {});
  REQUIRE_MESSAGE(example.has_value(), example.error().message);
  const BrokerConfig defaults;
  // Section by section, so that a failure says where; then the whole, so no field is missed.
  CHECK(example->core.cluster == defaults.core.cluster);
  CHECK(example->core.scheduling == defaults.core.scheduling);
  CHECK(example->core.health == defaults.core.health);
  CHECK(example->core.breaker == defaults.core.breaker);
  CHECK(example->core.migration == defaults.core.migration);
  CHECK(example->core == defaults.core);
  CHECK(example->pair == defaults.pair);
  CHECK(example->failover == defaults.failover);
  CHECK(*example == defaults);
}

}  // namespace
}  // namespace claw::broker
