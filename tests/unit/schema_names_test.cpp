// Names people type and read: job states, status codes, command names and priorities (checked
// against schema/protocol.yaml), durations ("500ms", "30s", "5m"), and the rules for job types,
// zones, worker ids and labels.
#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <string>

#include "schema/codec.hpp"
#include "schema/duration.hpp"
#include "schema/names.hpp"

namespace claw::wire {
namespace {

YAML::Node LoadProtocol() {
  YAML::Node root;
  REQUIRE_NOTHROW(root = YAML::LoadFile(CLAW_SOURCE_DIR "/schema/protocol.yaml"));
  return root;
}

TEST_CASE("every job state in protocol.yaml parses and names back to itself") {
  const YAML::Node states = LoadProtocol()["job_states"];
  REQUIRE(states.size() == kJobStates.size());
  for (const auto& node : states) {
    const auto name = node["name"].as<std::string>();
    CAPTURE(name);
    const auto state = ParseJobState(name);
    REQUIRE(state.has_value());
    CHECK(Name(*state) == name);
  }
  CHECK_FALSE(ParseJobState("Queued").has_value());
  CHECK_FALSE(ParseJobState("").has_value());
  CHECK_FALSE(ParseJobState("done").has_value());
}

TEST_CASE("succeeded, dead and cancelled are the final states") {
  CHECK(IsFinal(JobState::kSucceeded));
  CHECK(IsFinal(JobState::kDead));
  CHECK(IsFinal(JobState::kCancelled));
  CHECK_FALSE(IsFinal(JobState::kQueued));
  CHECK_FALSE(IsFinal(JobState::kScheduled));
  CHECK_FALSE(IsFinal(JobState::kRunning));
  CHECK_FALSE(IsFinal(JobState::kWaiting));
  CHECK(kUnfinishedStates == std::array{JobState::kQueued, JobState::kScheduled, JobState::kWaiting,
                                        JobState::kRunning});
}

TEST_CASE("status codes and command codes carry the names protocol.yaml gives them") {
  const YAML::Node root = LoadProtocol();
  for (const auto& node : root["status_codes"]) {
    CAPTURE(node["name"].as<std::string>());
    CHECK(Name(static_cast<StatusCode>(node["code"].as<int>())) == node["name"].as<std::string>());
  }
  for (const auto& node : root["client"]["commands"]) {
    CHECK(Name(static_cast<ClientCommand>(node["code"].as<int>())) ==
          node["name"].as<std::string>());
  }
  for (const auto& node : root["worker"]["commands"]) {
    CHECK(Name(static_cast<WorkerCommand>(node["code"].as<int>())) ==
          node["name"].as<std::string>());
  }
  CHECK(Name(static_cast<StatusCode>(299)) == "UNKNOWN");
}

TEST_CASE("priorities parse from their names and from the digits 0-9") {
  const YAML::Node priorities = LoadProtocol()["priorities"];
  for (const auto& entry : priorities["names"]) {
    const auto name = entry.first.as<std::string>();
    const auto value = entry.second.as<std::uint32_t>();
    CAPTURE(name);
    CHECK(ParsePriority(name) == value);
    CHECK(PriorityName(value) == name);
  }
  for (std::uint32_t p = 0; p <= 9; ++p) CHECK(ParsePriority(std::to_string(p)) == p);
  CHECK(PriorityName(3) == "3");
  CHECK(priorities["min"].as<int>() == 0);
  CHECK(priorities["max"].as<int>() == 9);
}

TEST_CASE("a priority out of 0-9 or an unknown name is refused") {
  for (const char* bad : {"10", "-1", "urgent", "", " 5", "5 ", "05", "Normal", "+5", "9.0"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParsePriority(bad).has_value());
  }
}

TEST_CASE("durations parse with their unit") {
  CHECK(ParseDuration("500ms") == 500);
  CHECK(ParseDuration("30s") == 30'000);
  CHECK(ParseDuration("5m") == 300'000);
  CHECK(ParseDuration("1h") == 3'600'000);
  CHECK(ParseDuration("2d") == 172'800'000);
  CHECK(ParseDuration("0") == 0);
  CHECK(ParseDuration("0s") == 0);
}

TEST_CASE("a duration without a unit, with a bad unit, negative, empty or too long is refused") {
  for (const char* bad : {"30", "5x", "-1s", "", "s", "ms", "1.5s", "1 s", "1S", "10sm",
                          "9223372036854775807s", "99999999999999999999ms"}) {
    CAPTURE(bad);
    auto parsed = ParseDuration(bad);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().message.find("'" + std::string(bad) + "'") != std::string::npos);
  }
  CHECK(ParseDuration("9223372036854775807s").error().message.find("too long") !=
        std::string::npos);
  // At most 100 years, so that now + the duration cannot overflow a clock.
  CHECK(ParseDuration("36500d") == kMaxDurationMs);
  CHECK(ParseDuration("36501d").error().message ==
        "duration '36501d' is too long (at most 36500d)");
  CHECK(!ParseDuration(std::to_string(kMaxDurationMs + 1) + "ms").has_value());
}

TEST_CASE("durations format in the largest unit that is exact") {
  CHECK(FormatDuration(0) == "0ms");
  CHECK(FormatDuration(500) == "500ms");
  CHECK(FormatDuration(1500) == "1500ms");
  CHECK(FormatDuration(30'000) == "30s");
  CHECK(FormatDuration(300'000) == "5m");
  CHECK(FormatDuration(3'600'000) == "1h");
  CHECK(FormatDuration(172'800'000) == "2d");
  for (const std::int64_t ms : {1, 999, 1000, 61'000, 90'000, 86'400'000, 123'456'789}) {
    CAPTURE(ms);
    CHECK(ParseDuration(FormatDuration(ms)) == ms);
  }
}

TEST_CASE("a name is 1 to max bytes of A-Z a-z 0-9 _ . : -") {
  CHECK(IsName("img.resize:v2-fast_1", 128));
  CHECK(IsName(std::string(128, 'a'), 128));
  CHECK_FALSE(IsName(std::string(129, 'a'), 128));
  CHECK_FALSE(IsName("", 128));
  CHECK_FALSE(IsName("has space", 128));
  CHECK_FALSE(IsName("a/b", 128));
}

TEST_CASE("CheckName gives IsName's rule as a message naming the field, not the text") {
  CHECK(CheckName("zone", "eu-west-1", 128).has_value());
  const Status bad = CheckName("zone", "has space", 8);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "zone must be 1-8 bytes of A-Z a-z 0-9 _ . : -");
  CHECK_FALSE(CheckName("zone", "", 8).has_value());
  CHECK_FALSE(CheckName("zone", "123456789", 8).has_value());
}

TEST_CASE("CheckJobNames checks a job's type, and its zone only when it has one") {
  JobSpec spec;
  spec.type = "resize";
  CHECK(CheckJobNames(spec).has_value());
  spec.zone = "eu-1";
  CHECK(CheckJobNames(spec).has_value());
  spec.zone = "eu 1";
  CHECK(CheckJobNames(spec).error().message.starts_with("zone must be 1-128 bytes"));
  spec.type = "";
  CHECK(CheckJobNames(spec).error().message.starts_with("type must be 1-128 bytes"));
}

TEST_CASE("a label's key is non-empty without '=', and neither key nor value holds a newline") {
  CHECK(CheckLabel("gpu", "true"));
  CHECK(CheckLabel("tag", ""));
  CHECK(CheckLabel("expr", "a=b"));
  CHECK(CheckLabel("", "x").error().message == "the key is empty");
  CHECK(CheckLabel("a=b", "c").error().message == "the key holds '='");
  CHECK(CheckLabel("a\nb", "c").error().message == "no newlines");
  CHECK(CheckLabel("a", "b\nc").error().message == "no newlines");
}

TEST_CASE("a label parses as key=value at the first '='") {
  CHECK(ParseLabel("zone=eu-1") == std::pair<std::string, std::string>{"zone", "eu-1"});
  CHECK(ParseLabel("expr=a=b") == std::pair<std::string, std::string>{"expr", "a=b"});
  CHECK(ParseLabel("tag=") == std::pair<std::string, std::string>{"tag", ""});
  CHECK(ParseLabel("zone").error().message == "expected key=value");
  CHECK(ParseLabel("=x").error().message == "the key is empty");
  CHECK(ParseLabel("a=b\nc").error().message == "no newlines");
}

}  // namespace
}  // namespace claw::wire
