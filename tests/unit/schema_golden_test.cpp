// Golden encodings: the exact bytes of one message of each common kind, kept in schema/golden/
// as hex (one line per frame: header, command code, msgpack body; '#' lines are comments).
// Encoding the message below must give those bytes, and decoding those bytes must give the
// message, so a change to codec.cpp that alters the bytes on the wire fails here.
//
// After an intended change of the encoding (see schema/PROTOCOL.md, "Changing the protocol"),
// rewrite the files with CLAW_UPDATE_GOLDEN=1 build/claw_schema_tests -tc='golden*' and review
// the diff: every other implementation of the protocol must change the same way.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "schema/codec.hpp"

namespace claw::wire {
namespace {

using AnyMessage = std::variant<ClientRequest, ClientReply, WorkerMessage>;

struct Golden {
  std::string file;
  std::string what;
  AnyMessage message;
};

constexpr std::uint64_t kLease = (1ull << 40) | 1;  // epoch 1, first lease

JobInfo GoldenJob() {
  JobInfo job;
  job.id = "j-1";
  job.type = "echo";
  job.state = JobState::kSucceeded;
  job.priority = 5;
  job.attempts = 1;
  job.max_attempts = 5;
  job.timeout_ms = 300'000;
  job.backoff_ms = 1000;
  job.max_backoff_ms = 300'000;
  job.created_at = 1'700'000'000'000;
  job.updated_at = 1'700'000'001'000;
  job.worker = "w1";
  job.result = "hi";
  job.payload = "hi";
  return job;
}

std::vector<Golden> Goldens() {
  ClientReply accepted{
      .command = ClientCommand::kSubmit, .rid = 1, .status = StatusCode::kAccepted};
  accepted.id = "j-1";
  ClientReply existing = accepted;
  existing.existing = true;
  ClientReply status{.command = ClientCommand::kStatus, .rid = 2};
  status.job = GoldenJob();
  const ClientReply not_found{.command = ClientCommand::kStatus,
                              .rid = 3,
                              .status = StatusCode::kNotFound,
                              .message = "no job j-9"};
  ClientReply pong{.command = ClientCommand::kPing, .rid = 4};
  pong.role = "standalone";
  pong.epoch = 1;
  return {
      {"submit_request.hex", R"(SUBMIT request: {"rid": 1, "type": "echo", "payload": b"hi"})",
       ClientRequest{SubmitRequest{.rid = 1, .job = {.type = "echo", .payload = "hi"}}}},
      {"submit_accepted_reply.hex", R"(SUBMIT reply: {"rid": 1, "status": 202, "id": "j-1"})",
       accepted},
      {"submit_existing_reply.hex",
       R"(SUBMIT reply to a known key: {"rid": 1, "status": 202, "id": "j-1", "existing": true})",
       existing},
      {"status_request.hex", R"(STATUS request: {"rid": 2, "id": "j-1"})",
       ClientRequest{StatusRequest{.rid = 2, .id = "j-1"}}},
      {"status_reply.hex",
       R"(STATUS reply: {"rid": 2, "status": 200, "job": {"id": "j-1", "type": "echo", )"
       R"("state": "succeeded", "priority": 5, "attempts": 1, "max_attempts": 5, )"
       R"("timeout_ms": 300000, "backoff_ms": 1000, "max_backoff_ms": 300000, )"
       R"("created_at": 1700000000000, "updated_at": 1700000001000, "worker": "w1", )"
       R"("result": b"hi", "payload": b"hi"}})",
       status},
      {"status_not_found_reply.hex",
       R"(STATUS reply: {"rid": 3, "status": 404, "message": "no job j-9"})", not_found},
      {"ping_request.hex", R"(PING request: {"rid": 4})", ClientRequest{PingRequest{.rid = 4}}},
      {"ping_reply.hex",
       R"(PING reply: {"rid": 4, "status": 200, "role": "standalone", "epoch": 1})", pong},
      {"ready.hex",
       R"(READY: {"worker_id": "w1", "types": ["echo"], "capacity": 2, "labels": {"zone": "eu-1"}})",
       WorkerMessage{Ready{
           .worker_id = "w1", .types = {"echo"}, .capacity = 2, .labels = {{"zone", "eu-1"}}}}},
      {"welcome.hex", R"(WELCOME: {"heartbeat_ms": 1000, "liveness": 3, "epoch": 1})",
       WorkerMessage{Welcome{.heartbeat_ms = 1000, .liveness = 3, .epoch = 1}}},
      {"job_dispatch.hex",
       R"(JOB: {"id": "j-1", "type": "echo", "payload": b"hi", "lease": 1099511627777, )"
       R"("attempt": 1, "timeout_ms": 300000, "priority": 5})",
       WorkerMessage{JobDispatch{.id = "j-1",
                                 .type = "echo",
                                 .payload = "hi",
                                 .lease = kLease,
                                 .attempt = 1,
                                 .timeout_ms = 300'000,
                                 .priority = 5}}},
      {"progress.hex",
       R"(PROGRESS: {"id": "j-1", "lease": 1099511627777, "percent": 50, "message": "half"})",
       WorkerMessage{
           ProgressReport{.id = "j-1", .lease = kLease, .percent = 50, .message = "half"}}},
      {"done.hex", R"(DONE: {"id": "j-1", "lease": 1099511627777, "result": b"hi"})",
       WorkerMessage{Done{.id = "j-1", .lease = kLease, .result = "hi"}}},
      {"fail.hex",
       R"(FAIL: {"id": "j-1", "lease": 1099511627777, "error": "boom", "permanent": false})",
       WorkerMessage{Failed{.id = "j-1", .lease = kLease, .error = "boom", .permanent = false}}},
      {"cancel.hex",
       R"(CANCEL (broker to worker): {"id": "j-1", "lease": 1099511627777, "reason": "timed out"})",
       WorkerMessage{CancelJob{.id = "j-1", .lease = kLease, .reason = "timed out"}}},
      {"heartbeat.hex", R"(HEARTBEAT: {})", WorkerMessage{Heartbeat{}}},
      {"disconnect.hex", R"(DISCONNECT: {"reason": "unknown worker; send READY"})",
       WorkerMessage{Disconnect{.reason = "unknown worker; send READY"}}},
  };
}

const std::string kGoldenDir = CLAW_SOURCE_DIR "/schema/golden";

Frames EncodeAny(const AnyMessage& message) {
  return std::visit([](const auto& m) { return Encode(m); }, message);
}

std::vector<std::string> FramesOf(const Frames& f) {
  return {std::string(f.header), std::string(1, static_cast<char>(f.command)), f.body};
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    if (!out.empty()) out += ' ';
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::string FromHex(std::string_view text) {
  std::string out;
  std::istringstream in{std::string(text)};
  std::string pair;
  while (in >> pair) {
    REQUIRE_MESSAGE(pair.size() == 2, "bad hex byte '" << pair << "'");
    out += static_cast<char>(std::stoi(pair, nullptr, 16));
  }
  return out;
}

// The frames a golden file holds: its non-comment, non-blank lines.
std::vector<std::string> ReadGolden(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(),
                  "cannot read " << path << " (CLAW_UPDATE_GOLDEN=1 writes missing files)");
  std::vector<std::string> frames;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.starts_with('#')) continue;
    frames.push_back(FromHex(line));
  }
  return frames;
}

