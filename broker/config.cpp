#include "broker/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "schema/codec.hpp"
#include "schema/duration.hpp"
#include "schema/transport.hpp"

namespace claw::broker {
namespace {

// Where each key was last set: "cluster.nodes[1].zone" -> "claw.yaml:14".
using Origins = std::map<std::string, std::string>;

std::string Line(const std::string& file, const YAML::Node& node) {
  return file + ":" + std::to_string(node.Mark().line + 1);
}

// Where a node is, for messages: "claw.yaml:12: broker.heartbeat".
std::string Where(const std::string& file, const YAML::Node& node, const std::string& key) {
  return Line(file, node) + ": " + key;
}

class Loader {
 public:
  Loader(std::string file, BrokerConfig& config, Origins& origins)
      : file_(std::move(file)), c_(config), origins_(origins) {}

  Status Load(const YAML::Node& root) {
    if (root.IsNull()) return {};
    return Section(root, "",
                   {
                       {"broker", Bind(&Loader::Broker)},
                       {"cluster", Bind(&Loader::Cluster)},
                       {"distribution", Bind(&Loader::Distribution)},
                       {"faultTolerance", Bind(&Loader::FaultTolerance)},
                   });
  }

 private:
  using Handler = std::function<Status(const YAML::Node&, const std::string&)>;

  Handler Bind(Status (Loader::*method)(const YAML::Node&, const std::string&)) {
    return
        [this, method](const YAML::Node& n, const std::string& k) { return (this->*method)(n, k); };
  }

  // Walks a mapping, sending each known key to its handler; an unknown key is an error.
  Status Section(const YAML::Node& node, const std::string& path,
                 const std::map<std::string, Handler>& handlers) {
    if (!node.IsMap())
      return Fail(Where(file_, node, path.empty() ? "top level" : path) +
                  ": expected a mapping of keys");
    for (const auto& entry : node) {
      const auto key = entry.first.as<std::string>();
      const std::string full = path.empty() ? key : path + "." + key;
      auto handler = handlers.find(key);
      if (handler == handlers.end()) {
        std::string known;
        for (const auto& [name, h] : handlers) known += (known.empty() ? "" : ", ") + name;
        return Fail(Where(file_, entry.first, full) + ": unknown key (known here: " + known + ")");
      }
      origins_[full] = Line(file_, entry.first);
      if (auto s = handler->second(entry.second, full); !s) return s;
    }
    return {};
  }

  // Calls `each` for every element of a sequence, with its path ("cluster.nodes[2]").
  Status Sequence(const YAML::Node& node, const std::string& path,
                  const std::function<Status(const YAML::Node&, const std::string&)>& each) {
    if (!node.IsSequence()) return Fail(Where(file_, node, path) + ": expected a list");
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string element = path + "[" + std::to_string(i) + "]";
      origins_[element] = Line(file_, node[i]);
      if (auto s = each(node[i], element); !s) return s;
    }
    return {};
  }

  Status Broker(const YAML::Node& n, const std::string& path) {
    return Section(n, path,
                   {
                       {"bind", Str(c_.bind)},
                       {"data", Str(c_.data_dir)},
                       {"logLevel", Str(c_.log_level)},
                       {"durability", Str(c_.durability)},
                       {"heartbeat", Duration(c_.core.heartbeat_ms)},
                       {"liveness", Uint(c_.core.liveness)},
                       {"maxPayload", Uint(c_.core.max_payload_bytes)},
                       {"retention", Duration(c_.core.retention_ms)},
                       {"commitDelay", Duration(c_.core.commit_delay_ms)},
                       {"pair", Bind(&Loader::Pair)},
                   });
  }

  Status Pair(const YAML::Node& n, const std::string& path) {
    c_.pair.enabled = true;
    return Section(n, path,
                   {
                       {"role", Choice(c_.pair.primary, {{"primary", true}, {"backup", false}})},
                       {"peerBind", Str(c_.pair.peer_bind)},
                       {"peer", Str(c_.pair.peer)},
                       {"replication", Choice(c_.pair.sync, {{"sync", true}, {"async", false}})},
                       {"heartbeat", Duration(c_.pair.heartbeat_ms)},
                       {"ackTimeout", Duration(c_.pair.ack_timeout_ms)},
                   });
  }

  Status Cluster(const YAML::Node& n, const std::string& path) {
    return Section(n, path,
                   {
                       {"name", Str(c_.core.cluster.name)},
                       {"region", Str(c_.core.cluster.region)},
                       {"nodes",
                        [&](const YAML::Node& list, const std::string& key) {
                          c_.core.cluster.nodes.clear();
                          return Sequence(list, key,
                                          [&](const YAML::Node& e, const std::string& k) {
                                            return Node(e, k);
                                          });
                        }},
                       {"discovery", Bind(&Loader::Discovery)},
                   });
  }

