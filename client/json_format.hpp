// The JSON that `claw-client --json` prints: jobs and the cluster as objects whose keys are
// exactly the protocol's field names (schema/protocol.yaml, `objects`).
//
// A job object always has id, type, state, priority (a number), attempts, max_attempts,
// timeout_ms, backoff_ms, max_backoff_ms, created_at, updated_at, result and error; result and
// error are null when absent. key, run_at, worker, payload, progress ({percent, message},
// percent null when unknown), group, follow_up (true), after, after_policy, hash_key, requires
// (an object of labels), zone, locality, max_rtt_ms and waiting_reason appear only when the job
// has them.
//
// A cluster object has every field of the protocol's `cluster`, strategy included; each worker
// has id, types, capacity, in_use, labels, last_seen_ms, breaker, health, rtt_ms (null until
// measured) and draining.
//
// A group object has id, total, counts (every state), settled, members (when the reply had
// them) and follow_up (a job object, or null).
//
// Bytes (result, payload) are JSON strings when they are valid UTF-8. Otherwise the plain key
// is null and `result_base64` / `payload_base64` holds the bytes in standard base64 (RFC 4648,
// with padding), so that no byte is lost or mangled.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "schema/codec.hpp"

namespace claw::client {

// Whether `bytes` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// Standard base64 with padding.
std::string Base64(std::string_view bytes);

nlohmann::json JobToJson(const wire::JobInfo& job);
nlohmann::json JobsToJson(std::span<const wire::JobInfo> jobs);
nlohmann::json GroupToJson(const wire::GroupInfo& group);
nlohmann::json ClusterToJson(const wire::ClusterInfo& cluster);

}  // namespace claw::client
