// Decoding what arrives from the network: every kind of bad input comes back as the DecodeError
// that tells the broker how to answer it (status, whether it can answer at all, the rid when it
// could be read), never as a crash, an exception or a large allocation. Also what decoders must
// tolerate from other implementations: unknown keys, str for bin, any integer encoding.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "schema/codec.hpp"

namespace claw::wire {
namespace {

// ---- building bodies byte by byte ----

// "dd ff ff ff ff" -> those five bytes.
std::string Hex(std::string_view text) {
  std::string out;
  int high = -1;
  for (char c : text) {
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (v < 0) continue;
    if (high < 0) {
      high = v;
    } else {
      out += static_cast<char>(high * 16 + v);
      high = -1;
    }
  }
  REQUIRE(high < 0);
  return out;
}

template <typename F>
std::string Pack(F&& f) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  f(pk);
  return std::string(buffer.data(), buffer.size());
}

std::string Str(std::string_view s) {
  return Pack([&](auto& pk) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
  });
}
std::string Uint(std::uint64_t v) {
  return Pack([&](auto& pk) { pk.pack_uint64(v); });
}
std::string Int(std::int64_t v) {
  return Pack([&](auto& pk) { pk.pack_int64(v); });
}
std::string Bin(std::string_view s) {
  return Pack([&](auto& pk) {
    pk.pack_bin(static_cast<std::uint32_t>(s.size()));
    pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
  });
}
const std::string kNil = "\xc0";

// A map from alternating keys and values, each already packed.
std::string MapOf(std::initializer_list<std::string> key_values) {
  std::string out =
      Pack([&](auto& pk) { pk.pack_map(static_cast<std::uint32_t>(key_values.size() / 2)); });
  for (const auto& part : key_values) out += part;
  return out;
}

std::string Code(std::uint8_t code) { return std::string(1, static_cast<char>(code)); }

const std::string kClient = std::string(kClientHeader);
const std::string kWorker = std::string(kWorkerHeader);

std::expected<Inbound, DecodeError> Decode(const std::vector<std::string>& frames,
                                           const DecodeLimits& limits = {}) {
  const std::vector<std::string_view> views(frames.begin(), frames.end());
  return DecodeInbound(views, limits);
}

std::vector<std::string> FramesOf(const Frames& f) {
  return {std::string(f.header), Code(f.command), f.body};
}

// ---- the table of bad inputs ----

struct BadInput {
  std::string what;
  std::vector<std::string> frames;
  StatusCode status = StatusCode::kBadRequest;
  bool answerable = true;
  Dialog dialog = Dialog::kClient;
  std::uint8_t command = 0;
  std::uint64_t rid = 0;
  std::string message_has;  // a part of the error message
};

std::string Nested(int depth) {
  return std::string(static_cast<std::size_t>(depth), '\x91') + Uint(1);
}