void WriteGolden(const std::string& path, const Golden& golden,
                 const std::vector<std::string>& frames) {
  std::ofstream out(path, std::ios::trunc);
  REQUIRE(out.good());
  out << "# " << golden.what << "\n"
      << "# Three frames, one line each in hex: protocol header, command code, msgpack body.\n";
  for (const auto& frame : frames) out << ToHex(frame) << "\n";
}

void CheckDecodesTo(const std::vector<std::string>& frames, const AnyMessage& expected) {
  const std::vector<std::string_view> views(frames.begin(), frames.end());
  if (const auto* request = std::get_if<ClientRequest>(&expected)) {
    auto decoded = DecodeInbound(views);
    REQUIRE_MESSAGE(decoded.has_value(), decoded.error().message);
    CHECK(std::get<ClientRequest>(*decoded) == *request);
  } else if (const auto* reply = std::get_if<ClientReply>(&expected)) {
    auto decoded = DecodeClientReply(views);
    REQUIRE_MESSAGE(decoded.has_value(), decoded.error().message);
    CHECK(*decoded == *reply);
  } else {
    const auto& message = std::get<WorkerMessage>(expected);
    // Whichever side may receive it must decode it.
    auto at_broker = DecodeInbound(views);
    auto at_worker = DecodeWorkerMessage(views);
    CHECK((at_broker.has_value() || at_worker.has_value()));
    if (at_broker) CHECK(std::get<WorkerMessage>(*at_broker) == message);
    if (at_worker) CHECK(*at_worker == message);
  }
}

TEST_CASE("golden: each message encodes to the bytes in schema/golden and decodes back") {
  const bool update = std::getenv("CLAW_UPDATE_GOLDEN") != nullptr;
  for (const auto& golden : Goldens()) {
    CAPTURE(golden.file);
    const std::string path = kGoldenDir + "/" + golden.file;
    const std::vector<std::string> encoded = FramesOf(EncodeAny(golden.message));
    if (update) {
      WriteGolden(path, golden, encoded);
      MESSAGE("rewrote " << path);
    }
    const std::vector<std::string> stored = ReadGolden(path);
    REQUIRE(stored.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK_MESSAGE(stored[i] == encoded[i],
                    "golden " << ToHex(stored[i]) << "\nencoded " << ToHex(encoded[i]));
    }
    CheckDecodesTo(stored, golden.message);
  }
}

TEST_CASE("golden: every file in schema/golden belongs to a message of this test") {
  std::set<std::string> known;
  for (const auto& golden : Goldens()) known.insert(golden.file);
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".hex") continue;
    CHECK_MESSAGE(known.contains(name), "schema/golden/" << name << " is checked by no test");
  }
}

}  // namespace
}  // namespace claw::wire
