// Encoding writes each body in two passes over the same field list: one counts the fields for
// the msgpack map header, one packs them. Decoding scans the unpacked map for each field it wants
// (bodies have a dozen fields at most), so no std::map is built per message.
#include "schema/codec.hpp"

#include <algorithm>
#include <limits>
#include <msgpack.hpp>
#include <type_traits>

namespace claw::wire {
namespace {

// msgpack-c packs into any type with write(data, size); this one appends to the body string
// itself, so a body costs one allocation and no copy.
struct StringSink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};
using Packer = msgpack::packer<StringSink>;

// A byte string to be written as msgpack bin rather than str.
struct Bin {
  std::string_view bytes;
};

void Put(Packer& pk, std::uint64_t v) { pk.pack_uint64(v); }
void Put(Packer& pk, std::uint32_t v) { pk.pack_uint32(v); }
void Put(Packer& pk, std::int64_t v) { pk.pack_int64(v); }
void Put(Packer& pk, bool v) { v ? pk.pack_true() : pk.pack_false(); }
void Put(Packer& pk, std::string_view v) {
  pk.pack_str(static_cast<std::uint32_t>(v.size()));
  pk.pack_str_body(v.data(), static_cast<std::uint32_t>(v.size()));
}
void Put(Packer& pk, const std::string& v) { Put(pk, std::string_view(v)); }
void Put(Packer& pk, Bin v) {
  pk.pack_bin(static_cast<std::uint32_t>(v.bytes.size()));
  pk.pack_bin_body(v.bytes.data(), static_cast<std::uint32_t>(v.bytes.size()));
}
void Put(Packer& pk, JobState v) { Put(pk, Name(v)); }
void Put(Packer& pk, DependencyPolicy v) { Put(pk, Name(v)); }
void Put(Packer& pk, Locality v) { Put(pk, Name(v)); }
void Put(Packer& pk, const std::vector<std::string>& v) {
  pk.pack_array(static_cast<std::uint32_t>(v.size()));
  for (const auto& s : v) Put(pk, s);
}
template <typename V>
void Put(Packer& pk, const std::map<std::string, V>& m) {
  pk.pack_map(static_cast<std::uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    Put(pk, k);
    Put(pk, v);
  }
}

void Put(Packer& pk, const Progress& v);
void Put(Packer& pk, const JobInfo& v);
void Put(Packer& pk, const WorkerInfo& v);
void Put(Packer& pk, const NodeInfo& v);
void Put(Packer& pk, const QueueInfo& v);
void Put(Packer& pk, const ClusterInfo& v);
void Put(Packer& pk, const PairInfo& v);
void Put(Packer& pk, const JobRecord& v);
void Put(Packer& pk, const RecordWrite& v);
void Put(Packer& pk, const JobSpec& v);
void Put(Packer& pk, const Input& v);
void Put(Packer& pk, const GroupInfo& v);
template <typename T>
void Put(Packer& pk, const std::vector<T>& v);

// Field visitors: Count counts, Write packs "key, value".
struct Count {
  std::uint32_t n = 0;
  template <typename V>
  void operator()(std::string_view, const V&) {
    ++n;
  }
};

struct Write {
  Packer& pk;
  template <typename V>
  void operator()(std::string_view key, const V& value) {
    Put(pk, key);
    Put(pk, value);
  }
};

template <typename T>
void PutObject(Packer& pk, const T& value);

void Put(Packer& pk, const Progress& v) { PutObject(pk, v); }
void Put(Packer& pk, const JobInfo& v) { PutObject(pk, v); }
void Put(Packer& pk, const WorkerInfo& v) { PutObject(pk, v); }
void Put(Packer& pk, const NodeInfo& v) { PutObject(pk, v); }
void Put(Packer& pk, const QueueInfo& v) { PutObject(pk, v); }
void Put(Packer& pk, const ClusterInfo& v) { PutObject(pk, v); }
void Put(Packer& pk, const PairInfo& v) { PutObject(pk, v); }
void Put(Packer& pk, const JobRecord& v) { PutObject(pk, v); }
void Put(Packer& pk, const RecordWrite& v) { PutObject(pk, v); }
void Put(Packer& pk, const JobSpec& v) { PutObject(pk, v); }
void Put(Packer& pk, const Input& v) { PutObject(pk, v); }
void Put(Packer& pk, const GroupInfo& v) { PutObject(pk, v); }
template <typename T>
void Put(Packer& pk, const std::vector<T>& v) {
  pk.pack_array(static_cast<std::uint32_t>(v.size()));
  for (const auto& item : v) Put(pk, item);
}

// Each Fields() lists a struct's wire fields once; both visitors walk that list.
template <typename F>
void Fields(F& f, const Progress& v) {
  if (v.percent) f(field::kPercent, *v.percent);
  if (!v.message.empty()) f(field::kMessage, v.message);
}

template <typename F>
void Fields(F& f, const JobInfo& v) {
  f(field::kId, v.id);
  f(field::kType, v.type);
  f(field::kState, v.state);
  f(field::kPriority, v.priority);
  f(field::kAttempts, v.attempts);
  f(field::kMaxAttempts, v.max_attempts);
  f(field::kTimeoutMs, v.timeout_ms);
  f(field::kBackoffMs, v.backoff_ms);
  f(field::kMaxBackoffMs, v.max_backoff_ms);
  if (!v.key.empty()) f(field::kKey, v.key);
  f(field::kCreatedAt, v.created_at);
  f(field::kUpdatedAt, v.updated_at);
  if (v.run_at) f(field::kRunAt, *v.run_at);
  if (!v.worker.empty()) f(field::kWorker, v.worker);
  if (!v.error.empty()) f(field::kError, v.error);
  if (v.result) f(field::kResult, Bin{*v.result});
  if (v.payload) f(field::kPayload, Bin{*v.payload});
  if (v.progress) f(field::kProgress, *v.progress);
  if (!v.group.empty()) f(field::kGroup, v.group);
  if (v.follow_up) f(field::kFollowUp, v.follow_up);
  if (!v.after.empty()) f(field::kAfter, v.after);
  if (v.after_policy) f(field::kAfterPolicy, *v.after_policy);
  if (!v.hash_key.empty()) f(field::kHashKey, v.hash_key);
  if (!v.required.empty()) f(field::kRequires, v.required);
  if (!v.zone.empty()) f(field::kZone, v.zone);
  if (v.locality) f(field::kLocality, *v.locality);
  if (v.max_rtt_ms != 0) f(field::kMaxRttMs, v.max_rtt_ms);
  if (!v.waiting_reason.empty()) f(field::kWaitingReason, v.waiting_reason);
}

template <typename F>
void Fields(F& f, const Input& v) {
  f(field::kId, v.id);
  f(field::kState, v.state);
  if (v.result) f(field::kResult, Bin{*v.result});
  if (!v.error.empty()) f(field::kError, v.error);
}

template <typename F>
void Fields(F& f, const GroupInfo& v) {
  f(field::kId, v.id);
  f(field::kTotal, v.total);
  f(field::kCounts, v.counts);
  f(field::kSettled, v.settled);
  if (v.members) f(field::kMembers, *v.members);
  if (v.follow_up) f(field::kFollowUp, *v.follow_up);
}

template <typename F>
void Fields(F& f, const WorkerInfo& v) {
  f(field::kId, v.id);
  f(field::kTypes, v.types);
  f(field::kCapacity, v.capacity);
  f(field::kInUse, v.in_use);
  if (v.prefetch) f(field::kPrefetch, v.prefetch);
  if (v.waiting) f(field::kWaiting, v.waiting);
  f(field::kLabels, v.labels);
  f(field::kLastSeenMs, v.last_seen_ms);
  f(field::kBreaker, v.breaker);
  f(field::kHealth, v.health);
  if (v.rtt_ms) f(field::kRttMs, *v.rtt_ms);
  f(field::kDraining, v.draining);
}

template <typename F>
void Fields(F& f, const NodeInfo& v) {
  f(field::kId, v.id);
  f(field::kHost, v.host);
  f(field::kRole, v.role);
  if (v.capacity) f(field::kCapacity, *v.capacity);
  if (!v.zone.empty()) f(field::kZone, v.zone);
  if (v.up) f(field::kUp, *v.up);
}

template <typename F>
void Fields(F& f, const QueueInfo& v) {
  f(field::kType, v.type);
  f(field::kPriority, v.priority);
  f(field::kDepth, v.depth);
}

template <typename F>
void Fields(F& f, const ClusterInfo& v) {
  f(field::kRole, v.role);
  f(field::kStrategy, v.strategy);
  f(field::kEpoch, v.epoch);
  f(field::kWorkersTotal, v.workers_total);
  f(field::kWorkersActive, v.workers_active);
  f(field::kCapacityTotal, v.capacity_total);
  f(field::kCapacityInUse, v.capacity_in_use);
  f(field::kJobs, v.jobs);
  f(field::kQueues, v.queues);
  f(field::kWorkers, v.workers);
  f(field::kMalformed, v.malformed);
  if (v.pair) f(field::kPair, *v.pair);
  if (!v.name.empty()) f(field::kName, v.name);
  if (!v.nodes.empty()) f(field::kNodes, v.nodes);
}

template <typename F>
void Fields(F& f, const PairInfo& v) {
  f(field::kState, v.state);
  f(field::kPeerState, v.peer_state);
  f(field::kPeer, v.peer);
  if (v.peer_epoch) f(field::kPeerEpoch, *v.peer_epoch);
  if (v.peer_heard_ms) f(field::kPeerHeardMs, *v.peer_heard_ms);
  f(field::kReplication, v.replication);
  f(field::kReplicaInSync, v.replica_in_sync);
  f(field::kPosition, v.position);
  f(field::kLag, v.lag);
}

template <typename F>
void Fields(F& f, const JobRecord& v) {
  f(field::kSeq, v.seq);
  f(field::kType, v.type);
  f(field::kPayload, Bin{v.payload});
  f(field::kPriority, v.priority);
  f(field::kState, v.state);
  f(field::kTimeoutMs, v.timeout_ms);
  f(field::kMaxAttempts, v.max_attempts);
  f(field::kBackoffMs, v.backoff_ms);
  f(field::kMaxBackoffMs, v.max_backoff_ms);
  if (!v.key.empty()) f(field::kKey, v.key);
  f(field::kAttempts, v.attempts);
  f(field::kCreatedAt, v.created_at);
  f(field::kUpdatedAt, v.updated_at);
  f(field::kRunAt, v.run_at);
  if (!v.worker.empty()) f(field::kWorker, v.worker);
  if (!v.error.empty()) f(field::kError, v.error);
  if (v.result) f(field::kResult, Bin{*v.result});
  if (v.progress) f(field::kProgress, *v.progress);
  if (v.checkpoint) f(field::kCheckpoint, Bin{*v.checkpoint});
  const JobLinks& links = v.links.value();
  if (links.group != 0) f(field::kGroup, links.group);
  if (links.follow_up) f(field::kFollowUp, links.follow_up);
  if (!links.after.empty()) {
    f(field::kAfter, links.after);
    f(field::kAfterPolicy, links.after_policy);
  }
  if (!links.hash_key.empty()) f(field::kHashKey, links.hash_key);
  if (!links.required.empty()) f(field::kRequires, links.required);
  if (!links.zone.empty()) f(field::kZone, links.zone);
  if (links.locality) f(field::kLocality, *links.locality);
  if (links.max_rtt_ms != 0) f(field::kMaxRttMs, links.max_rtt_ms);
}

template <typename F>
void Fields(F& f, const RecordWrite& v) {
  f(field::kInsert, v.insert);
  f(field::kRemove, v.remove);
  f(field::kJob, v.job);
}

template <typename F>
void Fields(F& f, const PeerState& v) {
  f(field::kState, v.state);
  f(field::kEpoch, v.epoch);
  f(field::kPosition, v.position);
  f(field::kPrimary, v.primary);
}

template <typename F, typename T>
requires(std::is_same_v<T, PeerHello> || std::is_same_v<T, PeerAck>) void Fields(F& f, const T& v) {
  f(field::kEpoch, v.epoch);
  f(field::kPosition, v.position);
}

template <typename F>
void Fields(F& f, const PeerSnapshot& v) {
  f(field::kEpoch, v.epoch);
  f(field::kPosition, v.position);
  f(field::kFirst, v.first);
  f(field::kLast, v.last);
  f(field::kJobs, v.jobs);
}

template <typename F>
void Fields(F& f, const PeerBatch& v) {
  f(field::kEpoch, v.epoch);
  f(field::kPosition, v.position);
  f(field::kWrites, v.writes);
}

// The fields that describe a job, shared by SUBMIT and GROUP_SUBMIT's job specs.
template <typename F>
void Fields(F& f, const JobSpec& v) {
  f(field::kType, v.type);
  f(field::kPayload, Bin{v.payload});
  if (v.priority) f(field::kPriority, *v.priority);
  if (v.timeout_ms) f(field::kTimeoutMs, *v.timeout_ms);
  if (v.max_attempts) f(field::kMaxAttempts, *v.max_attempts);
  if (v.backoff_ms) f(field::kBackoffMs, *v.backoff_ms);
  if (v.max_backoff_ms) f(field::kMaxBackoffMs, *v.max_backoff_ms);
  if (v.run_at) f(field::kRunAt, *v.run_at);
  if (v.delay_ms) f(field::kDelayMs, *v.delay_ms);
  if (!v.after.empty()) f(field::kAfter, v.after);
  if (v.after_policy) f(field::kAfterPolicy, *v.after_policy);
  if (v.hash_key) f(field::kHashKey, *v.hash_key);
  if (!v.required.empty()) f(field::kRequires, v.required);
  if (v.zone) f(field::kZone, *v.zone);
  if (v.locality) f(field::kLocality, *v.locality);
  if (v.max_rtt_ms) f(field::kMaxRttMs, *v.max_rtt_ms);
}

template <typename F>
void Fields(F& f, const SubmitRequest& v) {
  f(field::kRid, v.rid);
  Fields(f, v.job);
  if (v.key) f(field::kKey, *v.key);
  if (v.batch_ack) f(field::kBatchAck, v.batch_ack);
}

template <typename F>
void Fields(F& f, const GroupSubmitRequest& v) {
  f(field::kRid, v.rid);
  f(field::kJobs, v.jobs);
  if (v.follow_up) f(field::kFollowUp, *v.follow_up);
  if (v.follow_up_policy) f(field::kFollowUpPolicy, *v.follow_up_policy);
  if (v.key) f(field::kKey, *v.key);
}

template <typename F>
void Fields(F& f, const DrainRequest& v) {
  f(field::kRid, v.rid);
  f(field::kWorker, v.worker);
  if (!v.drain) f(field::kDrain, v.drain);
}

template <typename F>
void Fields(F& f, const GroupStatusRequest& v) {
  f(field::kRid, v.rid);
  f(field::kId, v.id);
  if (!v.members) f(field::kMembers, v.members);
}

template <typename F, typename T>
requires(std::is_same_v<T, StatusRequest> || std::is_same_v<T, CancelRequest> ||
         std::is_same_v<T, RetryRequest> ||
         std::is_same_v<T, WatchRequest>) void Fields(F& f, const T& v) {
  f(field::kRid, v.rid);
  f(field::kId, v.id);
}

template <typename F>
void Fields(F& f, const ListRequest& v) {
  f(field::kRid, v.rid);
  if (v.state) f(field::kState, *v.state);
  if (v.type) f(field::kType, *v.type);
  if (v.limit) f(field::kLimit, *v.limit);
}

template <typename F, typename T>
requires(std::is_same_v<T, ClusterRequest> ||
         std::is_same_v<T, PingRequest>) void Fields(F& f, const T& v) {
  f(field::kRid, v.rid);
}

template <typename F>
void Fields(F& f, const ClientReply& v) {
  f(field::kRid, v.rid);
  f(field::kStatus, static_cast<std::uint32_t>(v.status));
  if (!v.message.empty()) f(field::kMessage, v.message);
  if (v.id) f(field::kId, *v.id);
  if (v.existing) f(field::kExisting, *v.existing);
  if (v.job) f(field::kJob, *v.job);
  if (v.jobs) f(field::kJobs, *v.jobs);
  if (v.cluster) f(field::kCluster, *v.cluster);
  if (v.role) f(field::kRole, *v.role);
  if (v.epoch) f(field::kEpoch, *v.epoch);
  if (v.ids) f(field::kIds, *v.ids);
  if (v.rids) f(field::kRids, *v.rids);
  if (v.follow_up_id) f(field::kFollowUpId, *v.follow_up_id);
  if (v.group) f(field::kGroup, *v.group);
  if (v.moved) f(field::kMoved, *v.moved);
}

template <typename F>
void Fields(F& f, const Ready& v) {
  f(field::kWorkerId, v.worker_id);
  f(field::kTypes, v.types);
  f(field::kCapacity, v.capacity);
  f(field::kLabels, v.labels);
  if (v.prefetch) f(field::kPrefetch, v.prefetch);
}

template <typename F>
void Fields(F& f, const Welcome& v) {
  f(field::kHeartbeatMs, v.heartbeat_ms);
  f(field::kLiveness, v.liveness);
  f(field::kEpoch, v.epoch);
  if (v.checkpoint_interval_ms) f(field::kCheckpointIntervalMs, *v.checkpoint_interval_ms);
}

template <typename F>
void Fields(F& f, const JobDispatch& v) {
  f(field::kId, v.id);
  f(field::kType, v.type);
  f(field::kPayload, Bin{v.payload});
  f(field::kLease, v.lease);
  f(field::kAttempt, v.attempt);
  f(field::kTimeoutMs, v.timeout_ms);
  f(field::kPriority, v.priority);
  if (v.checkpoint) f(field::kCheckpoint, Bin{*v.checkpoint});
  if (!v.inputs.empty()) f(field::kInputs, v.inputs);
}

template <typename F>
void Fields(F& f, const ProgressReport& v) {
  f(field::kId, v.id);
  f(field::kLease, v.lease);
  if (v.percent) f(field::kPercent, *v.percent);
  if (v.message) f(field::kMessage, *v.message);
  if (v.checkpoint) f(field::kCheckpoint, Bin{*v.checkpoint});
}

template <typename F>
void Fields(F& f, const Done& v) {
  f(field::kId, v.id);
  f(field::kLease, v.lease);
  f(field::kResult, Bin{v.result});
}

template <typename F>
void Fields(F& f, const Failed& v) {
  f(field::kId, v.id);
  f(field::kLease, v.lease);
  f(field::kError, v.error);
  f(field::kPermanent, v.permanent);
}

template <typename F>
void Fields(F& f, const CancelJob& v) {
  f(field::kId, v.id);
  f(field::kLease, v.lease);
  if (!v.reason.empty()) f(field::kReason, v.reason);
}

template <typename F, typename T>
requires std::is_same_v<T, Started> || std::is_same_v<T, Recall> || std::is_same_v<T, Returned>
void Fields(F& f, const T& v) {
  f(field::kId, v.id);
  f(field::kLease, v.lease);
}

template <typename F>
void Fields(F& f, const Heartbeat& v) {
  if (v.check) f(field::kCheck, *v.check);
}

template <typename F>
void Fields(F& f, const Disconnect& v) {
  if (!v.reason.empty()) f(field::kReason, v.reason);
}

template <typename T>
void PutObject(Packer& pk, const T& value) {
  Count count;
  Fields(count, value);
  pk.pack_map(count.n);
  Write write{pk};
  Fields(write, value);
}

template <typename T>
std::string Body(const T& value) {
  std::string body;
  body.reserve(128);
  StringSink sink{body};
  Packer pk(sink);
  PutObject(pk, value);
  return body;
}

// ---- decoding ----

bool Read(const msgpack::object& o, std::uint64_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  out = o.via.u64;
  return true;
}
bool Read(const msgpack::object& o, std::uint32_t& out) {
  std::uint64_t v = 0;
  if (!Read(o, v) || v > std::numeric_limits<std::uint32_t>::max()) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}
bool Read(const msgpack::object& o, std::int64_t& out) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    out = o.via.i64;
    return true;
  }
  if (o.type != msgpack::type::POSITIVE_INTEGER ||
      o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return false;
  }
  out = static_cast<std::int64_t>(o.via.u64);
  return true;
}
bool Read(const msgpack::object& o, bool& out) {
  if (o.type != msgpack::type::BOOLEAN) return false;
  out = o.via.boolean;
  return true;
}
// str fields must be str; bin fields (see Bytes) also accept str.
bool Read(const msgpack::object& o, std::string& out) {
  if (o.type != msgpack::type::STR) return false;
  out.assign(o.via.str.ptr, o.via.str.size);
  return true;
}
struct Bytes {
  std::string& out;
};
bool Read(const msgpack::object& o, Bytes b) {
  if (o.type == msgpack::type::BIN) {
    b.out.assign(o.via.bin.ptr, o.via.bin.size);
    return true;
  }
  return Read(o, b.out);
}
// An enum sent as its name, parsed by `parse`.
template <typename Enum>
bool ReadName(const msgpack::object& o, Enum& out, std::optional<Enum> (*parse)(std::string_view)) {
  std::string name;
  if (!Read(o, name)) return false;
  const std::optional<Enum> value = parse(name);
  if (!value) return false;
  out = *value;
  return true;
}
bool Read(const msgpack::object& o, JobState& out) { return ReadName(o, out, ParseJobState); }
bool Read(const msgpack::object& o, DependencyPolicy& out) {
  return ReadName(o, out, ParseDependencyPolicy);
}
bool Read(const msgpack::object& o, Locality& out) { return ReadName(o, out, ParseLocality); }
bool Read(const msgpack::object& o, std::vector<std::string>& out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.clear();
  out.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    std::string s;
    if (!Read(o.via.array.ptr[i], s)) return false;
    out.push_back(std::move(s));
  }
  return true;
}
template <typename V>
bool Read(const msgpack::object& o, std::map<std::string, V>& out) {
  if (o.type != msgpack::type::MAP) return false;
  out.clear();
  for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
    std::string k;
    V v{};
    if (!Read(o.via.map.ptr[i].key, k) || !Read(o.via.map.ptr[i].val, v)) return false;
    out[std::move(k)] = std::move(v);
  }
  return true;
}

