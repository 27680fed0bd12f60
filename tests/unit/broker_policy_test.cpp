// Pure pieces of the broker: retry delays, the ready queues and the config file.
#include <doctest/doctest.h>

#include "broker/config.hpp"
#include "broker/ready_queues.hpp"
#include "broker/retry_policy.hpp"

namespace claw::broker {
namespace {

TEST_CASE("retry delay doubles from the base up to the cap") {
  const RetryPolicy p{1000, 8000, 0};
  CHECK(RetryDelayMs(p, 1, 0.5) == 1000);
  CHECK(RetryDelayMs(p, 2, 0.5) == 2000);
  CHECK(RetryDelayMs(p, 3, 0.5) == 4000);
  CHECK(RetryDelayMs(p, 4, 0.5) == 8000);
  CHECK(RetryDelayMs(p, 5, 0.5) == 8000);
  CHECK(RetryDelayMs(p, 4000000000u, 0.5) == 8000);  // no overflow however many attempts
}

TEST_CASE("retry jitter adds up to its percentage of the delay") {
  const RetryPolicy p{1000, 60000, 10};
  CHECK(RetryDelayMs(p, 1, 0.0) == 1000);
  CHECK(RetryDelayMs(p, 1, 0.5) == 1050);
  CHECK(RetryDelayMs(p, 2, 0.999) == 2199);
}

TEST_CASE("after a failure: retry while attempts are left, dead when not or when permanent") {
  CHECK(Decide(1, 3, false) == AfterFailure::kRetry);
  CHECK(Decide(2, 3, false) == AfterFailure::kRetry);
  CHECK(Decide(3, 3, false) == AfterFailure::kDead);
  CHECK(Decide(1, 3, true) == AfterFailure::kDead);
}

TEST_CASE("ready queues: highest priority first, FIFO within a priority, per type") {
  ReadyQueues q;
  q.Push("t", 5, 1);
  q.Push("t", 9, 2);
  q.Push("t", 5, 3);
  q.Push("u", 0, 4);
  CHECK(q.Depth("t") == 3);
  CHECK(*q.Pop("t") == 2);  // the priority 9 job
  CHECK(*q.Pop("t") == 1);
  CHECK(*q.Pop("t") == 3);
  CHECK(!q.Pop("t").has_value());
  CHECK(*q.Pop("u") == 4);
  CHECK(!q.Pop("nothing").has_value());
}

TEST_CASE("ready queues: remove takes one job out, depths list non-empty queues") {
  ReadyQueues q;
  q.Push("t", 5, 1);
  q.Push("t", 5, 2);
  q.Push("t", 7, 3);
  CHECK(q.Remove("t", 5, 1));
  CHECK(!q.Remove("t", 5, 1));
  CHECK(!q.Remove("t", 7, 2));
  auto depths = q.Depths();
  REQUIRE(depths.size() == 2);
  CHECK(depths[0].priority == 7);
  CHECK(depths[1].priority == 5);
  CHECK(depths[1].depth == 1);
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
  CHECK(config->durability == "normal");
  CHECK(config->core.heartbeat_ms == 500);
  CHECK(config->core.liveness == 4);
  CHECK(config->core.max_payload_bytes == 2048);
  CHECK(config->core.max_pending == 10);
  CHECK(config->core.max_pending_per_type == 5);
  CHECK(config->core.job_timeout_ms == 60000);
  CHECK(config->core.max_attempts == 7);
  CHECK(config->core.backoff_ms == 2000);
  CHECK(config->core.max_backoff_ms == 3600000);
  CHECK(config->core.jitter_percent == 0);
}

TEST_CASE("config: an unknown key is an error naming file, line and key") {
  auto config = ParseConfig("broker:\n  bind: tcp://*:1\n  hartbeat: 1s\n", "claw.yaml", {});
  REQUIRE(!config.has_value());
  CHECK(config.error().message.find("claw.yaml:3: broker.hartbeat: unknown key") == 0);
}

TEST_CASE("config: bad values name the key") {
  auto duration = ParseConfig("broker:\n  heartbeat: 10\n", "c.yaml", {});
  REQUIRE(!duration.has_value());
  CHECK(duration.error().message.find("c.yaml:2: broker.heartbeat") == 0);
  auto number = ParseConfig("broker:\n  liveness: -3\n", "c.yaml", {});
  REQUIRE(!number.has_value());
  CHECK(number.error().message.find("broker.liveness: expected a whole number") !=
        std::string::npos);
  auto durability = ParseConfig("broker:\n  durability: sometimes\n", "c.yaml", {});
  REQUIRE(!durability.has_value());
  CHECK(durability.error().message.find("durability 'sometimes'") != std::string::npos);
  auto syntax = ParseConfig("broker: [unclosed\n", "c.yaml", {});
  CHECK(!syntax.has_value());
}

TEST_CASE("config: the example file parses and states exactly the defaults") {
  auto example = LoadConfigFile(std::string(CLAW_SOURCE_DIR) + "/broker/claw.example.yaml", {});
  REQUIRE_MESSAGE(example.has_value(), example.error().message);
  const BrokerConfig defaults;
  CHECK(example->bind == defaults.bind);
  CHECK(example->data_dir == defaults.data_dir);
  CHECK(example->log_level == defaults.log_level);
  CHECK(example->durability == defaults.durability);
  CHECK(example->core.heartbeat_ms == defaults.core.heartbeat_ms);
  CHECK(example->core.liveness == defaults.core.liveness);
  CHECK(example->core.max_payload_bytes == defaults.core.max_payload_bytes);
  CHECK(example->core.max_pending == defaults.core.max_pending);
  CHECK(example->core.max_pending_per_type == defaults.core.max_pending_per_type);
  CHECK(example->core.job_timeout_ms == defaults.core.job_timeout_ms);
  CHECK(example->core.max_attempts == defaults.core.max_attempts);
  CHECK(example->core.backoff_ms == defaults.core.backoff_ms);
  CHECK(example->core.max_backoff_ms == defaults.core.max_backoff_ms);
  CHECK(example->core.jitter_percent == defaults.core.jitter_percent);
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
  CHECK(missing.error().message.find("peerBind") != std::string::npos);
  auto bad_role = ParseConfig("broker:\n  pair:\n    role: leader\n", "pair.yaml", {});
  REQUIRE(!bad_role.has_value());
  CHECK(bad_role.error().message.find("pair.yaml:3: broker.pair.role") == 0);
}

}  // namespace
}  // namespace claw::broker
