// Workflows end to end with the real programs: a group with a follow-up (MapReduce), the
// all-succeeded variant, a DAG built with `submit --after`, a delayed job across a broker
// restart, and the word-count example script checked against a count made in C++.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/cluster.hpp"

namespace claw::testing {
namespace {

const std::vector<std::string> kFastHeartbeat = {"--heartbeat", "200ms"};

// A map step that fails permanently (exit 100) for a payload starting with "fail".
constexpr const char* kMap =
    "p=$(cat); case \"$p\" in fail*) echo \"refused $p\" >&2; exit 100;; esac; echo \"mapped $p\"";

// A reduce step that describes its inputs: how many JSON lines per state, how many files of
// each kind, and the first input's id.
constexpr const char* kReduce =
    "touch \"$REDUCE_MARK\"; "
    "printf 'succeeded %s dead %s results %s errors %s first %s\\n' "
    "\"$(grep -c '\"state\":\"succeeded\"' \"$CLAW_INPUTS\")\" "
    "\"$(grep -c '\"state\":\"dead\"' \"$CLAW_INPUTS\")\" "
    "\"$(ls \"$CLAW_INPUTS_DIR\" | grep -c '[.]result$')\" "
    "\"$(ls \"$CLAW_INPUTS_DIR\" | grep -c '[.]error$')\" "
    "\"$(head -n 1 \"$CLAW_INPUTS\" | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/')\"";

// A file of `count` members, every `fail_every`-th of which fails.
std::string WriteMembers(const Cluster& c, int count, int fail_every) {
  const std::string path = c.Path("members.jsonl");
  std::ofstream file(path);
  for (int i = 1; i <= count; ++i) {
    const std::string payload = (i % fail_every == 0 ? "fail " : "ok ") + std::to_string(i);
    file << R"({"payload": ")" << payload << R"(", "max_attempts": 1})" << '\n';
  }
  return path;
}

std::int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_CASE("a group of 100 map jobs, some failing permanently, still runs its reduce with all") {
  Cluster c(kFastHeartbeat);
  c.StartBroker();
  const std::string members = WriteMembers(c, 100, 10);
  c.StartWorker("mapper", "m.map", kMap, {"--capacity", "8"});
  c.StartWorker("reducer", "m.reduce",
                std::string("REDUCE_MARK=") + c.Path("reduced") + "; " + kReduce,
                {"--label", "role=coordinator"});
  auto run = c.Client({"group", "submit", members, "--type", "m.map", "--then", "m.reduce",
                       "--wait", "--wait-timeout", "60s"});
  CHECK_MESSAGE(run.code == 0, run.err);
  CHECK(run.out == "succeeded 90 dead 10 results 90 errors 10 first j-1\n");
  const std::string group = run.err.substr(0, run.err.find('\n'));
  const auto status = c.Group(group);
  CHECK(status["total"] == 100);
  CHECK(status["settled"] == 100);
  CHECK(status["counts"]["succeeded"] == 90);
  CHECK(status["counts"]["dead"] == 10);
  REQUIRE(status["members"].size() == 100);
  CHECK(status["members"][9]["state"] == "dead");
  CHECK(status["members"][9]["error"] == "exit code 100: refused fail 10");
  CHECK(status["members"][0]["result"] == "mapped ok 1\n");
  CHECK(status["follow_up"]["state"] == "succeeded");
  CHECK(status["follow_up"]["worker"] == "reducer");
  CHECK(status["follow_up"]["follow_up"] == true);
  CHECK(status["follow_up"]["after_policy"] == "all_settled");
}

TEST_CASE("a group whose follow-up needs all to succeed cancels it when one member dies") {
  Cluster c(kFastHeartbeat);
  c.StartBroker();
  const std::string members = WriteMembers(c, 10, 5);
  c.StartWorker("mapper", "m.map", kMap, {"--capacity", "4"});
  c.StartWorker("reducer", "m.reduce",
                std::string("REDUCE_MARK=") + c.Path("reduced") + "; " + kReduce);
  const std::string group = c.GroupSubmit(
      {members, "--type", "m.map", "--then", "m.reduce", "--then-policy", "all_succeeded"});
  auto wait = c.Client({"group", "wait", group, "--timeout", "60s"});
  CHECK(wait.Is(wire::ClientExit::kJobCancelled));  // the follow-up's outcome
  CHECK(wait.out.empty());
  CHECK(wait.err.find("the follow-up") != std::string::npos);
  const auto status = c.Group(group);
  CHECK(status["settled"] == 10);
  CHECK(status["counts"]["dead"] == 2);
  CHECK(status["counts"]["succeeded"] == 8);
  CHECK(status["follow_up"]["state"] == "cancelled");
  CHECK(status["follow_up"]["attempts"] == 0);
  CHECK_FALSE(std::filesystem::exists(c.Path("reduced")));
}

TEST_CASE("a three-level DAG submitted with --after runs level by level") {
  Cluster c(kFastHeartbeat);
  c.StartBroker();
  const std::string log = c.Path("order.log");
  // Level-one jobs take a while, so that a dependent started early would show in the log.
  const std::string exec = "echo \"start $CLAW_JOB_ID\" >> " + log +
                           "; case \"$CLAW_JOB_TYPE\" in dag.a) sleep 0.5;; esac; "
                           "n=0; [ -n \"$CLAW_INPUTS\" ] && n=$(wc -l < \"$CLAW_INPUTS\"); "
                           "echo \"end $CLAW_JOB_ID\" >> " +
                           log + "; echo \"$CLAW_JOB_ID saw $n inputs\"";
  const std::string a1 = c.Submit({"--type", "dag.a"});
  const std::string a2 = c.Submit({"--type", "dag.a"});
  const std::string b = c.Submit({"--type", "dag.b", "--after", a1, "--after", a2});
  const std::string d = c.Submit({"--type", "dag.c", "--after", b});
  CHECK(c.State(b) == "waiting");
  CHECK(c.State(d) == "waiting");
  const auto listed = c.Json({"list"});
  const auto d_row =
      std::find_if(listed.begin(), listed.end(), [&](const auto& job) { return job["id"] == d; });
  REQUIRE(d_row != listed.end());
  CHECK((*d_row)["after"] == nlohmann::json{b});
  c.StartWorker("w1", "dag.a,dag.b,dag.c", exec, {"--capacity", "4"});
  auto wait = c.Client({"wait", d, "--timeout", "60s"});
  CHECK(wait.code == 0);
  CHECK(wait.out == d + " saw 1 inputs\n");
  CHECK(c.Client({"wait", b}).out == b + " saw 2 inputs\n");

  std::vector<std::string> lines;
  std::istringstream text(ReadFile(log));
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  const auto at = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) - lines.begin();
  };
  REQUIRE(lines.size() == 8);
  CHECK(at("start " + b) > at("end " + a1));
  CHECK(at("start " + b) > at("end " + a2));
  CHECK(at("start " + d) > at("end " + b));
}

