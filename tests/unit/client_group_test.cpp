// Groups in claw-client without a broker: reading members from JSON lines, the group's text,
// JSON and progress line, how jobs show their group and dependencies, and group exit codes.
#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "client/exit_codes.hpp"
#include "client/group_source.hpp"
#include "client/json_format.hpp"
#include "client/text_format.hpp"

namespace claw::client {
namespace {

using std::chrono::milliseconds;

wire::JobInfo Member(std::string id, wire::JobState state) {
  wire::JobInfo job;
  job.id = std::move(id);
  job.type = "wc.map";
  job.state = state;
  job.attempts = 1;
  job.max_attempts = 3;
  job.group = "g-4";
  return job;
}

wire::GroupInfo Group() {
  wire::GroupInfo group{.id = "g-4", .total = 4, .settled = 3};
  for (const auto& state : wire::kJobStates) group.counts[std::string(state.name)] = 0;
  group.counts["succeeded"] = 2;
  group.counts["dead"] = 1;
  group.counts["running"] = 1;
  group.follow_up = Member("j-5", wire::JobState::kWaiting);
  group.follow_up->type = "wc.reduce";
  group.follow_up->follow_up = true;
  group.follow_up->after = {"j-1", "j-2", "j-3", "j-4"};
  group.follow_up->after_policy = wire::DependencyPolicy::kAllSettled;
  return group;
}

TEST_CASE("a member line sets every field it names and takes the defaults for the rest") {
  const MemberDefaults defaults{
      .type = "map", .priority = 2, .timeout_ms = 1000, .max_attempts = 4};
  auto spec =
      ParseMemberLine(R"({"payload": "text", "priority": 9, "timeout": "30s", "backoff": "2s",)"
                      R"( "max_backoff": "1m", "delay": "5s", "at": "2026-12-01T10:00:00Z",)"
                      R"( "after": ["j-3", "#0"], "after_policy": "all_settled"})",
                      defaults);
  REQUIRE(spec);
  CHECK(spec->type == "map");
  CHECK(spec->payload == "text");
  CHECK(spec->priority == 9u);
  CHECK(spec->timeout_ms == 30000u);
  CHECK(spec->max_attempts == 4u);
  CHECK(spec->backoff_ms == 2000u);
  CHECK(spec->max_backoff_ms == 60000u);
  CHECK(spec->delay_ms == 5000u);
  CHECK(spec->run_at == 1796119200000u);
  CHECK(spec->after == std::vector<std::string>{"j-3", "#0"});
  CHECK(spec->after_policy == wire::DependencyPolicy::kAllSettled);
}

TEST_CASE("a member line's priority may be a name and its type overrides the default") {
  auto spec = ParseMemberLine(R"({"type": "reduce", "priority": "critical"})",
                              MemberDefaults{.type = "map"});
  REQUIRE(spec);
  CHECK(spec->type == "reduce");
  CHECK(spec->priority == 9u);
}

TEST_CASE("bad member lines are refused with what is wrong") {
  const auto error = [](std::string_view line) {
    auto spec = ParseMemberLine(line, MemberDefaults{});
    REQUIRE_FALSE(spec);
    return spec.error().message;
  };
  CHECK(error("not json") == "not valid JSON");
  CHECK(error("[1]") == "not a JSON object");
  CHECK(error(R"({"payload": "x"})") == "no type (give one per line, or --type)");
  CHECK(error(R"({"type": "t", "priority": 10})") ==
        "priority must be low, normal, high, critical or 0-9");
  CHECK(error(R"({"type": "t", "timeout": 30})") == "timeout must be a string");
  CHECK(error(R"({"type": "t", "max_attempts": 0})") == "max_attempts must be a whole number >= 1");
  CHECK(error(R"({"type": "t", "after": "j-1"})").starts_with("after must be a list"));
  CHECK(error(R"({"type": "t", "after_policy": "maybe"})") ==
        "after_policy must be all_succeeded or all_settled");
  CHECK(error(R"({"type": "t", "colour": "red"})") == "unknown key 'colour'");
  CHECK(error(R"({"type": "t", "payload": {"a": 1}})") == "payload must be a string");
}

TEST_CASE("a member line places its job, and takes the placement defaults it leaves unset") {
  const MemberDefaults defaults{.type = "render",
                                .hash_key = "all",
                                .required = {{"gpu", "true"}},
                                .zone = "eu-1",
                                .locality = wire::Locality::kCrossZone,
                                .max_rtt_ms = 50};
  auto own = ParseMemberLine(
      R"({"hash_key": "user-7", "requires": {"gpu": false, "disk": "ssd"}, "zone": "us-2",)"
      R"( "locality": "same-zone", "max_rtt": "20ms"})",
      defaults);
  REQUIRE(own);
  CHECK(own->hash_key == "user-7");
  CHECK(own->required == wire::Labels{{"disk", "ssd"}, {"gpu", "false"}});
  CHECK(own->zone == "us-2");
  CHECK(own->locality == wire::Locality::kSameZone);
  CHECK(own->max_rtt_ms == 20u);
  auto bare = ParseMemberLine("{}", defaults);
  REQUIRE(bare);
  CHECK(bare->hash_key == "all");
  CHECK(bare->required == wire::Labels{{"gpu", "true"}});
  CHECK(bare->zone == "eu-1");
  CHECK(bare->locality == wire::Locality::kCrossZone);
  CHECK(bare->max_rtt_ms == 50u);
  auto nothing = ParseMemberLine("{}", MemberDefaults{.type = "render"});
  REQUIRE(nothing);
  CHECK_FALSE(nothing->hash_key);
  CHECK(nothing->required.empty());
  CHECK_FALSE(nothing->locality);
  CHECK_FALSE(nothing->max_rtt_ms);
}

TEST_CASE("bad placement in a member line is refused with what is wrong") {
  const auto error = [](std::string_view line) {
    auto spec = ParseMemberLine(line, MemberDefaults{.type = "t"});
    REQUIRE_FALSE(spec);
    return spec.error().message;
  };
  CHECK(error(R"({"requires": ["gpu"]})") == R"(requires must be an object, e.g. {"gpu": true})");
  CHECK(error(R"({"requires": {"gpu": 1}})") ==
        "requires: the value of 'gpu' must be a string or true/false");
  CHECK(error(R"({"requires": {"a=b": "c"}})").starts_with("requires: bad label 'a=b'"));
  CHECK(error(R"({"locality": "near"})") ==
        "unknown locality 'near': expected same-zone, cross-zone or any");
  CHECK(error(R"({"max_rtt": 20})") == "max_rtt must be a string");
  CHECK(error(R"({"max_rtt": "20"})").starts_with("max_rtt: "));
  CHECK(error(R"({"zone": 3})") == "zone must be a string");
  CHECK(error(R"({"zone": "eu west"})") == "zone must be 1-128 bytes of A-Z a-z 0-9 _ . : -");
  CHECK(error(R"({"type": "a/b"})") == "type must be 1-128 bytes of A-Z a-z 0-9 _ . : -");
  CHECK(error(R"({"hash_key": true})") == "hash_key must be a string");
}

TEST_CASE("member lines skip blank lines and name the line of an error") {
  auto members = ParseMemberLines("{\"type\": \"a\"}\n\n  \r\n{\"type\": \"b\"}", MemberDefaults{});
  REQUIRE(members);
  REQUIRE(members->size() == 2);
  CHECK((*members)[1].type == "b");
  auto bad = ParseMemberLines("{\"type\": \"a\"}\n\n{\"type\": 3}\n", MemberDefaults{});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "line 3: type must be a string");
}

TEST_CASE("a missing source is an error naming it") {
  auto members = ReadGroupSource("/nonexistent/claw-members", MemberDefaults{});
  REQUIRE_FALSE(members);
  CHECK(members.error().message.starts_with("cannot read '/nonexistent/claw-members'"));
}

TEST_CASE("a job's JSON carries its group, follow-up flag and dependencies") {
  const auto json = JobToJson(Group().follow_up.value());
  CHECK(json["group"] == "g-4");
  CHECK(json["follow_up"] == true);
  CHECK(json["after"] == nlohmann::json{"j-1", "j-2", "j-3", "j-4"});
  CHECK(json["after_policy"] == "all_settled");
  CHECK(json["state"] == "waiting");
  const auto plain = JobToJson(Member("j-1", wire::JobState::kQueued));
  CHECK_FALSE(plain.contains("follow_up"));
  CHECK_FALSE(plain.contains("after"));
}

TEST_CASE("the status listing shows the group and what the job waits for") {
  const std::string text = FormatJob(Group().follow_up.value());
  CHECK(text.find("state:    waiting\n") != std::string::npos);
  CHECK(text.find("group:    g-4 follow-up\n") != std::string::npos);
  CHECK(text.find("after:    j-1, j-2, j-3, j-4 (all_settled)\n") != std::string::npos);
}

TEST_CASE("the list table gets GROUP and AFTER columns only when a job has them") {
  setenv("TZ", "UTC", 1);
  tzset();
  std::vector<wire::JobInfo> plain = {Member("j-1", wire::JobState::kQueued)};
  plain[0].group.clear();
  const std::vector<wire::JobInfo> jobs = {Group().follow_up.value(), plain[0]};
  const std::string table = FormatJobTable(jobs);
  CHECK(
      table.starts_with("ID   TYPE       STATE    PRIORITY  ATTEMPTS  UPDATED              GROUP"
                        "          AFTER            WORKER  ERROR\n"));
  CHECK(table.find("g-4 follow-up  j-1,j-2,j-3,j-4  -       -\n") != std::string::npos);
  CHECK(FormatJobTable(plain).find("GROUP") == std::string::npos);
}

TEST_CASE("the group report has the counts, the follow-up and a row per member") {
  auto group = Group();
  group.members =
      std::vector{Member("j-1", wire::JobState::kSucceeded), Member("j-2", wire::JobState::kDead)};
  (*group.members)[0].result = "the 3\nfox 1\n";
  (*group.members)[1].error = "exit code 100: bad input";
  CHECK(FormatGroup(group) ==
        "group:     g-4\n"
        "settled:   3/4\n"
        "states:    queued 0, scheduled 0, waiting 0, running 1, succeeded 2, dead 1, "
        "cancelled 0\n"
        "follow-up: j-5 wc.reduce waiting\n"
        "\n"
        "ID   STATE      ATTEMPTS  WORKER  ERROR                     RESULT\n"
        "j-1  succeeded  1/3       -       -                         the 3 fox 1\n"
        "j-2  dead       1/3       -       exit code 100: bad input  -\n");
}

TEST_CASE("a group's JSON has the protocol's fields, follow_up null when it has none") {
  auto group = Group();
  const auto json = GroupToJson(group);
  CHECK(json["id"] == "g-4");
  CHECK(json["total"] == 4);
  CHECK(json["settled"] == 3);
  CHECK(json["counts"]["dead"] == 1);
  CHECK_FALSE(json.contains("members"));
  CHECK(json["follow_up"]["id"] == "j-5");
  group.follow_up.reset();
  group.members.emplace();
  CHECK(GroupToJson(group)["follow_up"].is_null());
  CHECK(GroupToJson(group)["members"].empty());
}

TEST_CASE("the group progress line fills the bar by settled members and fits the width") {
  const auto group = Group();
  const std::string line = RenderGroupProgressLine(group, 100, milliseconds(3200));
  CHECK(line.size() == 100);
  CHECK(
      line.starts_with("[###############-----] 3/4 running 1, succeeded 2, dead 1, then j-5 "
                       "waiting  g-4 3.2s"));
  const std::string narrow = RenderGroupProgressLine(group, 30, milliseconds(0));
  CHECK(narrow.size() == 30);
  CHECK(narrow.starts_with("[###############-----] 3/4"));
  CHECK(FormatGroupUpdateLine(group, milliseconds(1500)) ==
        "g-4 3/4 settled (running 1, succeeded 2, dead 1), follow-up j-5 waiting (1.5s)");
}

TEST_CASE("a group's exit code is its follow-up's, else dead before cancelled before OK") {
  auto group = Group();
  group.follow_up->state = wire::JobState::kSucceeded;
  CHECK(ExitForGroup(group) == wire::ClientExit::kOk);
  group.follow_up->state = wire::JobState::kCancelled;
  CHECK(ExitForGroup(group) == wire::ClientExit::kJobCancelled);
  group.follow_up.reset();
  CHECK(ExitForGroup(group) == wire::ClientExit::kJobDead);
  group.counts["dead"] = 0;
  group.counts["cancelled"] = 2;
  CHECK(ExitForGroup(group) == wire::ClientExit::kJobCancelled);
  group.counts["cancelled"] = 0;
  CHECK(ExitForGroup(group) == wire::ClientExit::kOk);
}

}  // namespace
}  // namespace claw::client
