// The Claw wire codec: typed messages <-> the three frames each message travels in.
//
// This is the only place that knows how a message looks as bytes (schema/protocol.yaml is the
// source of truth, schema/PROTOCOL.md the prose). Programs build and receive these structs; they
// never index frames or compare header strings themselves.
//
// Decoding never throws: bad input of any kind (wrong header, unknown command, bad msgpack,
// missing or mistyped field, over a size limit) comes back as a DecodeError that says what was
// wrong and carries enough of the request (dialog, command, rid) to answer it.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "schema/protocol_constants.hpp"
#include "schema/result.hpp"

namespace claw::wire {

using Labels = std::map<std::string, std::string>;

struct Progress {
  std::optional<std::uint32_t> percent;
  std::string message;
  bool operator==(const Progress&) const = default;
};

struct JobInfo {
  std::string id;
  std::string type;
  JobState state = JobState::kQueued;
  std::uint32_t priority = kPriorityNormal;
  std::uint32_t attempts = 0;
  std::uint32_t max_attempts = 0;
  std::uint64_t timeout_ms = 0;
  std::uint64_t backoff_ms = 0;
  std::uint64_t max_backoff_ms = 0;
  std::string key;  // empty: none
  std::uint64_t created_at = 0;
  std::uint64_t updated_at = 0;
  std::optional<std::uint64_t> run_at;
  std::string worker;
  std::string error;
  std::optional<std::string> result;
  std::optional<std::string> payload;
  std::optional<Progress> progress;
  std::string group;  // "g-N"; empty: none
  bool follow_up = false;
  std::vector<std::string> after;
  std::optional<DependencyPolicy> after_policy;  // set when `after` is not empty
  std::string hash_key;                          // empty: none
  Labels required;
  std::string zone;
  std::optional<Locality> locality;  // nullopt: the broker's default
  std::uint32_t max_rtt_ms = 0;
  std::string waiting_reason;
  bool operator==(const JobInfo&) const = default;
};

struct WorkerInfo {
  std::string id;
  std::vector<std::string> types;
  std::uint32_t capacity = 0;
  std::uint32_t in_use = 0;
  std::uint32_t prefetch = 0;
  std::uint32_t waiting = 0;  // of in_use, not started
  Labels labels;
  std::uint64_t last_seen_ms = 0;
  std::string breaker = "closed";
  std::string health = "healthy";
  std::optional<std::uint64_t> rtt_ms;
  bool draining = false;
  bool operator==(const WorkerInfo&) const = default;
};

// One node cluster.nodes declares.
struct NodeInfo {
  std::string id;
  std::string host;
  std::string role;
  std::optional<std::uint32_t> capacity;
  std::string zone;
  std::optional<bool> up;
  bool operator==(const NodeInfo&) const = default;
};

struct QueueInfo {
  std::string type;
  std::uint32_t priority = 0;
  std::uint64_t depth = 0;
  bool operator==(const QueueInfo&) const = default;
};

struct PairInfo {
  std::string state;
  std::string peer_state;
  std::string peer;
  std::optional<std::uint64_t> peer_epoch;
  std::optional<std::uint64_t> peer_heard_ms;
  std::string replication;
  bool replica_in_sync = false;
  std::uint64_t position = 0;
  std::uint64_t lag = 0;
  bool operator==(const PairInfo&) const = default;
};

// One dependency's outcome, handed to the job that waited for it.
struct Input {
  std::string id;
  std::string state;  // a final state's name, or "purged"
  std::optional<std::string> result;
  std::string error;
  bool operator==(const Input&) const = default;
};

struct GroupInfo {
  std::string id;
  std::uint64_t total = 0;
  std::map<std::string, std::uint64_t> counts;  // state name -> members in it
  std::uint64_t settled = 0;
  std::optional<std::vector<JobInfo>> members;
  std::optional<JobInfo> follow_up;
  bool operator==(const GroupInfo&) const = default;
};

struct ClusterInfo {
  std::string role;
  std::string strategy;
  std::uint64_t epoch = 0;
  std::uint32_t workers_total = 0;
  std::uint32_t workers_active = 0;
  std::uint64_t capacity_total = 0;
  std::uint64_t capacity_in_use = 0;
  std::map<std::string, std::uint64_t> jobs;  // state name -> count
  std::vector<QueueInfo> queues;
  std::vector<WorkerInfo> workers;
  std::uint64_t malformed = 0;
  std::optional<PairInfo> pair;
  std::string name;
  std::vector<NodeInfo> nodes;
  bool operator==(const ClusterInfo&) const = default;
};

// A value held by pointer, for fields most objects leave unset: an empty box costs one pointer
// and reads as a default T. Copies are deep; equality compares the values.
template <typename T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(const Boxed& other) : value_(other.value_ ? std::make_unique<T>(*other.value_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) value_ = other.value_ ? std::make_unique<T>(*other.value_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;

  const T& value() const {
    static const T kDefault{};
    return value_ ? *value_ : kDefault;
  }
  // The value to change, created (default) on first use.
  T& edit() {
    if (!value_) value_ = std::make_unique<T>();
    return *value_;
  }
  bool operator==(const Boxed& other) const { return value() == other.value(); }

 private:
  std::unique_ptr<T> value_;
};

// An optional value held by pointer, for the optional fields of a job record that most jobs
// leave unset (result, progress, checkpoint): unset, it costs one pointer instead of a whole
// std::optional. It reads like std::optional; copies are deep.
template <typename T>
class OptionalBox {
 public:
  using value_type = T;
  OptionalBox() = default;
  OptionalBox(std::nullopt_t) {}  // NOLINT(google-explicit-constructor): as std::optional
  OptionalBox(const std::optional<T>& value)  // NOLINT(google-explicit-constructor)
      : value_(value ? std::make_unique<T>(*value) : nullptr) {}
  OptionalBox(const OptionalBox& other)
      : value_(other.value_ ? std::make_unique<T>(*other.value_) : nullptr) {}
  OptionalBox(OptionalBox&&) noexcept = default;
  OptionalBox& operator=(const OptionalBox& other) {
    if (this != &other) value_ = other.value_ ? std::make_unique<T>(*other.value_) : nullptr;
    return *this;
  }
  OptionalBox& operator=(OptionalBox&&) noexcept = default;
  OptionalBox& operator=(std::nullopt_t) {
    value_.reset();
    return *this;
  }
  OptionalBox& operator=(const std::optional<T>& value) {
    value_ = value ? std::make_unique<T>(*value) : nullptr;
    return *this;
  }
  template <typename U = T>
  requires std::is_constructible_v<T, U&&> &&
      (!std::is_same_v<std::remove_cvref_t<U>, OptionalBox>)&&(
          !std::is_same_v<std::remove_cvref_t<U>, std::optional<T>>)OptionalBox&
      operator=(U&& value) {
    value_ = std::make_unique<T>(std::forward<U>(value));
    return *this;
  }

  bool has_value() const { return value_ != nullptr; }
  explicit operator bool() const { return has_value(); }
  const T& operator*() const { return *value_; }
  T& operator*() { return *value_; }
  const T* operator->() const { return value_.get(); }
  T* operator->() { return value_.get(); }
  template <typename U>
  T value_or(U&& fallback) const {
    return value_ ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }
  void reset() { value_.reset(); }
  // A copy as a std::optional (explicit, so that no copy is made unseen).
  std::optional<T> ToOptional() const { return value_ ? std::optional<T>(*value_) : std::nullopt; }

  bool operator==(const OptionalBox& other) const {
    return has_value() == other.has_value() && (!value_ || *value_ == *other.value_);
  }
  friend bool operator==(const OptionalBox& box, const T& value) {
    return box.has_value() && *box == value;
  }

 private:
  std::unique_ptr<T> value_;
};

// What a job record holds beyond the basics: its group, its dependencies and its routing.
struct JobLinks {
  std::uint64_t group = 0;  // 0: none
  bool follow_up = false;
  std::vector<std::uint64_t> after;  // seqs of the jobs it waits for
  DependencyPolicy after_policy = DependencyPolicy::kAllSucceeded;
  std::string hash_key;  // empty: none
  // Placement (see broker/placement.hpp): labels the worker needs, preferred zone, locality
  // (nullopt: the broker's default) and a bound on the worker's round trip (0: none).
  Labels required;
  std::string zone;
  std::optional<Locality> locality;
  std::uint32_t max_rtt_ms = 0;
  bool operator==(const JobLinks&) const = default;
};

// A job as the broker persists it (every column), and as the broker pair replicates it.
struct JobRecord {
  std::uint64_t seq = 0;
  std::string type;
  std::string payload;
  std::uint32_t priority = kPriorityNormal;
  JobState state = JobState::kQueued;
  std::uint64_t timeout_ms = 0;
  std::uint32_t max_attempts = 1;
  std::uint64_t backoff_ms = 0;
  std::uint64_t max_backoff_ms = 0;
  std::string key;  // idempotency key; empty: none
  std::uint32_t attempts = 0;
  std::int64_t created_at = 0;  // wall clock, Unix ms
  std::int64_t updated_at = 0;  // wall clock, Unix ms
  std::int64_t run_at = 0;      // wall clock, Unix ms; when a scheduled job becomes queued
  std::string worker;           // worker of the current or last attempt
  std::string error;            // last attempt's error
  OptionalBox<std::string> result;
  OptionalBox<Progress> progress;
  OptionalBox<std::string> checkpoint;
  Boxed<JobLinks> links;  // groups, dependencies, routing: unset for most jobs
  bool operator==(const JobRecord&) const = default;
};

// One row of a group commit: a new job, the new values of an existing one, or its removal.
struct RecordWrite {
  bool insert = false;
  JobRecord job;
  bool remove = false;  // only job.seq matters
  bool operator==(const RecordWrite&) const = default;
};

// ---- client -> broker ----

// A job to create, as SUBMIT and each member of GROUP_SUBMIT describe it.
struct JobSpec {
  std::string type;
  std::string payload;
  std::optional<std::uint32_t> priority;
  std::optional<std::uint64_t> timeout_ms;
  std::optional<std::uint32_t> max_attempts;
  std::optional<std::uint64_t> backoff_ms;
  std::optional<std::uint64_t> max_backoff_ms;
  std::optional<std::uint64_t> run_at;
  std::optional<std::uint64_t> delay_ms;
  std::vector<std::string> after;  // "j-N" ids, or "#N" for a member of the same group
  std::optional<DependencyPolicy> after_policy;
  std::optional<std::string> hash_key;
  Labels required;
  std::optional<std::string> zone;
  std::optional<Locality> locality;
  std::optional<std::uint32_t> max_rtt_ms;
  bool operator==(const JobSpec&) const = default;
};

// SUBMIT: one job, and the idempotency key. On the wire the job's fields sit beside rid and key
// in one flat map (section 4.3 of PROTOCOL.md).
struct SubmitRequest {
  std::uint64_t rid = 0;
  JobSpec job;
  std::optional<std::string> key;
  bool batch_ack = false;  // its ACCEPTED may come in a batched reply (rids, ids)
  bool operator==(const SubmitRequest&) const = default;
};

struct GroupSubmitRequest {
  std::uint64_t rid = 0;
  std::vector<JobSpec> jobs;
  std::optional<JobSpec> follow_up;
  std::optional<DependencyPolicy> follow_up_policy;
  std::optional<std::string> key;
  bool operator==(const GroupSubmitRequest&) const = default;
};

struct DrainRequest {
  std::uint64_t rid = 0;
  std::string worker;
  bool drain = true;
  bool operator==(const DrainRequest&) const = default;
};

struct GroupStatusRequest {
  std::uint64_t rid = 0;
  std::string id;
  bool members = true;
  bool operator==(const GroupStatusRequest&) const = default;
};

struct StatusRequest {
  std::uint64_t rid = 0;
  std::string id;
  bool operator==(const StatusRequest&) const = default;
};

struct ListRequest {
  std::uint64_t rid = 0;
  std::optional<JobState> state;
  std::optional<std::string> type;
  std::optional<std::uint32_t> limit;
  bool operator==(const ListRequest&) const = default;
};

struct CancelRequest {
  std::uint64_t rid = 0;
  std::string id;
  bool operator==(const CancelRequest&) const = default;
};

struct RetryRequest {
  std::uint64_t rid = 0;
  std::string id;
  bool operator==(const RetryRequest&) const = default;
};

struct ClusterRequest {
  std::uint64_t rid = 0;
  bool operator==(const ClusterRequest&) const = default;
};

struct WatchRequest {
  std::uint64_t rid = 0;
  std::string id;
  bool operator==(const WatchRequest&) const = default;
};

struct PingRequest {
  std::uint64_t rid = 0;
  bool operator==(const PingRequest&) const = default;
};

using ClientRequest = std::variant<SubmitRequest, StatusRequest, ListRequest, CancelRequest,
                                   RetryRequest, ClusterRequest, WatchRequest, PingRequest,
                                   GroupSubmitRequest, GroupStatusRequest, DrainRequest>;

ClientCommand CommandOf(const ClientRequest& request);
std::uint64_t RidOf(const ClientRequest& request);

// ---- broker -> client ----

// One struct for every reply; which optional fields are set depends on the command
// (protocol.yaml lists them per command).
struct ClientReply {
  ClientCommand command = ClientCommand::kPing;
  std::uint64_t rid = 0;
  StatusCode status = StatusCode::kOk;
  std::string message;  // set when status is not 2xx
  std::optional<std::string> id;
  std::optional<bool> existing;
  std::optional<JobInfo> job;
  std::optional<std::vector<JobInfo>> jobs;
  std::optional<ClusterInfo> cluster;
  std::optional<std::string> role;
  std::optional<std::uint64_t> epoch;
  std::optional<std::vector<std::string>> ids;
  std::optional<std::vector<std::uint64_t>> rids;  // a batched ACCEPTED: the SUBMITs it answers
  std::optional<std::string> follow_up_id;
  std::optional<GroupInfo> group;
  std::optional<std::uint64_t> moved;
  bool operator==(const ClientReply&) const = default;
};

// ---- worker <-> broker ----

struct Ready {
  std::string worker_id;
  std::vector<std::string> types;
  std::uint32_t capacity = 1;
  Labels labels;
  std::uint32_t prefetch = 0;
  bool operator==(const Ready&) const = default;
};

struct Welcome {
  std::uint64_t heartbeat_ms = 0;
  std::uint32_t liveness = 0;
  std::uint64_t epoch = 0;
  std::optional<std::uint64_t> checkpoint_interval_ms;
  bool operator==(const Welcome&) const = default;
};

struct JobDispatch {
  std::string id;
  std::string type;
  std::string payload;
  std::uint64_t lease = 0;
  std::uint32_t attempt = 0;
  std::uint64_t timeout_ms = 0;
  std::uint32_t priority = 0;
  std::optional<std::string> checkpoint;
  std::vector<Input> inputs;
  bool operator==(const JobDispatch&) const = default;
};

struct ProgressReport {
  std::string id;
  std::uint64_t lease = 0;
  std::optional<std::uint32_t> percent;
  std::optional<std::string> message;
  std::optional<std::string> checkpoint;
  bool operator==(const ProgressReport&) const = default;
};

struct Done {
  std::string id;
  std::uint64_t lease = 0;
  std::string result;
  bool operator==(const Done&) const = default;
};

struct Failed {
  std::string id;
  std::uint64_t lease = 0;
  std::string error;
  bool permanent = false;
  bool operator==(const Failed&) const = default;
};

struct CancelJob {
  std::string id;
  std::uint64_t lease = 0;
  std::string reason;
  bool operator==(const CancelJob&) const = default;
};

struct Heartbeat {
  std::optional<std::uint64_t> check;  // a health check, or the answer to one
  bool operator==(const Heartbeat&) const = default;
};

struct Disconnect {
  std::string reason;
  bool operator==(const Disconnect&) const = default;
};

// STARTED, RECALL and RETURNED: one job of a worker with prefetch.
struct Started {
  std::string id;
  std::uint64_t lease = 0;
  bool operator==(const Started&) const = default;
};

struct Recall {
  std::string id;
  std::uint64_t lease = 0;
  bool operator==(const Recall&) const = default;
};

struct Returned {
  std::string id;
  std::uint64_t lease = 0;
  bool operator==(const Returned&) const = default;
};

using WorkerMessage = std::variant<Ready, Welcome, JobDispatch, ProgressReport, Done, Failed,
                                   CancelJob, Heartbeat, Disconnect, Started, Recall, Returned>;

WorkerCommand CommandOf(const WorkerMessage& message);

// ---- broker <-> broker ----

struct PeerState {
  std::string state;
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;
  bool primary = false;
  bool operator==(const PeerState&) const = default;
};

struct PeerHello {
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;
  bool operator==(const PeerHello&) const = default;
};

struct PeerSnapshot {
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;
  bool first = false;
  bool last = false;
  std::vector<JobRecord> jobs;
  bool operator==(const PeerSnapshot&) const = default;
};

struct PeerBatch {
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;
  std::vector<RecordWrite> writes;
  bool operator==(const PeerBatch&) const = default;
};

struct PeerAck {
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;
  bool operator==(const PeerAck&) const = default;
};

using PeerMessage = std::variant<PeerState, PeerHello, PeerSnapshot, PeerBatch, PeerAck>;

PeerCommand CommandOf(const PeerMessage& message);

// ---- frames ----

// A message as it goes on the wire, after any routing envelope: header, command byte, body.
struct Frames {
  std::string_view header;
  std::uint8_t command = 0;
  std::string body;  // msgpack map
};

Frames Encode(const ClientRequest& request);
Frames Encode(const ClientReply& reply);
Frames Encode(const WorkerMessage& message);
Frames Encode(const PeerMessage& message);

// Limits applied while decoding a body (msgpack-c's defaults are unlimited).
struct DecodeLimits {
  std::size_t max_body_bytes = 4u << 20;
  std::size_t max_array = 10000;
  std::size_t max_map = 1024;
  std::size_t max_depth = 8;
};

enum class Dialog : std::uint8_t { kClient, kWorker, kPeer };

struct DecodeError {
  Dialog dialog = Dialog::kClient;
  std::uint8_t command = 0;  // as received (0 if the frame was missing)
  std::uint64_t rid = 0;     // 0 if it could not be read
  StatusCode status = StatusCode::kBadRequest;
  std::string message;
  // Whether a reply can be routed and understood: false for frames that do not even carry a
  // known protocol header, which the broker drops and counts.
  bool answerable = false;
};

// What reached a broker: a client request, a worker message or a message from its peer broker.
using Inbound = std::variant<ClientRequest, WorkerMessage, PeerMessage>;

// Decodes the frames after the routing envelope (and after any empty delimiter, which the
// caller strips and remembers). `frames` must hold header, command and body.
std::expected<Inbound, DecodeError> DecodeInbound(std::span<const std::string_view> frames,
                                                  const DecodeLimits& limits = {});

// For a client reading replies and a worker reading broker messages.
Result<ClientReply> DecodeClientReply(std::span<const std::string_view> frames,
                                      const DecodeLimits& limits = {});
Result<WorkerMessage> DecodeWorkerMessage(std::span<const std::string_view> frames,
                                          const DecodeLimits& limits = {});
// For the replication socket of the active broker (it reads ACKs).
Result<PeerMessage> DecodePeerMessage(std::span<const std::string_view> frames,
                                      const DecodeLimits& limits = {});

// ---- names ----

std::string_view Name(JobState state);
std::optional<JobState> ParseJobState(std::string_view name);
constexpr bool IsFinal(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kDead || state == JobState::kCancelled;
}
// The states a job can still leave, in protocol.yaml's order.
inline constexpr std::size_t kUnfinishedStateCount =
    std::ranges::count_if(kJobStates, [](const auto& state) { return !IsFinal(state.code); });
inline constexpr std::array<JobState, kUnfinishedStateCount> kUnfinishedStates = [] {
  std::array<JobState, kUnfinishedStateCount> states{};
  std::size_t i = 0;
  for (const auto& state : kJobStates) {
    if (!IsFinal(state.code)) states[i++] = state.code;
  }
  return states;
}();
// The count for `state` in a map of state name to count (GroupInfo::counts, ClusterInfo::jobs);
// 0 when it is absent.
std::uint64_t CountOf(const std::map<std::string, std::uint64_t>& counts, JobState state);
std::string_view Name(DependencyPolicy policy);
std::optional<DependencyPolicy> ParseDependencyPolicy(std::string_view name);
std::string_view Name(Locality locality);
std::optional<Locality> ParseLocality(std::string_view name);
std::string_view Name(StatusCode status);
std::string_view Name(ClientCommand command);
std::string_view Name(WorkerCommand command);
std::string_view Name(PeerCommand command);
// "low", "normal", "high", "critical" or a number 0-9.
std::optional<std::uint32_t> ParsePriority(std::string_view text);
// "critical" for 9, "7" for 7 when no name has it.
std::string PriorityName(std::uint32_t priority);

}  // namespace claw::wire