std::vector<BadInput> BadInputs() {
  const std::string status_body = MapOf({Str("rid"), Uint(7), Str("id"), Str("j-1")});
  const std::string rid7 = MapOf({Str("rid"), Uint(7)});
  auto with_x = [](const std::string& value) {
    return MapOf({Str("rid"), Uint(7), Str("x"), value});
  };
  auto submit_with = [](const std::string& key, const std::string& value) {
    return MapOf({Str("rid"), Uint(7), Str("type"), Str("echo"), Str(key), value});
  };
  return {
      {.what = "a first frame that is no Claw header",
       .frames = {"GET / HTTP/1.1", Code(0x02), status_body},
       .answerable = false,
       .message_has = "unknown protocol header"},
      {.what = "no frames at all", .frames = {}, .answerable = false, .message_has = "empty"},
      {.what = "a newer client protocol version",
       .frames = {"CLAWC2", Code(0x02), status_body},
       .status = StatusCode::kUnsupportedVersion,
       .message_has = "CLAWC1"},
      {.what = "a newer worker protocol version",
       .frames = {"CLAWW2", Code(0x01), rid7},
       .status = StatusCode::kUnsupportedVersion,
       .dialog = Dialog::kWorker,
       .message_has = "CLAWW1"},
      {.what = "a header with no version",
       .frames = {"CLAWC", Code(0x02), status_body},
       .status = StatusCode::kUnsupportedVersion,
       .message_has = "unsupported protocol version"},
      {.what = "header and command without a body",
       .frames = {kClient, Code(0x02)},
       .command = 0x02,
       .message_has = "expected 3 frames"},
      {.what = "a fourth frame",
       .frames = {kClient, Code(0x02), status_body, "more"},
       .command = 0x02,
       .message_has = "expected 3 frames"},
      {.what = "a header alone", .frames = {kClient}, .message_has = "expected 3 frames"},
      {.what = "a command frame of two bytes",
       .frames = {kClient, std::string("\x02\x00", 2), status_body},
       .message_has = "command"},
      {.what = "an unknown client command",
       .frames = {kClient, Code(0x7f), rid7},
       .status = StatusCode::kUnknownCommand,
       .command = 0x7f,
       .rid = 7,
       .message_has = "unknown client command 127"},
      {.what = "client command 0",
       .frames = {kClient, Code(0x00), rid7},
       .status = StatusCode::kUnknownCommand,
       .rid = 7},
      {.what = "an unknown worker command",
       .frames = {kWorker, Code(0x7f), MapOf({})},
       .status = StatusCode::kUnknownCommand,
       .dialog = Dialog::kWorker,
       .command = 0x7f,
       .message_has = "unknown worker command 127"},
      {.what = "invalid msgpack (0xc1 is never used)",
       .frames = {kClient, Code(0x02), Hex("c1")},
       .command = 0x02,
       .message_has = "bad msgpack"},
      {.what = "truncated msgpack",
       .frames = {kClient, Code(0x02), status_body.substr(0, status_body.size() - 1)},
       .command = 0x02,
       .message_has = "bad msgpack"},
      {.what = "an empty body",
       .frames = {kClient, Code(0x02), ""},
       .command = 0x02,
       .message_has = "bad msgpack"},
      {.what = "trailing bytes after the body",
       .frames = {kClient, Code(0x02), status_body + kNil},
       .command = 0x02,
       .message_has = "trailing bytes"},
      {.what = "a body that is an array",
       .frames = {kClient, Code(0x02), Hex("92 07 a3 6a 2d 31")},
       .command = 0x02,
       .message_has = "not a msgpack map"},
      {.what = "a missing required field",
       .frames = {kClient, Code(0x02), rid7},
       .command = 0x02,
       .rid = 7,
       .message_has = "missing field 'id'"},
      {.what = "a required field that is nil",
       .frames = {kClient, Code(0x02), MapOf({Str("rid"), Uint(7), Str("id"), kNil})},
       .command = 0x02,
       .rid = 7,
       .message_has = "missing field 'id'"},
      {.what = "a str field holding an integer",
       .frames = {kClient, Code(0x02), MapOf({Str("rid"), Uint(7), Str("id"), Uint(5)})},
       .command = 0x02,
       .rid = 7,
       .message_has = "field 'id' has the wrong type"},
      {.what = "a str field holding bin",
       .frames = {kClient, Code(0x02), MapOf({Str("rid"), Uint(7), Str("id"), Bin("j-1")})},
       .command = 0x02,
       .rid = 7,
       .message_has = "field 'id' has the wrong type"},
      {.what = "a rid that is a string",
       .frames = {kClient, Code(0x02), MapOf({Str("rid"), Str("7"), Str("id"), Str("j-1")})},
       .command = 0x02,
       .message_has = "field 'rid' has the wrong type"},
      {.what = "a missing rid",
       .frames = {kClient, Code(0x08), MapOf({})},
       .command = 0x08,
       .message_has = "missing field 'rid'"},
      {.what = "a negative uint",
       .frames = {kClient, Code(0x01), submit_with("priority", Int(-1))},
       .command = 0x01,
       .rid = 7,
       .message_has = "field 'priority' has the wrong type"},
      {.what = "a uint32 field of 2^32",
       .frames = {kClient, Code(0x01), submit_with("priority", Uint(1ull << 32))},
       .command = 0x01,
       .rid = 7,
       .message_has = "field 'priority' has the wrong type"},
      {.what = "a float for a uint",
       .frames = {kClient, Code(0x01),
                  submit_with("timeout_ms", Hex("cb 3f f8 00 00 00 00 00 00"))},
       .command = 0x01,
       .rid = 7,
       .message_has = "field 'timeout_ms' has the wrong type"},
      {.what = "a bool as a string",
       .frames = {kClient, Code(0x01), submit_with("key", Hex("c3"))},
       .command = 0x01,
       .rid = 7,
       .message_has = "field 'key' has the wrong type"},
      {.what = "a LIST state that is no job state",
       .frames = {kClient, Code(0x03), MapOf({Str("rid"), Uint(7), Str("state"), Str("done")})},
       .command = 0x03,
       .rid = 7,
       .message_has = "field 'state' is not a job state"},
      {.what = "a locality that is none of the three",
       .frames = {kClient, Code(0x01), submit_with("locality", Str("nearby"))},
       .command = 0x01,
       .rid = 7,
       .message_has = "field 'locality' has an unknown value 'nearby'"},
      {.what = "a locality that is not a string",
       .frames = {kClient, Code(0x01), submit_with("locality", Uint(1))},
       .command = 0x01,
       .rid = 7,
       .message_has = "field 'locality' has the wrong type"},
      {.what = "READY without worker_id",
       .frames = {kWorker, Code(0x01), MapOf({Str("types"), Hex("91 a4 65 63 68 6f")})},
       .dialog = Dialog::kWorker,
       .command = 0x01,
       .message_has = "missing field 'worker_id'"},
      {.what = "READY types holding a number",
       .frames = {kWorker, Code(0x01),
                  MapOf({Str("worker_id"), Str("w1"), Str("types"), Hex("92 a4 65 63 68 6f 07")})},
       .dialog = Dialog::kWorker,
       .command = 0x01,
       .message_has = "field 'types' has the wrong type"},
      {.what = "READY labels with a number value",
       .frames = {kWorker, Code(0x01),
                  MapOf({Str("worker_id"), Str("w1"), Str("types"), Hex("91 a4 65 63 68 6f"),
                         Str("labels"), MapOf({Str("zone"), Uint(1)})})},
       .dialog = Dialog::kWorker,
       .command = 0x01,
       .message_has = "field 'labels' has the wrong type"},
      {.what = "DONE with a negative lease",
       .frames = {kWorker, Code(0x05), MapOf({Str("id"), Str("j-1"), Str("lease"), Int(-5)})},
       .dialog = Dialog::kWorker,
       .command = 0x05,
       .message_has = "field 'lease' has the wrong type"},
      {.what = "arrays nested past the depth limit",
       .frames = {kClient, Code(0x08), with_x(Nested(20))},
       .command = 0x08,
       .message_has = "depth size overflow"},
      {.what = "an array header claiming 0xffffffff items (msgpack-c#1013)",
       .frames = {kClient, Code(0x08), with_x(Hex("dd ff ff ff ff"))},
       .command = 0x08,
       .message_has = "array size overflow"},
      {.what = "a map header claiming 0xffffffff pairs",
       .frames = {kClient, Code(0x08), with_x(Hex("df ff ff ff ff"))},
       .command = 0x08,
       .message_has = "map size overflow"},
      {.what = "a str header claiming 0xffffffff bytes",
       .frames = {kClient, Code(0x08), with_x(Hex("db ff ff ff ff"))},
       .command = 0x08,
       .message_has = "bad msgpack"},
      {.what = "a bin header claiming 0xffffffff bytes",
       .frames = {kClient, Code(0x08), with_x(Hex("c6 ff ff ff ff"))},
       .command = 0x08,
       .message_has = "bad msgpack"},
      {.what = "WELCOME sent to the broker",
       .frames = FramesOf(Encode(WorkerMessage{Welcome{1000, 3, 1}})),
       .status = StatusCode::kUnknownCommand,
       .dialog = Dialog::kWorker,
       .command = 0x02},
      {.what = "JOB sent to the broker",
       .frames = FramesOf(Encode(WorkerMessage{JobDispatch{.id = "j-1", .type = "echo"}})),
       .status = StatusCode::kUnknownCommand,
       .dialog = Dialog::kWorker,
       .command = 0x03},
      {.what = "CANCEL sent to the broker",
       .frames = FramesOf(Encode(WorkerMessage{CancelJob{.id = "j-1", .lease = 1}})),
       .status = StatusCode::kUnknownCommand,
       .dialog = Dialog::kWorker,
       .command = 0x07},
  };
}

