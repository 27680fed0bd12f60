#include "broker/config.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "schema/duration.hpp"

namespace claw::broker {
namespace {

// Where a node is, for messages: "claw.yaml:12: broker.heartbeat".
std::string Where(const std::string& file, const YAML::Node& node, const std::string& key) {
  return file + ":" + std::to_string(node.Mark().line + 1) + ": " + key;
}

class Loader {
 public:
  Loader(std::string file, BrokerConfig& config) : file_(std::move(file)), c_(config) {}

  Status Load(const YAML::Node& root) {
    if (root.IsNull()) return {};
    return Section(
        root, "",
        {
            {"broker", [&](const YAML::Node& n, const std::string& k) { return Broker(n, k); }},
            {"distribution",
             [&](const YAML::Node& n, const std::string& k) {
               return Section(n, k, {{"taskQueue", [&](const YAML::Node& q, const std::string& qk) {
                                        return TaskQueue(q, qk);
                                      }}});
             }},
        });
  }

 private:
  using Handler = std::function<Status(const YAML::Node&, const std::string&)>;

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
      if (auto s = handler->second(entry.second, full); !s) return s;
    }
    return {};
  }

  Status Broker(const YAML::Node& n, const std::string& path) {
    return Section(
        n, path,
        {
            {"bind", Str(c_.bind)},
            {"data", Str(c_.data_dir)},
            {"logLevel", Str(c_.log_level)},
            {"durability", Str(c_.durability)},
            {"heartbeat", Duration(c_.core.heartbeat_ms)},
            {"liveness", Uint(c_.core.liveness)},
            {"maxPayload", Uint(c_.core.max_payload_bytes)},
            {"pair", [&](const YAML::Node& p, const std::string& pk) { return Pair(p, pk); }},
        });
  }

  Status Pair(const YAML::Node& n, const std::string& path) {
    c_.pair.enabled = true;
    return Section(n, path,
                   {
                       {"role",
                        [&](const YAML::Node& r, const std::string& rk) -> Status {
                          if (r.IsScalar() && (r.Scalar() == "primary" || r.Scalar() == "backup")) {
                            c_.pair.primary = r.Scalar() == "primary";
                            return {};
                          }
                          return Fail(Where(file_, r, rk) + ": role must be primary or backup");
                        }},
                       {"peerBind", Str(c_.pair.peer_bind)},
                       {"peer", Str(c_.pair.peer)},
                       {"replication",
                        [&](const YAML::Node& r, const std::string& rk) -> Status {
                          if (r.IsScalar() && (r.Scalar() == "sync" || r.Scalar() == "async")) {
                            c_.pair.sync = r.Scalar() == "sync";
                            return {};
                          }
                          return Fail(Where(file_, r, rk) + ": replication must be sync or async");
                        }},
                       {"heartbeat", Duration(c_.pair.heartbeat_ms)},
                       {"ackTimeout", Duration(c_.pair.ack_timeout_ms)},
                   });
  }

  Status TaskQueue(const YAML::Node& n, const std::string& path) {
    return Section(
        n, path,
        {
            {"maxPending", Uint(c_.core.max_pending)},
            {"maxPendingPerType", Uint(c_.core.max_pending_per_type)},
            {"timeout", Duration(c_.core.job_timeout_ms)},
            {"retryPolicy",
             [&](const YAML::Node& r, const std::string& rk) {
               return Section(
                   r, rk,
                   {
                       {"maxAttempts", Uint(c_.core.max_attempts)},
                       {"backoff",
                        [&](const YAML::Node& b, const std::string& bk) -> Status {
                          if (b.IsScalar() && b.Scalar() == "exponential") return {};
                          return Fail(Where(file_, b, bk) + ": the only backoff is 'exponential'");
                        }},
                       {"initialBackoff", Duration(c_.core.backoff_ms)},
                       {"maxBackoff", Duration(c_.core.max_backoff_ms)},
                       {"jitterPercent", Uint(c_.core.jitter_percent)},
                   });
             }},
        });
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
        return Fail(Where(file_, n, key) + ": expected a whole number >= 0, got '" +
                    (n.IsScalar() ? n.Scalar() : std::string("a collection")) + "'");
      }
    };
  }

  Handler Duration(std::uint64_t& out) {
    return [&out, this](const YAML::Node& n, const std::string& key) -> Status {
      if (!n.IsScalar()) return Fail(Where(file_, n, key) + ": expected a duration like 30s");
      auto ms = wire::ParseDuration(n.Scalar());
      if (!ms) return Fail(Where(file_, n, key) + ": " + ms.error().message);
      out = static_cast<std::uint64_t>(*ms);
      return {};
    };
  }

  std::string file_;
  BrokerConfig& c_;
};

}  // namespace

Result<BrokerConfig> ParseConfig(const std::string& text, const std::string& name,
                                 BrokerConfig base) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Fail(name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (auto s = Loader(name, base).Load(root); !s) return std::unexpected(s.error());
  if (auto s = Validate(base); !s) return Fail(name + ": " + s.error().message);
  return base;
}

Result<BrokerConfig> LoadConfigFile(const std::string& path, BrokerConfig base) {
  std::ifstream in(path);
  if (!in) return Fail("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path, std::move(base));
}

Status Validate(const BrokerConfig& c) {
  static const std::array<std::string_view, 3> kDurability = {"full", "normal", "off"};
  static const std::array<std::string_view, 6> kLevels = {"trace", "debug", "info",
                                                          "warn",  "error", "off"};
  if (std::find(kDurability.begin(), kDurability.end(), c.durability) == kDurability.end())
    return Fail("durability '" + c.durability + "' must be full, normal or off");
  if (std::find(kLevels.begin(), kLevels.end(), c.log_level) == kLevels.end())
    return Fail("log level '" + c.log_level + "' must be trace, debug, info, warn, error or off");
  if (c.core.heartbeat_ms == 0) return Fail("heartbeat must be > 0");
  if (c.core.liveness < 2) return Fail("liveness must be >= 2");
  if (c.core.max_attempts == 0) return Fail("maxAttempts must be >= 1");
  if (c.core.job_timeout_ms == 0) return Fail("timeout must be > 0");
  if (c.core.max_pending == 0) return Fail("maxPending must be >= 1");
  if (c.core.jitter_percent > 100) return Fail("jitterPercent must be 0-100");
  if (c.bind.empty()) return Fail("bind must name an endpoint");
  if (c.pair.enabled) {
    if (c.pair.peer_bind.empty()) return Fail("a broker pair needs peerBind (--peer-bind)");
    if (c.pair.peer.empty()) return Fail("a broker pair needs peer (--peer)");
    if (c.pair.heartbeat_ms == 0) return Fail("the pair heartbeat must be > 0");
  }
  return {};
}

}  // namespace claw::broker
