// The codec checked against schema/protocol.yaml, message by message.
//
// For every command that protocol.yaml declares (client requests, client replies and worker
// messages) there is a fully populated sample built in C++ below. Each sample is encoded and its
// msgpack body is read back as a generic map, which must hold exactly the fields protocol.yaml
// declares for that message, each with the declared msgpack type (nested objects recursively);
// then it is decoded by the function the receiving side uses and must equal the original.
// A command added to protocol.yaml without a sample here fails the test, and so does a field the
// codec forgets to write.
#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <msgpack.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "schema/codec.hpp"

namespace claw::wire {
namespace {

// ---- samples: every optional field set, values unlike the defaults ----

Progress SampleProgress() { return Progress{.percent = 40, .message = "resizing"}; }

JobInfo SampleJob(std::string id) {
  JobInfo job;
  job.id = std::move(id);
  job.type = "resize.image";
  job.state = JobState::kScheduled;
  job.priority = 7;
  job.attempts = 2;
  job.max_attempts = 3;
  job.timeout_ms = 60'000;
  job.backoff_ms = 500;
  job.max_backoff_ms = 10'000;
  job.key = "order-17";
  job.created_at = 1'700'000'000'000;
  job.updated_at = 1'700'000'005'000;
  job.run_at = 1'700'000'006'000;
  job.worker = "w-eu-1";
  job.error = "exit status 1";
  job.result = std::string("\x00\xffout", 5);
  job.payload = std::string("\x01\x02in", 4);
  job.progress = SampleProgress();
  job.group = "g-5";
  job.follow_up = true;
  job.after = {"j-3", "j-4"};
  job.after_policy = DependencyPolicy::kAllSettled;
  job.hash_key = "customer-9";
  job.required = {{"gpu", "true"}};
  job.zone = "eu-1";
  job.locality = Locality::kSameZone;
  job.max_rtt_ms = 20;
  job.waiting_reason = "needs gpu=true";
  return job;
}

JobSpec SampleSpec(std::string type) {
  return JobSpec{.type = std::move(type),
                 .payload = std::string("\x00map", 4),
                 .priority = 2,
                 .timeout_ms = 1'000,
                 .max_attempts = 4,
                 .backoff_ms = 20,
                 .max_backoff_ms = 400,
                 .run_at = 1'800'000'000'000,
                 .delay_ms = 10,
                 .after = {"#1", "j-3"},
                 .after_policy = DependencyPolicy::kAllSettled,
                 .hash_key = "customer-9",
                 .required = {{"gpu", "true"}},
                 .zone = "eu-1",
                 .locality = Locality::kCrossZone,
                 .max_rtt_ms = 20};
}

ClusterInfo SampleCluster() {
  ClusterInfo cluster;
  cluster.role = "standalone";
  cluster.strategy = "least-loaded";
  cluster.epoch = 3;
  cluster.workers_total = 2;
  cluster.workers_active = 1;
  cluster.capacity_total = 6;
  cluster.capacity_in_use = 1;
  std::uint64_t n = 10;
  for (const auto& state : kJobStates) cluster.jobs[std::string(state.name)] = n++;
  cluster.queues = {{"resize.image", 7, 12}, {"email", 5, 1}};
  cluster.workers = {{.id = "w-eu-1",
                      .types = {"email", "resize.image"},
                      .capacity = 4,
                      .in_use = 1,
                      .prefetch = 2,
                      .waiting = 1,
                      .labels = {{"gpu", "true"}, {"zone", "eu-1"}},
                      .last_seen_ms = 250,
                      .breaker = "half-open",
                      .health = "healthy",
                      .rtt_ms = 3,
                      .draining = true},
                     {.id = "w-eu-2",
                      .types = {"email"},
                      .capacity = 2,
                      .in_use = 0,
                      .prefetch = 1,
                      .waiting = 1,
                      .labels = {{"zone", "eu-2"}},
                      .last_seen_ms = 900,
                      .breaker = "open",
                      .health = "unhealthy",
                      .rtt_ms = 12,
                      .draining = false}};
  cluster.malformed = 2;
  cluster.pair = PairInfo{.state = "active",
                          .peer_state = "passive",
                          .peer = "tcp://10.0.0.2:5556",
                          .peer_epoch = 3,
                          .peer_heard_ms = 400,
                          .replication = "sync",
                          .replica_in_sync = true,
                          .position = 812,
                          .lag = 1};
  cluster.name = "crawl";
  cluster.nodes = {{.id = "w-eu-1",
                    .host = "10.0.1.11",
                    .role = "worker",
                    .capacity = 4,
                    .zone = "eu-1",
                    .up = true},
                   {.id = "c-1",
                    .host = "10.0.1.10",
                    .role = "coordinator",
                    .capacity = 1,
                    .zone = "eu-1",
                    .up = false}};
  return cluster;
}

JobRecord SampleRecord(std::uint64_t seq) {
  JobRecord job;
  job.seq = seq;
  job.type = "resize.image";
  job.payload = std::string("\x01\x00in", 4);
  job.priority = 7;
  job.state = JobState::kRunning;
  job.timeout_ms = 60'000;
  job.max_attempts = 3;
  job.backoff_ms = 500;
  job.max_backoff_ms = 10'000;
  job.key = "order-17";
  job.attempts = 2;
  job.created_at = 1'700'000'000'000;
  job.updated_at = 1'700'000'005'000;
  job.run_at = -5;  // signed: an int field may be negative
  job.worker = "w-eu-1";
  job.error = "exit status 1";
  job.result = std::string("\x00\xffout", 5);
  job.progress = SampleProgress();
  job.checkpoint = std::string("page=\x00", 6);
  job.links.edit().group = 5;
  job.links.edit().follow_up = true;
  job.links.edit().after = {3, 4};
  job.links.edit().after_policy = DependencyPolicy::kAllSettled;
  job.links.edit().hash_key = "customer-9";
  job.links.edit().required = {{"gpu", "true"}};
  job.links.edit().zone = "eu-1";
  job.links.edit().locality = Locality::kSameZone;
  job.links.edit().max_rtt_ms = 20;
  return job;
}

using RequestSample = std::function<ClientRequest()>;
using ReplySample = std::function<ClientReply()>;
using WorkerSample = std::function<WorkerMessage()>;

ClientRequest SubmitSample() {
  return SubmitRequest{.rid = 42,
                       .job = {.type = "resize.image",
                               .payload = std::string("\x00\x01png", 5),
                               .priority = 7,
                               .timeout_ms = 60'000,
                               .max_attempts = 3,
                               .backoff_ms = 500,
                               .max_backoff_ms = 10'000,
                               .run_at = 1'800'000'000'000,
                               .delay_ms = 30'000,
                               .after = {"j-3"},
                               .after_policy = DependencyPolicy::kAllSucceeded,
                               .hash_key = "customer-9",
                               .required = {{"gpu", "true"}, {"zone", "eu-1"}},
                               .zone = "eu-1",
                               .locality = Locality::kAny,
                               .max_rtt_ms = 50},
                       .key = "order-17",
                       .batch_ack = true};
}
ClientRequest StatusSample() { return StatusRequest{.rid = 43, .id = "j-7"}; }
ClientRequest ListSample() {
  return ListRequest{.rid = 44, .state = JobState::kRunning, .type = "email", .limit = 10};
}
ClientRequest CancelSample() { return CancelRequest{.rid = 45, .id = "j-8"}; }
ClientRequest RetrySample() { return RetryRequest{.rid = 46, .id = "j-9"}; }
ClientRequest ClusterSample() { return ClusterRequest{.rid = 47}; }
ClientRequest WatchSample() { return WatchRequest{.rid = 48, .id = "j-10"}; }
ClientRequest PingSample() { return PingRequest{.rid = 1ull << 40}; }
ClientRequest GroupSubmitSample() {
  return GroupSubmitRequest{.rid = 49,
                            .jobs = {SampleSpec("map"), SampleSpec("map")},
                            .follow_up = SampleSpec("reduce"),
                            .follow_up_policy = DependencyPolicy::kAllSucceeded,
                            .key = "wordcount-1"};
}
ClientRequest DrainSample() { return DrainRequest{.rid = 51, .worker = "w-eu-1", .drain = false}; }
ClientRequest GroupStatusSample() {
  return GroupStatusRequest{.rid = 50, .id = "g-5", .members = false};
}

const std::map<std::string, RequestSample>& RequestSamples() {
  static const std::map<std::string, RequestSample> samples = {
      {"SUBMIT", SubmitSample},
      {"STATUS", StatusSample},
      {"LIST", ListSample},
      {"CANCEL", CancelSample},
      {"RETRY", RetrySample},
      {"CLUSTER", ClusterSample},
      {"WATCH", WatchSample},
      {"PING", PingSample},
      {"GROUP_SUBMIT", GroupSubmitSample},
      {"GROUP_STATUS", GroupStatusSample},
      {"DRAIN", DrainSample},
  };
  return samples;
}

// Every reply carries `message` too, so that the common fields are all exercised.
ClientReply ReplyBase(ClientCommand command, StatusCode status) {
  return ClientReply{.command = command, .rid = 99, .status = status, .message = "detail"};
}

ClientReply SubmitReplySample() {
  ClientReply reply = ReplyBase(ClientCommand::kSubmit, StatusCode::kAccepted);
  reply.id = "j-7";
  reply.existing = true;
  reply.rids = {42, 1ull << 40};
  reply.ids = {"j-7", "j-8"};
  return reply;
}
ClientReply JobReplySample(ClientCommand command) {
  ClientReply reply = ReplyBase(command, StatusCode::kOk);
  reply.job = SampleJob("j-7");
  return reply;
}
ClientReply ListReplySample() {
  ClientReply reply = ReplyBase(ClientCommand::kList, StatusCode::kOk);
  reply.jobs = {SampleJob("j-8"), SampleJob("j-7")};
  return reply;
}
ClientReply ClusterReplySample() {
  ClientReply reply = ReplyBase(ClientCommand::kCluster, StatusCode::kOk);
  reply.cluster = SampleCluster();
  return reply;
}
ClientReply PingReplySample() {
  ClientReply reply = ReplyBase(ClientCommand::kPing, StatusCode::kOk);
  reply.role = "standalone";
  reply.epoch = 3;
  return reply;
}

ClientReply GroupSubmitReplySample() {
  ClientReply reply = ReplyBase(ClientCommand::kGroupSubmit, StatusCode::kAccepted);
  reply.id = "g-5";
  reply.ids = std::vector<std::string>{"j-5", "j-6"};
  reply.follow_up_id = "j-7";
  reply.existing = true;
  return reply;
}
ClientReply GroupStatusReplySample() {
  ClientReply reply = ReplyBase(ClientCommand::kGroupStatus, StatusCode::kOk);
  GroupInfo group;
  group.id = "g-5";
  group.total = 2;
  for (const auto& state : kJobStates) group.counts[std::string(state.name)] = 0;
  group.counts["succeeded"] = 1;
  group.counts["dead"] = 1;
  group.settled = 2;
  group.members = std::vector<JobInfo>{SampleJob("j-5"), SampleJob("j-6")};
  group.follow_up = SampleJob("j-7");
  reply.group = std::move(group);
  return reply;
}

const std::map<std::string, ReplySample>& ReplySamples() {
  static const std::map<std::string, ReplySample> samples = {
      {"SUBMIT", SubmitReplySample},
      {"STATUS", [] { return JobReplySample(ClientCommand::kStatus); }},
      {"LIST", ListReplySample},
      {"CANCEL", [] { return JobReplySample(ClientCommand::kCancel); }},
      {"RETRY", [] { return JobReplySample(ClientCommand::kRetry); }},
      {"CLUSTER", ClusterReplySample},
      {"WATCH", [] { return JobReplySample(ClientCommand::kWatch); }},
      {"PING", PingReplySample},
      {"GROUP_SUBMIT", GroupSubmitReplySample},
      {"GROUP_STATUS", GroupStatusReplySample},
      {"DRAIN",
       [] {
         ClientReply reply = ReplyBase(ClientCommand::kDrain, StatusCode::kOk);
         reply.moved = 2;
         return reply;
       }},
  };
  return samples;
}

constexpr std::uint64_t kLease = (3ull << 40) | 17;

WorkerMessage ReadySample() {
  return Ready{.worker_id = "w-eu-1",
               .types = {"email", "resize.image"},
               .capacity = 4,
               .labels = {{"gpu", "true"}, {"zone", "eu-1"}},
               .prefetch = 8};
}
WorkerMessage WelcomeSample() {
  return Welcome{.heartbeat_ms = 1500, .liveness = 4, .epoch = 3, .checkpoint_interval_ms = 60'000};
}
WorkerMessage JobSample() {
  return JobDispatch{.id = "j-7",
                     .type = "resize.image",
                     .payload = std::string("\x00\x01png", 5),
                     .lease = kLease,
                     .attempt = 2,
                     .timeout_ms = 60'000,
                     .priority = 7,
                     .checkpoint = std::string("offset=\x00\x10", 9),
                     .inputs = {{.id = "j-5", .state = "succeeded", .result = "a 3", .error = "-"},
                                {.id = "j-6", .state = "dead", .result = "", .error = "boom"}}};
}
WorkerMessage ProgressSample() {
  return ProgressReport{.id = "j-7",
                        .lease = kLease,
                        .percent = 40,
                        .message = "resizing",
                        .checkpoint = std::string("offset=\x00\x20", 9)};
}
WorkerMessage DoneSample() {
  return Done{.id = "j-7", .lease = kLease, .result = std::string("\x00\xffout", 5)};
}
WorkerMessage FailSample() {
  return Failed{.id = "j-7", .lease = kLease, .error = "exit status 100", .permanent = true};
}
WorkerMessage CancelJobSample() {
  return CancelJob{.id = "j-7", .lease = kLease, .reason = "cancelled by a client"};
}
WorkerMessage HeartbeatSample() { return Heartbeat{.check = 17}; }
WorkerMessage DisconnectSample() { return Disconnect{.reason = "worker shutting down"}; }
WorkerMessage StartedSample() { return Started{.id = "j-7", .lease = kLease}; }
WorkerMessage RecallSample() { return Recall{.id = "j-7", .lease = kLease}; }
WorkerMessage ReturnedSample() { return Returned{.id = "j-7", .lease = kLease}; }

const std::map<std::string, WorkerSample>& WorkerSamples() {
  static const std::map<std::string, WorkerSample> samples = {
      {"READY", ReadySample},
      {"WELCOME", WelcomeSample},
      {"JOB", JobSample},
      {"PROGRESS", ProgressSample},
      {"DONE", DoneSample},
      {"FAIL", FailSample},
      {"CANCEL", CancelJobSample},
      {"HEARTBEAT", HeartbeatSample},
      {"DISCONNECT", DisconnectSample},
      {"STARTED", StartedSample},
      {"RECALL", RecallSample},
      {"RETURNED", ReturnedSample},
  };
  return samples;
}

using PeerSample = std::function<PeerMessage()>;

const std::map<std::string, PeerSample>& PeerSamples() {
  static const std::map<std::string, PeerSample> samples = {
      {"STATE",
       [] { return PeerState{.state = "active", .epoch = 4, .position = 90, .primary = true}; }},
      {"HELLO", [] { return PeerHello{.epoch = 3, .position = 12}; }},
      {"SNAPSHOT",
       [] {
         return PeerSnapshot{.epoch = 4,
                             .position = 90,
                             .first = true,
                             .last = true,
                             .jobs = {SampleRecord(1), SampleRecord(2)}};
       }},
      {"BATCH",
       [] {
         return PeerBatch{.epoch = 4,
                          .position = 91,
                          .writes = {{.insert = true, .job = SampleRecord(3)},
                                     {.insert = false, .job = SampleRecord(1)},
                                     {.job = SampleRecord(2), .remove = true}}};
       }},
      {"ACK", [] { return PeerAck{.epoch = 4, .position = 91}; }},
  };
  return samples;
}

// ---- checking an encoded body against protocol.yaml ----

YAML::Node LoadProtocol() {
  YAML::Node root;
  REQUIRE_NOTHROW(root = YAML::LoadFile(CLAW_SOURCE_DIR "/schema/protocol.yaml"));
  return root;
}

std::vector<std::string_view> Views(const Frames& frames) {
  return {frames.header, std::string_view(reinterpret_cast<const char*>(&frames.command), 1),
          frames.body};
}

std::string_view KeyOf(const msgpack::object& key) {
  if (key.type != msgpack::type::STR) return {};
  return std::string_view(key.via.str.ptr, key.via.str.size);
}

class SchemaChecker {
 public:
  explicit SchemaChecker(YAML::Node root) : objects_(root["objects"]) {}

  // `o` must be a map holding only `fields`, each of its declared type. Every declared field must
  // be there, required or not, since the samples set them all.
  void CheckObject(const std::vector<YAML::Node>& fields, const msgpack::object& o,
                   const std::string& where) {
    REQUIRE_MESSAGE(o.type == msgpack::type::MAP, where << " is not a msgpack map");
    std::map<std::string, std::string> declared;  // name -> type
    for (const auto& f : fields)
      declared[f["name"].as<std::string>()] = f["type"].as<std::string>();
    std::set<std::string> seen;
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      CHECK_MESSAGE(kv.key.type == msgpack::type::STR, where << " has a key that is not a str");
      const std::string key(KeyOf(kv.key));
      CHECK_MESSAGE(seen.insert(key).second, where << " repeats key '" << key << "'");
      auto it = declared.find(key);
      if (it == declared.end()) {
        FAIL_CHECK(where << " has key '" << key << "', which protocol.yaml does not declare");
        continue;
      }
      CheckValue(it->second, kv.val, where + "." + key);
    }
    for (const auto& f : fields) {
      const auto name = f["name"].as<std::string>();
      CHECK_MESSAGE(seen.contains(name),
                    where << " lacks field '" << name
                          << "' (the sample sets every field, so the codec dropped it)");
    }
  }

  void CheckValue(const std::string& type, const msgpack::object& o, const std::string& where) {
    using msgpack::type::object_type;
    auto is = [&](object_type t) {
      CHECK_MESSAGE(o.type == t, where << " should be msgpack type for '" << type << "', got type "
                                       << static_cast<int>(o.type));
      return o.type == t;
    };
    if (type == "uint") {
      is(msgpack::type::POSITIVE_INTEGER);
    } else if (type == "int") {
      CHECK_MESSAGE(
          (o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER),
          where << " should be an integer");
    } else if (type == "str") {
      is(msgpack::type::STR);
    } else if (type == "bin") {
      is(msgpack::type::BIN);
    } else if (type == "bool") {
      is(msgpack::type::BOOLEAN);
    } else if (type == "uints") {
      if (!is(msgpack::type::ARRAY)) return;
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        CheckValue("uint", o.via.array.ptr[i], where + "[" + std::to_string(i) + "]");
      }
    } else if (type == "strs") {
      if (!is(msgpack::type::ARRAY)) return;
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        CheckValue("str", o.via.array.ptr[i], where + "[" + std::to_string(i) + "]");
      }
    } else if (type == "labels" || type == "counts") {
      if (!is(msgpack::type::MAP)) return;
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        CheckValue("str", kv.key, where + " key");
        CheckValue(type == "labels" ? "str" : "uint", kv.val,
                   where + "[" + std::string(KeyOf(kv.key)) + "]");
      }
    } else if (objects_[type]) {
      CheckObject(FieldList(objects_[type]), o, where);
    } else if (type.ends_with("s") && objects_[type.substr(0, type.size() - 1)]) {
      if (!is(msgpack::type::ARRAY)) return;
      CHECK_MESSAGE(o.via.array.size > 0, where << ": the sample should hold at least one item");
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        CheckValue(type.substr(0, type.size() - 1), o.via.array.ptr[i],
                   where + "[" + std::to_string(i) + "]");
      }
    } else {
      FAIL_CHECK(where << " has type '" << type
                       << "', which this test does not know: teach CheckValue about it");
    }
  }

  static std::vector<YAML::Node> FieldList(const YAML::Node& list) {
    std::vector<YAML::Node> out;
    for (const auto& f : list) out.push_back(f);
    return out;
  }

 private:
  YAML::Node objects_;
};