  Status Node(const YAML::Node& n, const std::string& path) {
    NodeConfig& node = c_.core.cluster.nodes.emplace_back();
    return Section(n, path,
                   {
                       {"id", Str(node.id)},
                       {"host", Str(node.host)},
                       {"role", Choice(node.role, {{"coordinator", NodeRole::kCoordinator},
                                                   {"worker", NodeRole::kWorker}})},
                       {"capacity", Uint(node.capacity)},
                       {"zone", Str(node.zone)},
                   });
  }

  Status Discovery(const YAML::Node& n, const std::string& path) {
    // A section that states its type starts from scratch: the other type's keys are not kept.
    if (n.IsMap() && n["type"]) c_.core.cluster.discovery = DiscoveryConfig{};
    return Section(
        n, path,
        {
            {"type", Choice(c_.core.cluster.discovery.type,
                            {{"static", DiscoveryType::kStatic}, {"dns", DiscoveryType::kDns}})},
            {"endpoints",
             [&](const YAML::Node& list, const std::string& key) {
               auto& endpoints = c_.core.cluster.discovery.endpoints;
               endpoints.clear();
               return Sequence(list, key, [&](const YAML::Node& e, const std::string& k) {
                 return Str(endpoints.emplace_back())(e, k);
               });
             }},
            {"name", Str(c_.core.cluster.discovery.name)},
        });
  }

  Status Distribution(const YAML::Node& n, const std::string& path) {
    auto& s = c_.core.scheduling;
    return Section(
        n, path,
        {
            {"strategy",
             Parsed(s.strategy, ParseStrategy, "round-robin, hash, least-loaded or adaptive")},
            {"adaptive",
             [&](const YAML::Node& a, const std::string& ak) {
               return Section(a, ak,
                              {
                                  {"rebalanceInterval", Duration(s.rebalance_interval_ms)},
                                  {"threshold", Number(s.threshold)},
                              });
             }},
            {"taskQueue", Bind(&Loader::TaskQueue)},
            {"routing",
             [&](const YAML::Node& r, const std::string& rk) {
               return Section(r, rk,
                              {
                                  {"affinity", Bool(s.affinity)},
                                  {"antiAffinity", Bool(s.anti_affinity)},
                                  {"locality", Parsed(s.locality, ParseLocality,
                                                      "same-zone, cross-zone or any")},
                              });
             }},
        });
  }

  Status TaskQueue(const YAML::Node& n, const std::string& path) {
    return Section(
        n, path,
        {
            {"type", Only("priority", "the only queue type is 'priority'")},
            {"priority", Parsed(c_.core.scheduling.default_priority, wire::ParsePriority,
                                "low, normal, high, critical or a number 0-9")},
            {"maxPending", Uint(c_.core.max_pending)},
            {"maxPendingPerType", Uint(c_.core.max_pending_per_type)},
            {"timeout", Duration(c_.core.job_timeout_ms)},
            {"retryPolicy",
             [&](const YAML::Node& r, const std::string& rk) {
               return Section(
                   r, rk,
                   {
                       {"maxAttempts", Uint(c_.core.max_attempts)},
                       {"backoff", Only("exponential", "the only backoff is 'exponential'")},
                       {"initialBackoff", Duration(c_.core.backoff_ms)},
                       {"maxBackoff", Duration(c_.core.max_backoff_ms)},
                       {"jitterPercent", Uint(c_.core.jitter_percent)},
                   });
             }},
        });
  }

  Status FaultTolerance(const YAML::Node& n, const std::string& path) {
    auto& health = c_.core.health;
    auto& failover = c_.failover;
    auto& migration = c_.core.migration;
    auto& breaker = c_.core.breaker;
    return Section(
        n, path,
        {
            {"healthCheck",
             [&](const YAML::Node& h, const std::string& hk) {
               return Section(h, hk,
                              {
                                  {"interval", Duration(health.interval_ms)},
                                  {"timeout", Duration(health.timeout_ms)},
                                  {"unhealthyThreshold", Uint(health.unhealthy_threshold)},
                                  {"healthyThreshold", Uint(health.healthy_threshold)},
                              });
             }},
            {"failover",
             [&](const YAML::Node& f, const std::string& fk) {
               return Section(f, fk,
                              {
                                  {"strategy", Choice(failover.kind,
                                                      {{"binary-star", FailoverKind::kBinaryStar},
                                                       {"none", FailoverKind::kNone}})},
                                  {"failoverTime", Duration(failover.failover_time_ms)},
                              });
             }},
            {"taskMigration",
             [&](const YAML::Node& m, const std::string& mk) {
               return Section(
                   m, mk,
                   {
                       {"enabled", Bool(migration.enabled)},
                       {"migrateInProgress", Bool(migration.migrate_in_progress)},
                       {"checkpointInterval", Duration(migration.checkpoint_interval_ms)},
                   });
             }},
            {"circuitBreaker",
             [&](const YAML::Node& b, const std::string& bk) {
               return Section(b, bk,
                              {
                                  {"enabled", Bool(breaker.enabled)},
                                  {"failureThreshold", Uint(breaker.failure_threshold)},
                                  {"recoveryTimeout", Duration(breaker.recovery_timeout_ms)},
                                  {"halfOpenRequests", Uint(breaker.half_open_requests)},
                              });
             }},
        });
  }