// Reads named fields out of one msgpack map, remembering the first problem.
class Reader {
 public:
  Reader(const msgpack::object& map, std::string_view where) : map_(map), where_(where) {
    if (map.type != msgpack::type::MAP) {
      error_ = std::string(where) + ": expected a msgpack map";
      return;
    }
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
      const auto& k = map.via.map.ptr[i].key;
      if (k.type == msgpack::type::STR) present_ |= KeyBit({k.via.str.ptr, k.via.str.size});
    }
  }

  template <typename T>
  void Req(std::string_view key, T& out) {
    Get(key, out, true);
  }
  template <typename Optional>
  void Opt(std::string_view key, Optional& out) {
    typename Optional::value_type value{};
    if (Get(key, value, false)) out = std::move(value);
  }
  template <typename T>
  void OptPlain(std::string_view key, T& out) {
    Get(key, out, false);
  }
  void ReqBin(std::string_view key, std::string& out) { Get(key, Bytes{out}, true); }
  void OptBin(std::string_view key, std::string& out) { Get(key, Bytes{out}, false); }
  template <typename Optional>
  requires std::is_same_v<typename Optional::value_type, std::string>
  void OptBin(std::string_view key, Optional& out) {
    std::string value;
    if (Get(key, Bytes{value}, false)) out = std::move(value);
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void SetError(std::string e) {
    if (error_.empty()) error_ = std::move(e);
  }
  const msgpack::object* Find(std::string_view key) const {
    if ((present_ & KeyBit(key)) == 0) return nullptr;
    for (std::uint32_t i = 0; i < map_.via.map.size; ++i) {
      const auto& k = map_.via.map.ptr[i].key;
      if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key)
        return &map_.via.map.ptr[i].val;
    }
    return nullptr;
  }

 private:
  // A one-bit signature of a key: most fields a decoder asks for are absent, and the signatures of
  // the keys present (a 64-bit set) rule most of them out without a scan.
  static std::uint64_t KeyBit(std::string_view key) {
    if (key.empty()) return 1;
    const auto mix = key.size() * 31 + static_cast<unsigned char>(key.front()) +
                     static_cast<unsigned char>(key.back()) * 7;
    return std::uint64_t{1} << (mix & 63);
  }

  template <typename T>
  bool Get(std::string_view key, T&& out, bool required) {
    if (!ok()) return false;
    const msgpack::object* value = Find(key);
    if (value == nullptr || value->type == msgpack::type::NIL) {
      if (required) error_ = std::string(where_) + ": missing field '" + std::string(key) + "'";
      return false;
    }
    if (!ReadAny(*value, std::forward<T>(out))) {
      error_ = std::string(where_) + ": field '" + std::string(key) + "' has the wrong type";
      if constexpr (std::is_enum_v<std::remove_cvref_t<T>>) {
        if (value->type == msgpack::type::STR) {
          error_ = std::string(where_) + ": field '" + std::string(key) +
                   "' has an unknown value '" +
                   std::string(value->via.str.ptr, value->via.str.size) + "'";
        }
      }
      return false;
    }
    return true;
  }
  template <typename T>
  bool ReadAny(const msgpack::object& o, T&& out);

  const msgpack::object& map_;
  std::string_view where_;
  std::uint64_t present_ = 0;  // KeyBit of every key in the map
  std::string error_;
};