// Unpacks a body and checks it against `fields`.
void CheckBody(SchemaChecker& checker, const std::vector<YAML::Node>& fields,
               const std::string& body, const std::string& where) {
  msgpack::object_handle handle;
  REQUIRE_NOTHROW(handle = msgpack::unpack(body.data(), body.size()));
  checker.CheckObject(fields, handle.get(), where);
}

std::vector<YAML::Node> Concat(const YAML::Node& a, const YAML::Node& b) {
  auto out = SchemaChecker::FieldList(a);
  for (const auto& f : b) out.push_back(f);
  return out;
}

TEST_CASE("a job record's links: unset they read as defaults, copies are deep") {
  JobRecord plain;
  CHECK(plain.links.value() == JobLinks{});
  JobRecord linked = SampleRecord(7);
  JobRecord copy = linked;
  copy.links.edit().after.push_back(9);
  CHECK(linked.links.value().after == std::vector<std::uint64_t>{3, 4});
  CHECK_FALSE(copy == linked);
  plain.links.edit();  // an empty box and a default value are equal
  CHECK(plain == JobRecord{});
}

TEST_CASE("every client request encodes to exactly the fields protocol.yaml declares") {
  const YAML::Node root = LoadProtocol();
  SchemaChecker checker(root);
  const auto header = root["headers"]["client"].as<std::string>();
  const YAML::Node commands = root["client"]["commands"];
  CHECK(commands.size() == RequestSamples().size());
  for (const auto& command : commands) {
    const auto name = command["name"].as<std::string>();
    CAPTURE(name);
    auto sample = RequestSamples().find(name);
    REQUIRE_MESSAGE(sample != RequestSamples().end(), "protocol.yaml declares client command "
                                                          << name << " but the test has no sample");
    const ClientRequest request = sample->second();
    const Frames frames = Encode(request);
    CHECK(frames.header == header);
    CHECK(frames.command == command["code"].as<int>());
    CHECK(Name(CommandOf(request)) == name);
    CheckBody(checker, SchemaChecker::FieldList(command["request"]), frames.body,
              name + " request");

    auto decoded = DecodeInbound(Views(frames));
    REQUIRE_MESSAGE(decoded.has_value(), decoded.error().message);
    REQUIRE(std::holds_alternative<ClientRequest>(*decoded));
    CHECK(std::get<ClientRequest>(*decoded) == request);
  }
}