  static std::string Shown(const YAML::Node& n) {
    return n.IsScalar() ? "'" + n.Scalar() + "'" : std::string("a collection");
  }

  Handler Str(std::string& out) {
    return [&out, this](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsScalar()) return Fail(Where(file_, n, key) + ": expected a string");
      out = n.Scalar();
      return {};
    };
  }

  template <typename T>
  Handler Uint(T& out) {
    return [&out, this](const YAML::Node& n, const std::string& key) -> Status {
      try {
        if (!n.IsScalar() || n.Scalar().starts_with("-")) throw YAML::BadConversion(n.Mark());
        out = n.as<T>();
        return {};
      } catch (const YAML::Exception&) {
        return Fail(Where(file_, n, key) + ": expected a whole number >= 0, got " + Shown(n));
      }
    };
  }

  Handler Number(double& out) {
    return [&out, this](const YAML::Node& n, const std::string& key) -> Status {
      try {
        if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
        const auto value = n.as<double>();
        if (!std::isfinite(value)) throw YAML::BadConversion(n.Mark());
        out = value;
        return {};
      } catch (const YAML::Exception&) {
        return Fail(Where(file_, n, key) + ": expected a number like 0.8, got " + Shown(n));
      }
    };
  }

  Handler Bool(bool& out) { return Choice(out, {{"true", true}, {"false", false}}); }

  Handler Duration(std::uint64_t& out) {
    return [&out, this](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsScalar()) return Fail(Where(file_, n, key) + ": expected a duration like 30s");
      auto ms = wire::ParseDuration(n.Scalar());
      if (!ms) return Fail(Where(file_, n, key) + ": " + ms.error().message);
      out = static_cast<std::uint64_t>(*ms);
      return {};
    };
  }

  // One of a few words, each standing for a value.
  template <typename T>
  Handler Choice(T& out, std::vector<std::pair<std::string, T>> words) {
    return [&out, words = std::move(words), this](const YAML::Node& n,
                                                  const std::string& key) -> Status {
      std::string expected;
      for (std::size_t i = 0; i < words.size(); ++i) {
        if (n.IsScalar() && n.Scalar() == words[i].first) {
          out = words[i].second;
          return {};
        }
        expected += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i].first;
      }
      return Fail(Where(file_, n, key) + ": expected " + expected + ", got " + Shown(n));
    };
  }

  // A value read by a parse function of the component that owns it.
  template <typename T, typename Parse>
  Handler Parsed(T& out, Parse parse, std::string expected) {
    return [&out, parse, expected = std::move(expected), this](const YAML::Node& n,
                                                               const std::string& key) -> Status {
      if (n.IsScalar()) {
        if (auto value = parse(n.Scalar())) {
          out = *value;
          return {};
        }
      }
      return Fail(Where(file_, n, key) + ": expected " + expected + ", got " + Shown(n));
    };
  }

  // A key with a single accepted value, kept for the shape of the file.
  Handler Only(std::string value, std::string why) {
    return [value = std::move(value), why = std::move(why), this](
               const YAML::Node& n, const std::string& key) -> Status {
      if (n.IsScalar() && n.Scalar() == value) return {};
      return Fail(Where(file_, n, key) + ": " + why);
    };
  }

  std::string file_;
  BrokerConfig& c_;
  Origins& origins_;
};