bool Read(const msgpack::object& o, JobRecord& out);
bool Read(const msgpack::object& o, RecordWrite& out);
bool Read(const msgpack::object& o, JobSpec& out);
bool Read(const msgpack::object& o, Input& out);
bool Read(const msgpack::object& o, GroupInfo& out);

bool Read(const msgpack::object& o, Progress& out) {
  Reader r(o, "progress");
  r.Opt(field::kPercent, out.percent);
  r.OptPlain(field::kMessage, out.message);
  return r.ok();
}

bool Read(const msgpack::object& o, JobInfo& out) {
  Reader r(o, "job");
  r.Req(field::kId, out.id);
  r.Req(field::kType, out.type);
  r.Req(field::kState, out.state);
  r.Req(field::kPriority, out.priority);
  r.Req(field::kAttempts, out.attempts);
  r.Req(field::kMaxAttempts, out.max_attempts);
  r.Req(field::kTimeoutMs, out.timeout_ms);
  r.Req(field::kBackoffMs, out.backoff_ms);
  r.Req(field::kMaxBackoffMs, out.max_backoff_ms);
  r.OptPlain(field::kKey, out.key);
  r.Req(field::kCreatedAt, out.created_at);
  r.Req(field::kUpdatedAt, out.updated_at);
  r.Opt(field::kRunAt, out.run_at);
  r.OptPlain(field::kWorker, out.worker);
  r.OptPlain(field::kError, out.error);
  r.OptBin(field::kResult, out.result);
  r.OptBin(field::kPayload, out.payload);
  r.Opt(field::kProgress, out.progress);
  r.OptPlain(field::kGroup, out.group);
  r.OptPlain(field::kFollowUp, out.follow_up);
  r.OptPlain(field::kAfter, out.after);
  r.Opt(field::kAfterPolicy, out.after_policy);
  r.OptPlain(field::kHashKey, out.hash_key);
  r.OptPlain(field::kRequires, out.required);
  r.OptPlain(field::kZone, out.zone);
  r.Opt(field::kLocality, out.locality);
  r.OptPlain(field::kMaxRttMs, out.max_rtt_ms);
  r.OptPlain(field::kWaitingReason, out.waiting_reason);
  return r.ok();
}