TEST_CASE("every client reply encodes to exactly the fields protocol.yaml declares") {
  const YAML::Node root = LoadProtocol();
  SchemaChecker checker(root);
  const auto header = root["headers"]["client"].as<std::string>();
  const YAML::Node commands = root["client"]["commands"];
  CHECK(commands.size() == ReplySamples().size());
  for (const auto& command : commands) {
    const auto name = command["name"].as<std::string>();
    CAPTURE(name);
    auto sample = ReplySamples().find(name);
    REQUIRE_MESSAGE(sample != ReplySamples().end(), "protocol.yaml declares client command "
                                                        << name
                                                        << " but the test has no reply sample");
    const ClientReply reply = sample->second();
    const Frames frames = Encode(reply);
    CHECK(frames.header == header);
    CHECK(frames.command == command["code"].as<int>());
    CheckBody(checker, Concat(root["client"]["common_reply_fields"], command["reply"]), frames.body,
              name + " reply");

    auto decoded = DecodeClientReply(Views(frames));
    REQUIRE_MESSAGE(decoded.has_value(), decoded.error().message);
    CHECK(*decoded == reply);
  }
}

TEST_CASE("every worker message encodes to exactly the fields protocol.yaml declares") {
  const YAML::Node root = LoadProtocol();
  SchemaChecker checker(root);
  const auto header = root["headers"]["worker"].as<std::string>();
  const YAML::Node commands = root["worker"]["commands"];
  CHECK(commands.size() == WorkerSamples().size());
  for (const auto& command : commands) {
    const auto name = command["name"].as<std::string>();
    const auto direction = command["direction"].as<std::string>();
    CAPTURE(name);
    auto sample = WorkerSamples().find(name);
    REQUIRE_MESSAGE(sample != WorkerSamples().end(), "protocol.yaml declares worker command "
                                                         << name << " but the test has no sample");
    const WorkerMessage message = sample->second();
    const Frames frames = Encode(message);
    CHECK(frames.header == header);
    CHECK(frames.command == command["code"].as<int>());
    CHECK(Name(CommandOf(message)) == name);
    CheckBody(checker, SchemaChecker::FieldList(command["fields"]), frames.body, name);

    // Each side accepts what the other may send, and refuses what only it may send.
    const bool to_broker = direction == "worker_to_broker" || direction == "both";
    const bool to_worker = direction == "broker_to_worker" || direction == "both";
    REQUIRE((to_broker || to_worker));
    auto at_broker = DecodeInbound(Views(frames));
    CHECK(at_broker.has_value() == to_broker);
    if (at_broker) {
      REQUIRE(std::holds_alternative<WorkerMessage>(*at_broker));
      CHECK(std::get<WorkerMessage>(*at_broker) == message);
    } else {
      CHECK(at_broker.error().status == StatusCode::kUnknownCommand);
      CHECK(at_broker.error().dialog == Dialog::kWorker);
      CHECK(at_broker.error().answerable);
    }
    auto at_worker = DecodeWorkerMessage(Views(frames));
    CHECK(at_worker.has_value() == to_worker);
    if (at_worker) CHECK(*at_worker == message);
  }
}