// 0.75 -> "0.75", as the file would write it.
std::string Decimal(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// A value that is wrong, by the key that sets it.
struct Invalid {
  std::string key;
  std::string why;
};

// One of the broker's own endpoints (wire::CheckSocketEndpoint), under its config key.
std::optional<Invalid> CheckZmqEndpoint(const std::string& key, const std::string& endpoint) {
  if (Status checked = wire::CheckSocketEndpoint(endpoint); !checked) {
    return Invalid{key, checked.error().message};
  }
  return std::nullopt;
}

std::optional<Invalid> CheckCluster(const ClusterConfig& c) {
  if (c.name.empty()) return Invalid{"cluster.name", "must not be empty"};
  std::map<std::string, std::size_t> ids;
  for (std::size_t i = 0; i < c.nodes.size(); ++i) {
    const auto& node = c.nodes[i];
    const std::string at = "cluster.nodes[" + std::to_string(i) + "]";
    if (node.id.empty()) return Invalid{at + ".id", "every node needs an id"};
    if (node.host.empty()) return Invalid{at + ".host", "every node needs a host"};
    if (node.capacity > wire::limits::kMaxCapacity) {
      return Invalid{at + ".capacity", "must be 1-" + std::to_string(wire::limits::kMaxCapacity) +
                                           " (0: as the worker says), got " +
                                           std::to_string(node.capacity)};
    }
    if (auto [other, fresh] = ids.emplace(node.id, i); !fresh) {
      return Invalid{at + ".id", "'" + node.id + "' is also the id of cluster.nodes[" +
                                     std::to_string(other->second) + "]"};
    }
  }
  const auto& d = c.discovery;
  if (d.type == DiscoveryType::kStatic) {
    if (!d.name.empty()) return Invalid{"cluster.discovery.name", "only for type dns"};
    for (std::size_t i = 0; i < d.endpoints.size(); ++i) {
      if (auto bad = CheckZmqEndpoint("cluster.discovery.endpoints[" + std::to_string(i) + "]",
                                      d.endpoints[i])) {
        return bad;
      }
    }
  } else {
    if (!d.endpoints.empty()) return Invalid{"cluster.discovery.endpoints", "only for type static"};
    if (!wire::SplitHostPort(d.name)) {
      return Invalid{"cluster.discovery.name",
                     "type dns needs a name like claw.example.com:5555, got '" + d.name + "'"};
    }
  }
  return std::nullopt;
}

std::optional<Invalid> Check(const BrokerConfig& c) {
  static const std::array<std::string_view, 3> kDurability = {"full", "normal", "off"};
  static const std::array<std::string_view, 6> kLevels = {"trace", "debug", "info",
                                                          "warn",  "error", "off"};
  const std::string queue = "distribution.taskQueue.";
  const std::string ft = "faultTolerance.";
  if (std::ranges::find(kDurability, c.durability) == kDurability.end())
    return Invalid{"broker.durability", "'" + c.durability + "' must be full, normal or off"};
  if (std::ranges::find(kLevels, c.log_level) == kLevels.end()) {
    return Invalid{"broker.logLevel",
                   "'" + c.log_level + "' must be trace, debug, info, warn, error or off"};
  }
  if (c.bind.empty()) return Invalid{"broker.bind", "must name an endpoint"};
  if (auto bad = CheckZmqEndpoint("broker.bind", c.bind)) return bad;
  if (c.core.heartbeat_ms == 0) return Invalid{"broker.heartbeat", "must be > 0"};
  if (c.core.liveness < 2) return Invalid{"broker.liveness", "must be >= 2"};
  if (c.pair.enabled) {
    if (c.pair.peer_bind.empty())
      return Invalid{"broker.pair.peerBind", "a broker pair needs peerBind (--peer-bind)"};
    if (c.pair.peer.empty())
      return Invalid{"broker.pair.peer", "a broker pair needs peer (--peer)"};
    if (auto bad = CheckZmqEndpoint("broker.pair.peerBind", c.pair.peer_bind)) return bad;
    if (auto bad = CheckZmqEndpoint("broker.pair.peer", c.pair.peer)) return bad;
    if (c.pair.heartbeat_ms == 0) return Invalid{"broker.pair.heartbeat", "must be > 0"};
  }
  if (auto bad = CheckCluster(c.core.cluster)) return bad;

  const auto& s = c.core.scheduling;
  if (s.rebalance_interval_ms == 0)
    return Invalid{"distribution.adaptive.rebalanceInterval", "must be > 0"};
  if (!(s.threshold >= 0.0 && s.threshold <= 1.0)) {
    return Invalid{"distribution.adaptive.threshold",
                   "a load ratio must be 0-1, got " + Decimal(s.threshold)};
  }
  if (s.default_priority > wire::kPriorityMax) return Invalid{queue + "priority", "must be 0-9"};
  if (c.core.max_pending == 0) return Invalid{queue + "maxPending", "must be >= 1"};
  if (c.core.job_timeout_ms == 0) return Invalid{queue + "timeout", "must be > 0"};
  if (c.core.max_attempts == 0) return Invalid{queue + "retryPolicy.maxAttempts", "must be >= 1"};
  if (c.core.jitter_percent > 100)
    return Invalid{queue + "retryPolicy.jitterPercent", "must be 0-100"};

  const auto& h = c.core.health;
  if (h.interval_ms == 0) return Invalid{ft + "healthCheck.interval", "must be > 0"};
  if (h.timeout_ms == 0) return Invalid{ft + "healthCheck.timeout", "must be > 0"};
  if (h.timeout_ms > h.interval_ms) {
    return Invalid{ft + "healthCheck.timeout", wire::FormatDuration(h.timeout_ms) +
                                                   " must not exceed the interval, " +
                                                   wire::FormatDuration(h.interval_ms)};
  }
  if (h.unhealthy_threshold == 0)
    return Invalid{ft + "healthCheck.unhealthyThreshold", "must be >= 1"};
  if (h.healthy_threshold == 0) return Invalid{ft + "healthCheck.healthyThreshold", "must be >= 1"};
  if (c.failover.failover_time_ms == 0) return Invalid{ft + "failover.failoverTime", "must be > 0"};
  if (c.pair.enabled && c.failover.failover_time_ms <= c.pair.heartbeat_ms) {
    return Invalid{ft + "failover.failoverTime",
                   wire::FormatDuration(c.failover.failover_time_ms) +
                       " must be longer than broker.pair.heartbeat, " +
                       wire::FormatDuration(c.pair.heartbeat_ms) +
                       " (one late heartbeat would start a takeover)"};
  }
  if (c.failover.kind == FailoverKind::kNone && c.pair.enabled) {
    return Invalid{ft + "failover.strategy",
                   "none contradicts broker.pair (a pair fails over binary-star)"};
  }
  if (c.core.migration.checkpoint_interval_ms == 0)
    return Invalid{ft + "taskMigration.checkpointInterval", "must be > 0"};
  const auto& b = c.core.breaker;
  if (b.failure_threshold == 0)
    return Invalid{ft + "circuitBreaker.failureThreshold", "must be >= 1"};
  if (b.recovery_timeout_ms == 0)
    return Invalid{ft + "circuitBreaker.recoveryTimeout", "must be > 0"};
  if (b.half_open_requests == 0)
    return Invalid{ft + "circuitBreaker.halfOpenRequests", "must be >= 1"};
  return std::nullopt;
}

// Validates the config the files built: an error names the file and line that set the key, or
// else the nearest enclosing key that was set, or else the last file.
Status ValidateLoaded(const BrokerConfig& config, const Origins& origins,
                      const std::string& last_file) {
  auto bad = Check(config);
  if (!bad) return {};
  for (std::string key = bad->key; !key.empty();) {
    if (auto at = origins.find(key); at != origins.end())
      return Fail(at->second + ": " + bad->key + ": " + bad->why);
    const auto cut = key.find_last_of(".[");
    key = cut == std::string::npos ? "" : key.substr(0, cut);
  }
  return Fail(last_file + ": " + bad->key + ": " + bad->why);
}

Status Apply(const std::string& text, const std::string& name, BrokerConfig& config,
             Origins& origins) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Fail(name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return Loader(name, config, origins).Load(root);
}

}  // namespace