bool Read(const msgpack::object& o, Input& out) {
  Reader r(o, "input");
  r.Req(field::kId, out.id);
  r.Req(field::kState, out.state);
  r.OptBin(field::kResult, out.result);
  r.OptPlain(field::kError, out.error);
  return r.ok();
}

bool Read(const msgpack::object& o, WorkerInfo& out) {
  Reader r(o, "worker");
  r.Req(field::kId, out.id);
  r.Req(field::kTypes, out.types);
  r.Req(field::kCapacity, out.capacity);
  r.Req(field::kInUse, out.in_use);
  r.OptPlain(field::kPrefetch, out.prefetch);
  r.OptPlain(field::kWaiting, out.waiting);
  r.Req(field::kLabels, out.labels);
  r.Req(field::kLastSeenMs, out.last_seen_ms);
  r.Req(field::kBreaker, out.breaker);
  r.Req(field::kHealth, out.health);
  r.Opt(field::kRttMs, out.rtt_ms);
  r.Req(field::kDraining, out.draining);
  return r.ok();
}

bool Read(const msgpack::object& o, NodeInfo& out) {
  Reader r(o, "node");
  r.Req(field::kId, out.id);
  r.Req(field::kHost, out.host);
  r.Req(field::kRole, out.role);
  r.Opt(field::kCapacity, out.capacity);
  r.OptPlain(field::kZone, out.zone);
  r.Opt(field::kUp, out.up);
  return r.ok();
}