TEST_CASE("every peer message encodes to exactly the fields protocol.yaml declares") {
  const YAML::Node root = LoadProtocol();
  SchemaChecker checker(root);
  const auto header = root["headers"]["peer"].as<std::string>();
  const YAML::Node commands = root["peer"]["commands"];
  CHECK(commands.size() == PeerSamples().size());
  for (const auto& command : commands) {
    const auto name = command["name"].as<std::string>();
    CAPTURE(name);
    auto sample = PeerSamples().find(name);
    REQUIRE_MESSAGE(sample != PeerSamples().end(), "protocol.yaml declares peer command "
                                                       << name << " but the test has no sample");
    const PeerMessage message = sample->second();
    const Frames frames = Encode(message);
    CHECK(frames.header == header);
    CHECK(frames.command == command["code"].as<int>());
    CHECK(Name(CommandOf(message)) == name);
    CheckBody(checker, SchemaChecker::FieldList(command["fields"]), frames.body, name);
    auto at_broker = DecodeInbound(Views(frames));
    REQUIRE_MESSAGE(at_broker.has_value(), at_broker.error().message);
    REQUIRE(std::holds_alternative<PeerMessage>(*at_broker));
    CHECK(std::get<PeerMessage>(*at_broker) == message);
    auto direct = DecodePeerMessage(Views(frames));
    REQUIRE(direct.has_value());
    CHECK(*direct == message);
  }
}

