// JSON for jobs and the cluster; the rules for bytes are in json_format.hpp.
#include "client/json_format.hpp"

#include <cstdint>
#include <optional>

namespace claw::client {
namespace {

using nlohmann::json;

// Sets `name` to the bytes as a string, or to null plus `name`_base64 when they are not UTF-8.
void PutBytes(json& object, const std::string& name, const std::optional<std::string>& bytes) {
  if (!bytes) {
    object[name] = nullptr;
  } else if (IsValidUtf8(*bytes)) {
    object[name] = *bytes;
  } else {
    object[name] = nullptr;
    object[name + "_base64"] = Base64(*bytes);
  }
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // Sequence length, the lead byte's payload bits, and the smallest code point that needs
    // this many bytes (anything smaller is an overlong form).
    std::size_t length = 4;
    std::uint32_t code = lead & 0x07;
    std::uint32_t min = 0x10000;
    if ((lead & 0xe0) == 0xc0) {
      length = 2;
      code = lead & 0x1f;
      min = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3;
      code = lead & 0x0f;
      min = 0x800;
    } else if ((lead & 0xf8) != 0xf0) {
      return false;
    }
    if (i + length > bytes.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(bytes[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    i += length;
  }
  return true;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = static_cast<unsigned char>(bytes[i]) << 16 |
                                static_cast<unsigned char>(bytes[i + 1]) << 8 |
                                static_cast<unsigned char>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(group >> shift) & 0x3f];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t group = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) group |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(group >> 18) & 0x3f];
    out += kAlphabet[(group >> 12) & 0x3f];
    out += rest == 2 ? kAlphabet[(group >> 6) & 0x3f] : '=';
    out += '=';
  }
  return out;
}

json JobToJson(const wire::JobInfo& job) {
  json out = json::object();
  out["id"] = job.id;
  out["type"] = job.type;
  out["state"] = wire::Name(job.state);
  out["priority"] = job.priority;
  out["attempts"] = job.attempts;
  out["max_attempts"] = job.max_attempts;
  out["timeout_ms"] = job.timeout_ms;
  out["backoff_ms"] = job.backoff_ms;
  out["max_backoff_ms"] = job.max_backoff_ms;
  if (!job.key.empty()) out["key"] = job.key;
  out["created_at"] = job.created_at;
  out["updated_at"] = job.updated_at;
  if (job.run_at) out["run_at"] = *job.run_at;
  if (!job.worker.empty()) out["worker"] = job.worker;
  out["error"] = job.error.empty() ? json(nullptr) : json(job.error);
  PutBytes(out, "result", job.result);
  if (job.payload) PutBytes(out, "payload", job.payload);
  if (!job.group.empty()) out["group"] = job.group;
  if (job.follow_up) out["follow_up"] = true;
  if (!job.after.empty()) {
    out["after"] = job.after;
    if (job.after_policy) out["after_policy"] = wire::Name(*job.after_policy);
  }
  if (!job.hash_key.empty()) out["hash_key"] = job.hash_key;
  if (!job.required.empty()) out["requires"] = job.required;
  if (!job.zone.empty()) out["zone"] = job.zone;
  if (job.locality) out["locality"] = wire::Name(*job.locality);
  if (job.max_rtt_ms > 0) out["max_rtt_ms"] = job.max_rtt_ms;
  if (!job.waiting_reason.empty()) out["waiting_reason"] = job.waiting_reason;
  if (job.progress) {
    out["progress"] = {
        {"percent", job.progress->percent ? json(*job.progress->percent) : json(nullptr)},
        {"message", job.progress->message}};
  }
  return out;
}

json JobsToJson(std::span<const wire::JobInfo> jobs) {
  json out = json::array();
  for (const auto& job : jobs) out.push_back(JobToJson(job));
  return out;
}

json GroupToJson(const wire::GroupInfo& group) {
  json out = {{"id", group.id},
              {"total", group.total},
              {"counts", group.counts},
              {"settled", group.settled}};
  if (group.members) out["members"] = JobsToJson(*group.members);
  out["follow_up"] = group.follow_up ? JobToJson(*group.follow_up) : json(nullptr);
  return out;
}

json ClusterToJson(const wire::ClusterInfo& cluster) {
  json queues = json::array();
  for (const auto& queue : cluster.queues) {
    queues.push_back({{"type", queue.type}, {"priority", queue.priority}, {"depth", queue.depth}});
  }
  json workers = json::array();
  for (const auto& worker : cluster.workers) {
    workers.push_back({{"id", worker.id},
                       {"types", worker.types},
                       {"capacity", worker.capacity},
                       {"in_use", worker.in_use},
                       {"prefetch", worker.prefetch},
                       {"waiting", worker.waiting},
                       {"labels", worker.labels},
                       {"last_seen_ms", worker.last_seen_ms},
                       {"breaker", worker.breaker},
                       {"health", worker.health},
                       {"rtt_ms", worker.rtt_ms ? json(*worker.rtt_ms) : json(nullptr)},
                       {"draining", worker.draining}});
  }
  json nodes = json::array();
  for (const auto& node : cluster.nodes) {
    nodes.push_back({{"id", node.id},
                     {"host", node.host},
                     {"role", node.role},
                     {"capacity", node.capacity ? json(*node.capacity) : json(nullptr)},
                     {"zone", node.zone},
                     {"up", node.up ? json(*node.up) : json(nullptr)}});
  }
  json out = {{"name", cluster.name},
              {"role", cluster.role},
              {"epoch", cluster.epoch},
              {"strategy", cluster.strategy},
              {"workers_total", cluster.workers_total},
              {"workers_active", cluster.workers_active},
              {"capacity_total", cluster.capacity_total},
              {"capacity_in_use", cluster.capacity_in_use},
              {"jobs", cluster.jobs},
              {"queues", queues},
              {"workers", workers},
              {"nodes", nodes},
              {"malformed", cluster.malformed}};
  if (cluster.pair) {
    const auto& p = *cluster.pair;
    out["pair"] = {{"state", p.state},
                   {"peer_state", p.peer_state},
                   {"peer", p.peer},
                   {"peer_epoch", p.peer_epoch ? json(*p.peer_epoch) : json(nullptr)},
                   {"peer_heard_ms", p.peer_heard_ms ? json(*p.peer_heard_ms) : json(nullptr)},
                   {"replication", p.replication},
                   {"replica_in_sync", p.replica_in_sync},
                   {"position", p.position},
                   {"lag", p.lag}};
  }
  return out;
}

}  // namespace claw::client