TEST_CASE("a delayed job does not run early and survives a broker restart") {
  Cluster c(kFastHeartbeat);
  c.StartBroker();
  c.StartWorker("w1", "later", "date +%s%3N");
  const std::int64_t before = WallMs();
  const std::string id = c.Submit({"--type", "later", "--delay", "2s"});
  const auto scheduled = c.Json({"status", id});
  CHECK(scheduled["state"] == "scheduled");
  CHECK(scheduled["run_at"].get<std::int64_t>() >= before + 2000);
  c.KillBroker(SIGKILL);
  c.StartBroker();
  auto wait = c.Client({"wait", id, "--timeout", "60s"});
  REQUIRE_MESSAGE(wait.code == 0, wait.err);
  const std::int64_t ran_at = std::stoll(wait.out);
  CHECK(ran_at >= before + 2000);
  CHECK(c.Json({"status", id})["attempts"] == 1);
}

// Words as the example defines them: runs of ASCII letters, lower-cased.
std::map<std::string, long> CountWords(const std::filesystem::path& folder) {
  std::map<std::string, long> counts;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    std::string word;
    for (const char c : ReadFile(entry.path().string()) + " ") {
      if (std::isalpha(static_cast<unsigned char>(c)) != 0 &&
          static_cast<unsigned char>(c) < 0x80) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else if (!word.empty()) {
        ++counts[word];
        word.clear();
      }
    }
  }
  return counts;
}

TEST_CASE("the word-count example's output matches a count made another way") {
  const std::string root = CLAW_SOURCE_DIR;
  auto run = Run({"/bin/bash", root + "/scripts/wordcount.sh"}, "", std::chrono::seconds(120),
                 {{"CLAW_BIN_DIR", CLAW_BIN_DIR}});
  REQUIRE_MESSAGE(run.code == 0, run.out << run.err);
  CHECK(run.out.find("\nOK: ") != std::string::npos);
  const std::string header = "== the word count (the follow-up's result)\n";
  const auto begin = run.out.find(header);
  REQUIRE(begin != std::string::npos);
  const auto end = run.out.find("\n== ", begin + header.size());
  std::istringstream lines(run.out.substr(begin + header.size(), end - begin - header.size()));
  std::map<std::string, long> printed;
  std::string word;
  long count = 0;
  while (lines >> word >> count) printed[word] = count;
  const auto expected = CountWords(root + "/examples/wordcount/texts");
  CHECK(expected.size() > 50);
  CHECK(printed == expected);
}

}  // namespace
}  // namespace claw::testing