Result<BrokerConfig> ParseConfig(const std::string& text, const std::string& name,
                                 BrokerConfig base) {
  Origins origins;
  if (auto s = Apply(text, name, base, origins); !s) return std::unexpected(s.error());
  if (auto s = ValidateLoaded(base, origins, name); !s) return std::unexpected(s.error());
  return base;
}

Result<BrokerConfig> LoadConfigFiles(const std::vector<std::string>& paths, BrokerConfig base) {
  Origins origins;
  for (const auto& path : paths) {
    std::ifstream in(path);
    if (!in) return Fail("cannot read config file " + path);
    std::stringstream text;
    text << in.rdbuf();
    if (auto s = Apply(text.str(), path, base, origins); !s) return std::unexpected(s.error());
  }
  if (paths.empty()) {
    if (auto s = Validate(base); !s) return std::unexpected(s.error());
    return base;
  }
  if (auto s = ValidateLoaded(base, origins, paths.back()); !s) return std::unexpected(s.error());
  return base;
}

Result<BrokerConfig> LoadConfigFile(const std::string& path, BrokerConfig base) {
  return LoadConfigFiles({path}, std::move(base));
}

Status Validate(const BrokerConfig& config) {
  if (auto bad = Check(config)) return Fail(bad->key + ": " + bad->why);
  return {};
}

}  // namespace claw::broker