bool Read(const msgpack::object& o, QueueInfo& out) {
  Reader r(o, "queue");
  r.Req(field::kType, out.type);
  r.Req(field::kPriority, out.priority);
  r.Req(field::kDepth, out.depth);
  return r.ok();
}

template <typename T>
bool Read(const msgpack::object& o, std::vector<T>& out) requires(!std::is_same_v<T, std::string>) {
  if (o.type != msgpack::type::ARRAY) return false;
  out.clear();
  out.resize(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    if (!Read(o.via.array.ptr[i], out[i])) return false;
  }
  return true;
}

bool Read(const msgpack::object& o, PairInfo& out) {
  Reader r(o, "pair");
  r.Req(field::kState, out.state);
  r.Req(field::kPeerState, out.peer_state);
  r.Req(field::kPeer, out.peer);
  r.Opt(field::kPeerEpoch, out.peer_epoch);
  r.Opt(field::kPeerHeardMs, out.peer_heard_ms);
  r.Req(field::kReplication, out.replication);
  r.Req(field::kReplicaInSync, out.replica_in_sync);
  r.Req(field::kPosition, out.position);
  r.Req(field::kLag, out.lag);
  return r.ok();
}

bool Read(const msgpack::object& o, JobRecord& out) {
  Reader r(o, "job record");
  r.Req(field::kSeq, out.seq);
  r.Req(field::kType, out.type);
  r.ReqBin(field::kPayload, out.payload);
  r.Req(field::kPriority, out.priority);
  r.Req(field::kState, out.state);
  r.Req(field::kTimeoutMs, out.timeout_ms);
  r.Req(field::kMaxAttempts, out.max_attempts);
  r.Req(field::kBackoffMs, out.backoff_ms);
  r.Req(field::kMaxBackoffMs, out.max_backoff_ms);
  r.OptPlain(field::kKey, out.key);
  r.Req(field::kAttempts, out.attempts);
  r.Req(field::kCreatedAt, out.created_at);
  r.Req(field::kUpdatedAt, out.updated_at);
  r.Req(field::kRunAt, out.run_at);
  r.OptPlain(field::kWorker, out.worker);
  r.OptPlain(field::kError, out.error);
  r.OptBin(field::kResult, out.result);
  r.Opt(field::kProgress, out.progress);
  r.OptBin(field::kCheckpoint, out.checkpoint);
  JobLinks links;
  r.OptPlain(field::kGroup, links.group);
  r.OptPlain(field::kFollowUp, links.follow_up);
  r.OptPlain(field::kAfter, links.after);
  r.OptPlain(field::kAfterPolicy, links.after_policy);
  r.OptPlain(field::kHashKey, links.hash_key);
  r.OptPlain(field::kRequires, links.required);
  r.OptPlain(field::kZone, links.zone);
  r.Opt(field::kLocality, links.locality);
  r.OptPlain(field::kMaxRttMs, links.max_rtt_ms);
  if (!(links == JobLinks{})) out.links.edit() = std::move(links);
  return r.ok();
}

bool Read(const msgpack::object& o, RecordWrite& out) {
  Reader r(o, "write");
  r.Req(field::kInsert, out.insert);
  r.OptPlain(field::kRemove, out.remove);
  r.Req(field::kJob, out.job);
  return r.ok();
}

bool Read(const msgpack::object& o, ClusterInfo& out) {
  Reader r(o, "cluster");
  r.Req(field::kRole, out.role);
  r.Req(field::kStrategy, out.strategy);
  r.Req(field::kEpoch, out.epoch);
  r.Req(field::kWorkersTotal, out.workers_total);
  r.Req(field::kWorkersActive, out.workers_active);
  r.Req(field::kCapacityTotal, out.capacity_total);
  r.Req(field::kCapacityInUse, out.capacity_in_use);
  r.Req(field::kJobs, out.jobs);
  r.Req(field::kQueues, out.queues);
  r.Req(field::kWorkers, out.workers);
  r.Req(field::kMalformed, out.malformed);
  r.Opt(field::kPair, out.pair);
  r.OptPlain(field::kName, out.name);
  r.OptPlain(field::kNodes, out.nodes);
  return r.ok();
}

bool Read(const msgpack::object& o, GroupInfo& out) {
  Reader r(o, "group");
  r.Req(field::kId, out.id);
  r.Req(field::kTotal, out.total);
  r.Req(field::kCounts, out.counts);
  r.Req(field::kSettled, out.settled);
  r.Opt(field::kMembers, out.members);
  r.Opt(field::kFollowUp, out.follow_up);
  return r.ok();
}

// The fields Fields(JobSpec) writes.
void ReadSpec(Reader& r, JobSpec& out) {
  r.Req(field::kType, out.type);
  r.OptBin(field::kPayload, out.payload);
  r.Opt(field::kPriority, out.priority);
  r.Opt(field::kTimeoutMs, out.timeout_ms);
  r.Opt(field::kMaxAttempts, out.max_attempts);
  r.Opt(field::kBackoffMs, out.backoff_ms);
  r.Opt(field::kMaxBackoffMs, out.max_backoff_ms);
  r.Opt(field::kRunAt, out.run_at);
  r.Opt(field::kDelayMs, out.delay_ms);
  r.OptPlain(field::kAfter, out.after);
  r.Opt(field::kAfterPolicy, out.after_policy);
  r.Opt(field::kHashKey, out.hash_key);
  r.OptPlain(field::kRequires, out.required);
  r.Opt(field::kZone, out.zone);
  r.Opt(field::kLocality, out.locality);
  r.Opt(field::kMaxRttMs, out.max_rtt_ms);
}

bool Read(const msgpack::object& o, JobSpec& out) {
  Reader r(o, "job spec");
  ReadSpec(r, out);
  return r.ok();
}

template <typename T>
bool Reader::ReadAny(const msgpack::object& o, T&& out) {
  return Read(o, std::forward<T>(out));
}