TEST_CASE("each kind of bad input gives the DecodeError the broker answers with") {
  for (const auto& bad : BadInputs()) {
    CAPTURE(bad.what);
    auto decoded = Decode(bad.frames);
    REQUIRE_FALSE(decoded.has_value());
    const DecodeError& error = decoded.error();
    CAPTURE(error.message);
    CHECK(error.status == bad.status);
    CHECK(error.answerable == bad.answerable);
    if (bad.answerable) CHECK(error.dialog == bad.dialog);
    CHECK(error.command == bad.command);
    CHECK(error.rid == bad.rid);
    CHECK(error.message.find(bad.message_has) != std::string::npos);
  }
}

TEST_CASE("an array header claiming 0xffffffff items fails on the size check, at once") {
  const std::vector<std::string> frames = {
      kClient, Code(0x08), MapOf({Str("rid"), Uint(7), Str("x"), Hex("dd ff ff ff ff")})};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    auto decoded = Decode(frames);
    REQUIRE_FALSE(decoded.has_value());
    // Not "allocation failed": the limit refused it before msgpack-c reserved 64 GiB.
    REQUIRE(decoded.error().message.find("array size overflow") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("a body may nest eight containers deep, counting itself, and not nine") {
  auto ping_with = [](int arrays) {
    return Decode({kClient, Code(0x08), MapOf({Str("rid"), Uint(7), Str("x"), Nested(arrays)})});
  };
  CHECK(ping_with(7).has_value());
  auto deeper = ping_with(8);
  REQUIRE_FALSE(deeper.has_value());
  CHECK(deeper.error().message.find("depth size overflow") != std::string::npos);
}

TEST_CASE("a body over max_body_bytes is TOO_LARGE before it is parsed") {
  const DecodeLimits limits{.max_body_bytes = 64};
  const std::string key(64, 'k');
  const std::string body =
      MapOf({Str("rid"), Uint(7), Str("type"), Str("echo"), Str("key"), Str(key)});
  REQUIRE(body.size() > 64);
  auto decoded = Decode({kClient, Code(0x01), body}, limits);
  REQUIRE_FALSE(decoded.has_value());
  CHECK(decoded.error().status == StatusCode::kTooLarge);
  CHECK(decoded.error().answerable);
  CHECK(decoded.error().command == 0x01);
  CHECK(decoded.error().rid == 0);
  CHECK(decoded.error().message.find("over the limit of 64") != std::string::npos);

  // Garbage over the limit is TOO_LARGE too: the size is checked first.
  auto garbage = Decode({kClient, Code(0x01), std::string(65, '\xc1')}, limits);
  REQUIRE_FALSE(garbage.has_value());
  CHECK(garbage.error().status == StatusCode::kTooLarge);

  const std::string at_limit = MapOf({Str("rid"), Uint(7), Str("type"), Str("echo")});
  CHECK(Decode({kClient, Code(0x01), at_limit}, DecodeLimits{.max_body_bytes = at_limit.size()})
            .has_value());
}

TEST_CASE("decoders ignore unknown keys, accept str for bin and any integer encoding") {
  // Unknown keys (and keys that are not even strings) are skipped.
  auto status = Decode({kClient, Code(0x02),
                        MapOf({Str("trace"), Str("abc"), Uint(1), Uint(2), Str("rid"), Uint(7),
                               Str("id"), Str("j-1")})});
  REQUIRE(status.has_value());
  CHECK(std::get<ClientRequest>(*status) == ClientRequest{StatusRequest{.rid = 7, .id = "j-1"}});

  // A payload sent as str (what a msgpack library without bin support writes).
  auto submit = Decode(
      {kClient, Code(0x01),
       MapOf({Str("rid"), Uint(1), Str("type"), Str("echo"), Str("payload"), Str("hello")})});
  REQUIRE(submit.has_value());
  CHECK(std::get<SubmitRequest>(std::get<ClientRequest>(*submit)).job.payload == "hello");

  // Non-negative numbers in signed or wide encodings: int8 5, int64 9, uint64 1.
  auto wide = Decode({kClient, Code(0x01),
                      MapOf({Str("rid"), Hex("cf 00 00 00 00 00 00 00 01"), Str("type"),
                             Str("echo"), Str("priority"), Hex("d0 05"), Str("max_attempts"),
                             Hex("d3 00 00 00 00 00 00 00 09")})});
  REQUIRE(wide.has_value());
  const auto& w = std::get<SubmitRequest>(std::get<ClientRequest>(*wide));
  CHECK(w.rid == 1);
  CHECK(w.job.priority == 5u);
  CHECK(w.job.max_attempts == 9u);

  // The largest values: uint32 fields take 2^32-1, uint64 fields 2^64-1.
  auto largest = Decode({kClient, Code(0x01),
                         MapOf({Str("rid"), Uint(~0ull), Str("type"), Str("echo"), Str("priority"),
                                Uint(0xffffffffull)})});
  REQUIRE(largest.has_value());
  CHECK(std::get<SubmitRequest>(std::get<ClientRequest>(*largest)).rid == ~0ull);

  // An optional field that is nil counts as absent.
  auto nil = Decode({kClient, Code(0x01),
                     MapOf({Str("rid"), Uint(1), Str("type"), Str("echo"), Str("key"), kNil})});
  REQUIRE(nil.has_value());
  CHECK_FALSE(std::get<SubmitRequest>(std::get<ClientRequest>(*nil)).key.has_value());
}

TEST_CASE("a decoded message owns its strings: its body and later decodes leave it intact") {
  // Strings are read in place from the body and the parser's memory is reused from one message to
  // the next, so the decoded values must be copies. The frames here are freed once Decode returns
  // (a body this large goes back to the system at once).
  auto first = Decode({kClient, Code(0x01),
                       MapOf({Str("rid"), Uint(1), Str("type"), Str("echo"), Str("payload"),
                              Str(std::string(1u << 20, 'p')), Str("key"), Str("k-1")})});
  REQUIRE(first.has_value());
  // A small body after a large one, then one with many fields, on the same thread.
  auto second = Decode({kClient, Code(0x02), MapOf({Str("rid"), Uint(2), Str("id"), Str("j-9")})});
  auto third = Decode({kClient, Code(0x01),
                       MapOf({Str("rid"), Uint(3), Str("type"), Str("echo"), Str("priority"),
                              Uint(4), Str("timeout_ms"), Uint(5), Str("max_attempts"), Uint(6),
                              Str("backoff_ms"), Uint(7), Str("zone"), Str("eu")})});
  REQUIRE(second.has_value());
  REQUIRE(third.has_value());
  const auto& submit = std::get<SubmitRequest>(std::get<ClientRequest>(*first));
  CHECK(submit.job.type == "echo");
  CHECK(submit.job.payload == std::string(1u << 20, 'p'));
  CHECK(submit.key == "k-1");
  CHECK(std::get<ClientRequest>(*second) == ClientRequest{StatusRequest{.rid = 2, .id = "j-9"}});
  const auto& many = std::get<SubmitRequest>(std::get<ClientRequest>(*third));
  CHECK(many.job.priority == 4u);
  CHECK(many.job.timeout_ms == 5u);
  CHECK(many.job.max_attempts == 6u);
  CHECK(many.job.backoff_ms == 7u);
  CHECK(many.job.zone == "eu");
  CHECK_FALSE(many.job.max_backoff_ms.has_value());
}

TEST_CASE("a client refuses replies that are not well-formed Claw replies") {
  const ClientReply ok{.command = ClientCommand::kPing, .rid = 1};
  const Frames frames = Encode(ok);
  const std::string command = Code(frames.command);
  auto decode = [](std::vector<std::string> parts) {
    const std::vector<std::string_view> views(parts.begin(), parts.end());
    return DecodeClientReply(views);
  };
  CHECK(decode({kClient, command, frames.body}).has_value());
  CHECK_FALSE(decode({kWorker, command, frames.body}).has_value());
  CHECK_FALSE(decode({"CLAWC2", command, frames.body}).has_value());
  CHECK_FALSE(decode({kClient, command}).has_value());
  CHECK_FALSE(decode({kClient, Code(0x7f), frames.body}).has_value());
  CHECK_FALSE(decode({kClient, command, frames.body + kNil}).has_value());
  auto no_status = decode({kClient, command, MapOf({Str("rid"), Uint(1)})});
  REQUIRE_FALSE(no_status.has_value());
  CHECK(no_status.error().message.find("'status'") != std::string::npos);
  auto bad_job = decode({kClient, Code(0x02),
                         MapOf({Str("rid"), Uint(1), Str("status"), Uint(200), Str("job"),
                                MapOf({Str("id"), Str("j-1")})})});
  REQUIRE_FALSE(bad_job.has_value());
  CHECK(bad_job.error().message.find("'job'") != std::string::npos);
}

TEST_CASE("a worker refuses messages only a worker may send, and garbage") {
  auto decode = [](std::vector<std::string> parts) {
    const std::vector<std::string_view> views(parts.begin(), parts.end());
    return DecodeWorkerMessage(views);
  };
  for (const WorkerMessage& m :
       {WorkerMessage{Ready{.worker_id = "w1", .types = {"echo"}}},
        WorkerMessage{ProgressReport{.id = "j-1", .lease = 1}},
        WorkerMessage{Done{.id = "j-1", .lease = 1}}, WorkerMessage{Failed{.id = "j-1"}}}) {
    CAPTURE(Name(CommandOf(m)));
    CHECK_FALSE(decode(FramesOf(Encode(m))).has_value());
  }
  const Frames welcome = Encode(WorkerMessage{Welcome{1000, 3, 1}});
  CHECK(decode(FramesOf(welcome)).has_value());
  CHECK_FALSE(decode({kClient, Code(welcome.command), welcome.body}).has_value());
  CHECK_FALSE(decode({kWorker, Code(welcome.command), Hex("c1")}).has_value());
  auto missing = decode({kWorker, Code(welcome.command), MapOf({Str("heartbeat_ms"), Uint(5)})});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("'liveness'") != std::string::npos);
}

}  // namespace
}  // namespace claw::wire