TEST_CASE("absent optional fields decode to their defaults") {
  // The smallest bodies a foreign client may send: only the required fields.
  const SubmitRequest bare{.rid = 1, .job = {.type = "echo"}};
  const Frames frames = Encode(ClientRequest{bare});
  auto decoded = DecodeInbound(Views(frames));
  REQUIRE(decoded.has_value());
  const auto& submit = std::get<SubmitRequest>(std::get<ClientRequest>(*decoded));
  CHECK(submit.job.payload.empty());
  CHECK_FALSE(submit.job.priority.has_value());
  CHECK_FALSE(submit.job.timeout_ms.has_value());
  CHECK_FALSE(submit.job.max_attempts.has_value());
  CHECK_FALSE(submit.key.has_value());
  CHECK_FALSE(submit.batch_ack);

  // READY without capacity or labels: capacity 1, no labels.
  msgpack::sbuffer body;
  msgpack::packer<msgpack::sbuffer> pk(body);
  pk.pack_map(2);
  pk.pack(std::string("worker_id"));
  pk.pack(std::string("w1"));
  pk.pack(std::string("types"));
  pk.pack(std::vector<std::string>{"echo"});
  const char ready_code = 0x01;
  const std::vector<std::string_view> ready = {kWorkerHeader, std::string_view(&ready_code, 1),
                                               std::string_view(body.data(), body.size())};
  auto message = DecodeInbound(ready);
  REQUIRE(message.has_value());
  const auto& r = std::get<Ready>(std::get<WorkerMessage>(*message));
  CHECK(r.capacity == 1);
  CHECK(r.labels.empty());
}

}  // namespace
}  // namespace claw::wire