// Unpacks one body under the limits.
// The unpacked strings point into body, and the map and array cells live in this thread's zone,
// which every call reuses. The object is valid while body is and until the next Unpack on the
// thread: each decoder copies what it needs before it returns.
Result<msgpack::object> Unpack(std::string_view body, const DecodeLimits& limits) {
  if (body.size() > limits.max_body_bytes) return Fail("body over the size limit");
  thread_local msgpack::zone zone;
  zone.clear();
  try {
    const msgpack::unpack_limit limit(limits.max_array, limits.max_map, body.size(), body.size(), 0,
                                      limits.max_depth);
    const auto in_place = [](msgpack::type::object_type, std::size_t, void*) { return true; };
    std::size_t offset = 0;
    msgpack::object object =
        msgpack::unpack(zone, body.data(), body.size(), offset, in_place, nullptr, limit);
    if (offset != body.size()) return Fail("trailing bytes after the msgpack body");
    if (object.type != msgpack::type::MAP) return Fail("the body is not a msgpack map");
    return object;
  } catch (const msgpack::unpack_error& e) {
    return Fail(std::string("bad msgpack: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Fail("bad msgpack: allocation failed");
  }
}

std::expected<ClientRequest, std::string> ReadClientRequest(ClientCommand command,
                                                            const msgpack::object& body) {
  auto finish = [](Reader& r, auto request) -> std::expected<ClientRequest, std::string> {
    if (!r.ok()) return std::unexpected(r.error());
    return ClientRequest{std::move(request)};
  };
  Reader r(body, Name(command));
  switch (command) {
    case ClientCommand::kSubmit: {
      SubmitRequest m;
      r.Req(field::kRid, m.rid);
      ReadSpec(r, m.job);
      r.Opt(field::kKey, m.key);
      r.OptPlain(field::kBatchAck, m.batch_ack);
      return finish(r, std::move(m));
    }
    case ClientCommand::kStatus: {
      StatusRequest m;
      r.Req(field::kRid, m.rid);
      r.Req(field::kId, m.id);
      return finish(r, std::move(m));
    }
    case ClientCommand::kList: {
      ListRequest m;
      r.Req(field::kRid, m.rid);
      if (const auto* s = r.Find(field::kState); s != nullptr && s->type != msgpack::type::NIL) {
        JobState state{};
        if (Read(*s, state)) {
          m.state = state;
        } else {
          r.SetError("LIST: field 'state' is not a job state");
        }
      }
      r.Opt(field::kType, m.type);
      r.Opt(field::kLimit, m.limit);
      return finish(r, std::move(m));
    }
    case ClientCommand::kCancel: {
      CancelRequest m;
      r.Req(field::kRid, m.rid);
      r.Req(field::kId, m.id);
      return finish(r, std::move(m));
    }
    case ClientCommand::kRetry: {
      RetryRequest m;
      r.Req(field::kRid, m.rid);
      r.Req(field::kId, m.id);
      return finish(r, std::move(m));
    }
    case ClientCommand::kCluster: {
      ClusterRequest m;
      r.Req(field::kRid, m.rid);
      return finish(r, m);
    }
    case ClientCommand::kWatch: {
      WatchRequest m;
      r.Req(field::kRid, m.rid);
      r.Req(field::kId, m.id);
      return finish(r, std::move(m));
    }
    case ClientCommand::kPing: {
      PingRequest m;
      r.Req(field::kRid, m.rid);
      return finish(r, m);
    }
    case ClientCommand::kGroupSubmit: {
      GroupSubmitRequest m;
      r.Req(field::kRid, m.rid);
      r.Req(field::kJobs, m.jobs);
      r.Opt(field::kFollowUp, m.follow_up);
      r.Opt(field::kFollowUpPolicy, m.follow_up_policy);
      r.Opt(field::kKey, m.key);
      return finish(r, std::move(m));
    }
    case ClientCommand::kDrain: {
      DrainRequest m;
      r.Req(field::kRid, m.rid);
      r.Req(field::kWorker, m.worker);
      r.OptPlain(field::kDrain, m.drain);
      return finish(r, std::move(m));
    }
    case ClientCommand::kGroupStatus: {
      GroupStatusRequest m;
      r.Req(field::kRid, m.rid);
      r.Req(field::kId, m.id);
      r.OptPlain(field::kMembers, m.members);
      return finish(r, std::move(m));
    }
  }
  return std::unexpected("unknown command");
}

// STARTED, RECALL, RETURNED: a job id and its lease.
template <typename T>
T ReadLeaseOf(Reader& r) {
  T m;
  r.Req(field::kId, m.id);
  r.Req(field::kLease, m.lease);
  return m;
}

std::expected<WorkerMessage, std::string> ReadWorkerMessage(WorkerCommand command,
                                                            const msgpack::object& body) {
  auto finish = [](Reader& r, auto message) -> std::expected<WorkerMessage, std::string> {
    if (!r.ok()) return std::unexpected(r.error());
    return WorkerMessage{std::move(message)};
  };
  Reader r(body, Name(command));
  switch (command) {
    case WorkerCommand::kReady: {
      Ready m;
      r.Req(field::kWorkerId, m.worker_id);
      r.Req(field::kTypes, m.types);
      r.OptPlain(field::kCapacity, m.capacity);
      r.OptPlain(field::kLabels, m.labels);
      r.OptPlain(field::kPrefetch, m.prefetch);
      return finish(r, std::move(m));
    }
    case WorkerCommand::kWelcome: {
      Welcome m;
      r.Req(field::kHeartbeatMs, m.heartbeat_ms);
      r.Req(field::kLiveness, m.liveness);
      r.Req(field::kEpoch, m.epoch);
      r.Opt(field::kCheckpointIntervalMs, m.checkpoint_interval_ms);
      return finish(r, m);
    }
    case WorkerCommand::kJob: {
      JobDispatch m;
      r.Req(field::kId, m.id);
      r.Req(field::kType, m.type);
      r.ReqBin(field::kPayload, m.payload);
      r.Req(field::kLease, m.lease);
      r.Req(field::kAttempt, m.attempt);
      r.Req(field::kTimeoutMs, m.timeout_ms);
      r.Req(field::kPriority, m.priority);
      r.OptBin(field::kCheckpoint, m.checkpoint);
      r.OptPlain(field::kInputs, m.inputs);
      return finish(r, std::move(m));
    }
    case WorkerCommand::kProgress: {
      ProgressReport m;
      r.Req(field::kId, m.id);
      r.Req(field::kLease, m.lease);
      r.Opt(field::kPercent, m.percent);
      r.Opt(field::kMessage, m.message);
      r.OptBin(field::kCheckpoint, m.checkpoint);
      return finish(r, std::move(m));
    }
    case WorkerCommand::kDone: {
      Done m;
      r.Req(field::kId, m.id);
      r.Req(field::kLease, m.lease);
      r.OptBin(field::kResult, m.result);
      return finish(r, std::move(m));
    }
    case WorkerCommand::kFail: {
      Failed m;
      r.Req(field::kId, m.id);
      r.Req(field::kLease, m.lease);
      r.OptPlain(field::kError, m.error);
      r.OptPlain(field::kPermanent, m.permanent);
      return finish(r, std::move(m));
    }
    case WorkerCommand::kCancel: {
      CancelJob m;
      r.Req(field::kId, m.id);
      r.Req(field::kLease, m.lease);
      r.OptPlain(field::kReason, m.reason);
      return finish(r, std::move(m));
    }
    case WorkerCommand::kHeartbeat: {
      Heartbeat m;
      r.Opt(field::kCheck, m.check);
      return finish(r, m);
    }
    case WorkerCommand::kDisconnect: {
      Disconnect m;
      r.OptPlain(field::kReason, m.reason);
      return finish(r, std::move(m));
    }
    case WorkerCommand::kStarted:
      return finish(r, ReadLeaseOf<Started>(r));
    case WorkerCommand::kRecall:
      return finish(r, ReadLeaseOf<Recall>(r));
    case WorkerCommand::kReturned:
      return finish(r, ReadLeaseOf<Returned>(r));
  }
  return std::unexpected("unknown command");
}

std::expected<PeerMessage, std::string> ReadPeerMessage(PeerCommand command,
                                                        const msgpack::object& body) {
  auto finish = [](Reader& r, auto message) -> std::expected<PeerMessage, std::string> {
    if (!r.ok()) return std::unexpected(r.error());
    return PeerMessage{std::move(message)};
  };
  Reader r(body, Name(command));
  switch (command) {
    case PeerCommand::kState: {
      PeerState m;
      r.Req(field::kState, m.state);
      r.Req(field::kEpoch, m.epoch);
      r.Req(field::kPosition, m.position);
      r.Req(field::kPrimary, m.primary);
      return finish(r, std::move(m));
    }
    case PeerCommand::kHello: {
      PeerHello m;
      r.Req(field::kEpoch, m.epoch);
      r.Req(field::kPosition, m.position);
      return finish(r, m);
    }
    case PeerCommand::kSnapshot: {
      PeerSnapshot m;
      r.Req(field::kEpoch, m.epoch);
      r.Req(field::kPosition, m.position);
      r.Req(field::kFirst, m.first);
      r.Req(field::kLast, m.last);
      r.Req(field::kJobs, m.jobs);
      return finish(r, std::move(m));
    }
    case PeerCommand::kBatch: {
      PeerBatch m;
      r.Req(field::kEpoch, m.epoch);
      r.Req(field::kPosition, m.position);
      r.Req(field::kWrites, m.writes);
      return finish(r, std::move(m));
    }
    case PeerCommand::kAck: {
      PeerAck m;
      r.Req(field::kEpoch, m.epoch);
      r.Req(field::kPosition, m.position);
      return finish(r, m);
    }
  }
  return std::unexpected("unknown command");
}

template <typename Code, std::size_t N>
std::optional<Code> FindCode(const std::array<CodeName<Code>, N>& table, std::uint8_t raw) {
  for (const auto& entry : table) {
    if (static_cast<std::uint8_t>(entry.code) == raw) return entry.code;
  }
  return std::nullopt;
}

template <typename Code, std::size_t N>
std::string_view FindName(const std::array<CodeName<Code>, N>& table, Code code) {
  for (const auto& entry : table) {
    if (entry.code == code) return entry.name;
  }
  return "UNKNOWN";
}

bool BrokerMaySend(WorkerCommand c) {
  return c == WorkerCommand::kWelcome || c == WorkerCommand::kJob || c == WorkerCommand::kCancel ||
         c == WorkerCommand::kHeartbeat || c == WorkerCommand::kDisconnect ||
         c == WorkerCommand::kRecall;
}

bool WorkerMaySend(WorkerCommand c) {
  return c == WorkerCommand::kReady || c == WorkerCommand::kProgress || c == WorkerCommand::kDone ||
         c == WorkerCommand::kFail || c == WorkerCommand::kHeartbeat ||
         c == WorkerCommand::kDisconnect || c == WorkerCommand::kStarted ||
         c == WorkerCommand::kReturned;
}

// The part of a header before its version digits: "CLAWC1" -> "CLAWC".
std::string_view HeaderFamily(std::string_view header) {
  while (!header.empty() && header.back() >= '0' && header.back() <= '9') header.remove_suffix(1);
  return header;
}

}  // namespace

ClientCommand CommandOf(const ClientRequest& request) {
  static constexpr std::array<ClientCommand, std::variant_size_v<ClientRequest>> kByIndex = {
      ClientCommand::kSubmit,      ClientCommand::kStatus, ClientCommand::kList,
      ClientCommand::kCancel,      ClientCommand::kRetry,  ClientCommand::kCluster,
      ClientCommand::kWatch,       ClientCommand::kPing,   ClientCommand::kGroupSubmit,
      ClientCommand::kGroupStatus, ClientCommand::kDrain};
  return kByIndex[request.index()];
}

std::uint64_t RidOf(const ClientRequest& request) {
  return std::visit([](const auto& r) { return r.rid; }, request);
}

WorkerCommand CommandOf(const WorkerMessage& message) {
  static constexpr std::array<WorkerCommand, std::variant_size_v<WorkerMessage>> kByIndex = {
      WorkerCommand::kReady,    WorkerCommand::kWelcome,   WorkerCommand::kJob,
      WorkerCommand::kProgress, WorkerCommand::kDone,      WorkerCommand::kFail,
      WorkerCommand::kCancel,   WorkerCommand::kHeartbeat, WorkerCommand::kDisconnect,
      WorkerCommand::kStarted,  WorkerCommand::kRecall,    WorkerCommand::kReturned};
  return kByIndex[message.index()];
}

Frames Encode(const ClientRequest& request) {
  return Frames{kClientHeader, static_cast<std::uint8_t>(CommandOf(request)),
                std::visit([](const auto& r) { return Body(r); }, request)};
}

Frames Encode(const ClientReply& reply) {
  return Frames{kClientHeader, static_cast<std::uint8_t>(reply.command), Body(reply)};
}

PeerCommand CommandOf(const PeerMessage& message) {
  static constexpr std::array<PeerCommand, std::variant_size_v<PeerMessage>> kByIndex = {
      PeerCommand::kState, PeerCommand::kHello, PeerCommand::kSnapshot, PeerCommand::kBatch,
      PeerCommand::kAck};
  return kByIndex[message.index()];
}

Frames Encode(const PeerMessage& message) {
  return Frames{kPeerHeader, static_cast<std::uint8_t>(CommandOf(message)),
                std::visit([](const auto& m) { return Body(m); }, message)};
}

Frames Encode(const WorkerMessage& message) {
  return Frames{kWorkerHeader, static_cast<std::uint8_t>(CommandOf(message)),
                std::visit([](const auto& m) { return Body(m); }, message)};
}

std::expected<Inbound, DecodeError> DecodeInbound(std::span<const std::string_view> frames,
                                                  const DecodeLimits& limits) {
  DecodeError err;
  if (frames.empty()) {
    err.message = "empty message";
    return std::unexpected(err);
  }
  const std::string_view header = frames[0];
  if (header == kClientHeader) {
    err.dialog = Dialog::kClient;
  } else if (header == kWorkerHeader) {
    err.dialog = Dialog::kWorker;
  } else if (header == kPeerHeader) {
    err.dialog = Dialog::kPeer;
  } else if (HeaderFamily(header) == HeaderFamily(kClientHeader) ||
             HeaderFamily(header) == HeaderFamily(kWorkerHeader)) {
    err.dialog =
        HeaderFamily(header) == HeaderFamily(kClientHeader) ? Dialog::kClient : Dialog::kWorker;
    err.status = StatusCode::kUnsupportedVersion;
    err.answerable = true;
    err.message = "unsupported protocol version '" + std::string(header) +
                  "'; this broker speaks " +
                  std::string(err.dialog == Dialog::kClient ? kClientHeader : kWorkerHeader);
    return std::unexpected(err);
  } else {
    err.message = "unknown protocol header";
    return std::unexpected(err);
  }
  err.answerable = true;
  if (frames.size() != 3 || frames[1].size() != 1) {
    if (frames.size() >= 2 && frames[1].size() == 1)
      err.command = static_cast<std::uint8_t>(frames[1][0]);
    err.message = frames.size() != 3
                      ? "expected 3 frames (header, one-byte command, body), got " +
                            std::to_string(frames.size())
                      : "the command frame must be 1 byte, got " + std::to_string(frames[1].size());
    return std::unexpected(err);
  }
  err.command = static_cast<std::uint8_t>(frames[1][0]);
  if (frames[2].size() > limits.max_body_bytes) {
    err.status = StatusCode::kTooLarge;
    err.message = "message body of " + std::to_string(frames[2].size()) +
                  " bytes is over the limit of " + std::to_string(limits.max_body_bytes);
    return std::unexpected(err);
  }
  auto unpacked = Unpack(frames[2], limits);
  if (!unpacked) {
    err.message = unpacked.error().message;
    return std::unexpected(err);
  }
  const msgpack::object& body = *unpacked;
  if (err.dialog == Dialog::kClient) {
    if (const auto* rid = Reader(body, "").Find(field::kRid); rid != nullptr) Read(*rid, err.rid);
    auto command = FindCode(kClientCommands, err.command);
    if (!command) {
      err.status = StatusCode::kUnknownCommand;
      err.message = "unknown client command " + std::to_string(err.command);
      return std::unexpected(err);
    }
    auto request = ReadClientRequest(*command, body);
    if (!request) {
      err.message = request.error();
      return std::unexpected(err);
    }
    return Inbound{std::move(*request)};
  }
  if (err.dialog == Dialog::kPeer) {
    auto command = FindCode(kPeerCommands, err.command);
    if (!command) {
      err.status = StatusCode::kUnknownCommand;
      err.message = "unknown peer command " + std::to_string(err.command);
      return std::unexpected(err);
    }
    auto message = ReadPeerMessage(*command, body);
    if (!message) {
      err.message = message.error();
      return std::unexpected(err);
    }
    return Inbound{std::move(*message)};
  }
  auto command = FindCode(kWorkerCommands, err.command);
  if (!command || !WorkerMaySend(*command)) {
    err.status = StatusCode::kUnknownCommand;
    err.message = "unknown worker command " + std::to_string(err.command);
    return std::unexpected(err);
  }
  auto message = ReadWorkerMessage(*command, body);
  if (!message) {
    err.message = message.error();
    return std::unexpected(err);
  }
  return Inbound{std::move(*message)};
}

Result<ClientReply> DecodeClientReply(std::span<const std::string_view> frames,
                                      const DecodeLimits& limits) {
  if (frames.size() != 3 || frames[0] != kClientHeader || frames[1].size() != 1)
    return Fail("not a Claw client reply");
  auto command = FindCode(kClientCommands, static_cast<std::uint8_t>(frames[1][0]));
  if (!command) return Fail("reply with an unknown command code");
  auto unpacked = Unpack(frames[2], limits);
  if (!unpacked) return std::unexpected(unpacked.error());
  ClientReply reply;
  reply.command = *command;
  Reader r(*unpacked, "reply");
  std::uint32_t status = 0;
  r.Req(field::kRid, reply.rid);
  r.Req(field::kStatus, status);
  if (status > 0xffff) r.SetError("reply: field 'status' is out of range");
  reply.status = static_cast<StatusCode>(status);
  r.OptPlain(field::kMessage, reply.message);
  r.Opt(field::kId, reply.id);
  r.Opt(field::kExisting, reply.existing);
  r.Opt(field::kJob, reply.job);
  r.Opt(field::kJobs, reply.jobs);
  r.Opt(field::kCluster, reply.cluster);
  r.Opt(field::kRole, reply.role);
  r.Opt(field::kEpoch, reply.epoch);
  r.Opt(field::kIds, reply.ids);
  r.Opt(field::kRids, reply.rids);
  r.Opt(field::kFollowUpId, reply.follow_up_id);
  r.Opt(field::kGroup, reply.group);
  r.Opt(field::kMoved, reply.moved);
  if (!r.ok()) return Fail(r.error());
  return reply;
}

Result<WorkerMessage> DecodeWorkerMessage(std::span<const std::string_view> frames,
                                          const DecodeLimits& limits) {
  if (frames.size() != 3 || frames[0] != kWorkerHeader || frames[1].size() != 1)
    return Fail("not a Claw worker message");
  auto command = FindCode(kWorkerCommands, static_cast<std::uint8_t>(frames[1][0]));
  if (!command || !BrokerMaySend(*command)) return Fail("unexpected worker command code");
  auto unpacked = Unpack(frames[2], limits);
  if (!unpacked) return std::unexpected(unpacked.error());
  auto message = ReadWorkerMessage(*command, *unpacked);
  if (!message) return Fail(message.error());
  return std::move(*message);
}

Result<PeerMessage> DecodePeerMessage(std::span<const std::string_view> frames,
                                      const DecodeLimits& limits) {
  if (frames.size() != 3 || frames[0] != kPeerHeader || frames[1].size() != 1)
    return Fail("not a Claw peer message");
  auto command = FindCode(kPeerCommands, static_cast<std::uint8_t>(frames[1][0]));
  if (!command) return Fail("unknown peer command code");
  auto unpacked = Unpack(frames[2], limits);
  if (!unpacked) return std::unexpected(unpacked.error());
  auto message = ReadPeerMessage(*command, *unpacked);
  if (!message) return Fail(message.error());
  return std::move(*message);
}

std::string_view Name(JobState state) { return FindName(kJobStates, state); }

std::optional<JobState> ParseJobState(std::string_view name) {
  for (const auto& entry : kJobStates) {
    if (entry.name == name) return entry.code;
  }
  return std::nullopt;
}

std::uint64_t CountOf(const std::map<std::string, std::uint64_t>& counts, JobState state) {
  const auto it = counts.find(std::string(Name(state)));
  return it == counts.end() ? 0 : it->second;
}

std::string_view Name(DependencyPolicy policy) { return FindName(kDependencyPolicies, policy); }

std::optional<DependencyPolicy> ParseDependencyPolicy(std::string_view name) {
  for (const auto& entry : kDependencyPolicies) {
    if (entry.name == name) return entry.code;
  }
  return std::nullopt;
}

std::string_view Name(Locality locality) { return FindName(kLocalities, locality); }

std::optional<Locality> ParseLocality(std::string_view name) {
  for (const auto& entry : kLocalities) {
    if (entry.name == name) return entry.code;
  }
  return std::nullopt;
}

std::string_view Name(StatusCode status) { return FindName(kStatusCodes, status); }
std::string_view Name(ClientCommand command) { return FindName(kClientCommands, command); }
std::string_view Name(WorkerCommand command) { return FindName(kWorkerCommands, command); }
std::string_view Name(PeerCommand command) { return FindName(kPeerCommands, command); }

std::optional<std::uint32_t> ParsePriority(std::string_view text) {
  for (const auto& entry : kPriorityNames) {
    if (entry.name == text) return static_cast<std::uint32_t>(entry.code);
  }
  if (text.size() == 1 && text[0] >= '0' && text[0] <= '9') {
    const auto value = static_cast<std::uint32_t>(text[0] - '0');
    if (value >= kPriorityMin && value <= kPriorityMax) return value;
  }
  return std::nullopt;
}

std::string PriorityName(std::uint32_t priority) {
  for (const auto& entry : kPriorityNames) {
    if (static_cast<std::uint32_t>(entry.code) == priority) return std::string(entry.name);
  }
  return std::to_string(priority);
}

}  // namespace claw::wire
