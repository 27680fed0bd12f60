// What claw-client prints: JSON objects, text listings and tables, the progress line, exit
// codes and the --payload argument. All pure functions, tested without a broker.
#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "client/exit_codes.hpp"
#include "client/json_format.hpp"
#include "client/payload_arg.hpp"
#include "client/placement_arg.hpp"
#include "client/text_format.hpp"

namespace claw::client {
namespace {

using std::chrono::milliseconds;
using namespace std::string_literals;

// Times in these tests are rendered in UTC, whatever the machine's zone.
void UseUtc() {
  setenv("TZ", "UTC", 1);
  tzset();
}

wire::JobInfo RunningJob() {
  wire::JobInfo job;
  job.id = "j-12";
  job.type = "resize";
  job.state = wire::JobState::kRunning;
  job.priority = 7;
  job.attempts = 1;
  job.max_attempts = 5;
  job.timeout_ms = 30000;
  job.backoff_ms = 1000;
  job.max_backoff_ms = 300000;
  job.created_at = 1700000000000;
  job.updated_at = 1700000003500;
  job.worker = "w-1";
  job.progress = wire::Progress{.percent = 50, .message = "downloading"};
  return job;
}

TEST_CASE("a job's JSON has the protocol field names, with result and error null when absent") {
  const auto json = JobToJson(RunningJob());
  CHECK(json["id"] == "j-12");
  CHECK(json["type"] == "resize");
  CHECK(json["state"] == "running");
  CHECK(json["priority"] == 7);
  CHECK(json["attempts"] == 1);
  CHECK(json["max_attempts"] == 5);
  CHECK(json["timeout_ms"] == 30000);
  CHECK(json["backoff_ms"] == 1000);
  CHECK(json["max_backoff_ms"] == 300000);
  CHECK(json["created_at"] == 1700000000000);
  CHECK(json["updated_at"] == 1700000003500);
  CHECK(json["worker"] == "w-1");
  CHECK(json["progress"] == nlohmann::json{{"percent", 50}, {"message", "downloading"}});
  CHECK(json.contains("result"));
  CHECK(json["result"].is_null());
  CHECK(json.contains("error"));
  CHECK(json["error"].is_null());
  CHECK_FALSE(json.contains("key"));
  CHECK_FALSE(json.contains("run_at"));
  CHECK_FALSE(json.contains("payload"));
}

TEST_CASE("a job's JSON carries UTF-8 bytes as strings and other bytes as base64") {
  auto job = RunningJob();
  job.state = wire::JobState::kSucceeded;
  job.result = "h\xc3\xa9llo";
  job.payload = "\x00\xff\x01"s;
  job.key = "k-1";
  job.run_at = 1700000009000;
  job.error = "first try failed";
  const auto json = JobToJson(job);
  CHECK(json["result"] == "h\xc3\xa9llo");
  CHECK_FALSE(json.contains("result_base64"));
  CHECK(json["payload"].is_null());
  CHECK(json["payload_base64"] == "AP8B");
  CHECK(json["key"] == "k-1");
  CHECK(json["run_at"] == 1700000009000);
  CHECK(json["error"] == "first try failed");

  job.result = "\xff\xfe"s;
  const auto binary = JobToJson(job);
  CHECK(binary["result"].is_null());
  CHECK(binary["result_base64"] == "//4=");
}

TEST_CASE("a progress without a percent has percent null in JSON") {
  auto job = RunningJob();
  job.progress = wire::Progress{.message = "warming up"};
  CHECK(JobToJson(job)["progress"]["percent"].is_null());
}

TEST_CASE("jobs become a JSON array and the cluster an object with the protocol names") {
  const std::vector<wire::JobInfo> jobs = {RunningJob(), RunningJob()};
  CHECK(JobsToJson(jobs).size() == 2);
  CHECK(JobsToJson({}).is_array());

  wire::ClusterInfo cluster;
  cluster.role = "standalone";
  cluster.epoch = 3;
  cluster.workers_total = 2;
  cluster.workers_active = 1;
  cluster.capacity_total = 8;
  cluster.capacity_in_use = 1;
  cluster.jobs = {{"queued", 4}, {"running", 1}};
  cluster.queues = {{.type = "resize", .priority = 7, .depth = 4}};
  cluster.workers = {{.id = "w-1",
                      .types = {"resize"},
                      .capacity = 4,
                      .in_use = 1,
                      .labels = {{"zone", "eu-1"}},
                      .last_seen_ms = 300}};
  cluster.malformed = 2;
  const auto json = ClusterToJson(cluster);
  CHECK(json["role"] == "standalone");
  CHECK(json["epoch"] == 3);
  CHECK(json["workers_total"] == 2);
  CHECK(json["workers_active"] == 1);
  CHECK(json["capacity_total"] == 8);
  CHECK(json["capacity_in_use"] == 1);
  CHECK(json["jobs"]["queued"] == 4);
  CHECK(json["queues"][0] == nlohmann::json{{"type", "resize"}, {"priority", 7}, {"depth", 4}});
  CHECK(json["workers"][0]["labels"]["zone"] == "eu-1");
  CHECK(json["workers"][0]["types"] == nlohmann::json{"resize"});
  CHECK(json["workers"][0]["last_seen_ms"] == 300);
  CHECK(json["malformed"] == 2);
}

TEST_CASE("base64 follows RFC 4648's test vectors") {
  CHECK(Base64("") == "");
  CHECK(Base64("f") == "Zg==");
  CHECK(Base64("fo") == "Zm8=");
  CHECK(Base64("foo") == "Zm9v");
  CHECK(Base64("foob") == "Zm9vYg==");
  CHECK(Base64("fooba") == "Zm9vYmE=");
  CHECK(Base64("foobar") == "Zm9vYmFy");
}

TEST_CASE("UTF-8 validation refuses stray, overlong, surrogate and truncated sequences") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain ascii"));
  CHECK(IsValidUtf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(IsValidUtf8("\xff"));
  CHECK_FALSE(IsValidUtf8("\x80"));
  CHECK_FALSE(IsValidUtf8("\xc0\xaf"));
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));
  CHECK_FALSE(IsValidUtf8("\xe2\x82"));
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));
}

TEST_CASE("elapsed times read as tenths of seconds, then minutes, then hours") {
  CHECK(FormatElapsed(milliseconds(0)) == "0.0s");
  CHECK(FormatElapsed(milliseconds(3250)) == "3.2s");
  CHECK(FormatElapsed(milliseconds(59999)) == "59.9s");
  CHECK(FormatElapsed(milliseconds(65000)) == "1m05s");
  CHECK(FormatElapsed(milliseconds(7380000)) == "2h03m");
}

TEST_CASE("local times are rendered in the TZ zone") {
  UseUtc();
  CHECK(FormatLocalTime(0) == "1970-01-01 00:00:00");
  CHECK(FormatLocalTime(1700000003500) == "2023-11-14 22:13:23");
}

TEST_CASE("clipping counts characters, ends in ... and blanks control characters") {
  CHECK(Clip("short", 10) == "short");
  CHECK(Clip("a much longer text", 10) == "a much ...");
  CHECK(Clip("line\nbreak", 20) == "line break");
  CHECK(Clip("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4) == "\xc3\xa9...");
}

TEST_CASE("tables align columns two spaces apart without trailing spaces") {
  CHECK(FormatTable({"A", "LONGER"}, {{"wide cell", "x"}, {"y", ""}}) ==
        "A          LONGER\n"
        "wide cell  x\n"
        "y\n");
}

TEST_CASE("the list table shows one row per job with the error clipped") {
  UseUtc();
  auto job = RunningJob();
  job.state = wire::JobState::kDead;
  job.error = std::string(100, 'e');
  const std::vector<wire::JobInfo> jobs = {job};
  const std::string table = FormatJobTable(jobs);
  std::istringstream lines(table);
  std::string header, row, extra;
  std::getline(lines, header);
  std::getline(lines, row);
  CHECK_FALSE(std::getline(lines, extra));
  CHECK(header.starts_with("ID    TYPE    STATE  PRIORITY  ATTEMPTS  UPDATED"));
  CHECK(header.ends_with("WORKER  ERROR"));
  CHECK(row.starts_with("j-12  resize  dead   high      1/5       2023-11-14 22:13:23  w-1"));
  CHECK(row.ends_with(std::string(37, 'e') + "..."));
}

TEST_CASE("the status listing names the fields and shows the priority by name") {
  UseUtc();
  auto job = RunningJob();
  job.result = "done\n";
  CHECK(FormatJob(job) ==
        "id:       j-12\n"
        "type:     resize\n"
        "state:    running\n"
        "priority: high\n"
        "attempts: 1/5\n"
        "timeout:  30s\n"
        "backoff:  1s (max 5m)\n"
        "worker:   w-1\n"
        "progress: 50% downloading\n"
        "created:  2023-11-14 22:13:20\n"
        "updated:  2023-11-14 22:13:23\n"
        "result:   done\n");
}

TEST_CASE("the status listing shows run_at for a scheduled job and sizes for binary bytes") {
  UseUtc();
  auto job = RunningJob();
  job.state = wire::JobState::kScheduled;
  job.run_at = 1700000060000;
  job.progress.reset();
  job.worker.clear();
  job.payload = "\x00\x01\x02"s;
  job.result = "line one\nline two";
  const std::string text = FormatJob(job);
  CHECK(text.find("run_at:   2023-11-14 22:14:20\n") != std::string::npos);
  CHECK(text.find("payload:  <3 bytes>\n") != std::string::npos);
  CHECK(text.find("result:   line one\n          line two\n") != std::string::npos);
  CHECK(text.find("worker") == std::string::npos);
}

TEST_CASE("the cluster report lists every state, the queues and the workers") {
  wire::ClusterInfo cluster;
  cluster.role = "active";
  cluster.strategy = "least-loaded";
  cluster.epoch = 4;
  cluster.workers_total = 2;
  cluster.workers_active = 1;
  cluster.capacity_total = 6;
  cluster.capacity_in_use = 1;
  cluster.jobs = {{"queued", 3}, {"running", 1}};
  cluster.queues = {{.type = "resize", .priority = 7, .depth = 3}};
  cluster.workers = {{.id = "w-1",
                      .types = {"resize", "thumb"},
                      .capacity = 4,
                      .in_use = 1,
                      .labels = {{"gpu", "true"}, {"zone", "eu-1"}},
                      .last_seen_ms = 400,
                      .rtt_ms = 3},
                     {.id = "w-2",
                      .types = {"resize"},
                      .capacity = 2,
                      .last_seen_ms = 9000,
                      .breaker = "open",
                      .health = "unhealthy",
                      .draining = true}};
  CHECK(
      FormatCluster(cluster) ==
      "role:      active\n"
      "epoch:     4\n"
      "strategy:  least-loaded\n"
      "workers:   1 of 2 active\n"
      "tasks:     1 active\n"
      "capacity:  1 of 6 in use\n"
      "jobs:      queued 3, scheduled 0, waiting 0, running 1, succeeded 0, dead 0, cancelled 0\n"
      "malformed: 0\n"
      "\n"
      "TYPE    PRIORITY  DEPTH\n"
      "resize  high      3\n"
      "\n"
      "WORKER  TYPES         LOAD  ZONE  LABELS    HEALTH     BREAKER  RTT  DRAINING  LAST_SEEN\n"
      "w-1     resize,thumb  1/4   eu-1  gpu=true  healthy    closed   3ms  no        0.4s ago\n"
      "w-2     resize        0/2   -     -         unhealthy  open     -    yes       9.0s ago\n");
}

TEST_CASE("the cluster report counts the declared worker nodes that are up and lists every node") {
  wire::ClusterInfo cluster;
  cluster.name = "crawl";
  cluster.role = "standalone";
  cluster.nodes = {{.id = "c1", .host = "10.0.1.10", .role = "coordinator"},
                   {.id = "w1", .host = "10.0.1.11", .role = "worker", .zone = "eu-1", .up = true},
                   {.id = "w2", .host = "10.0.1.12", .role = "worker", .capacity = 8, .up = false}};
  const auto text = FormatCluster(cluster);
  CHECK(text.starts_with("cluster:   crawl\nrole:      standalone\n"));
  CHECK(text.find("nodes:     1 of 2 worker nodes up (down: w2)\n") != std::string::npos);
  CHECK(
      text.ends_with("NODE  HOST       ROLE         ZONE  CAPACITY  UP\n"
                     "c1    10.0.1.10  coordinator  -     -         -\n"
                     "w1    10.0.1.11  worker       eu-1  -         yes\n"
                     "w2    10.0.1.12  worker       -     8         no\n"));
  const auto json = ClusterToJson(cluster);
  CHECK(json["name"] == "crawl");
  CHECK(json["nodes"][0]["up"].is_null());
  CHECK(json["nodes"][1]["up"] == true);
  CHECK(json["nodes"][2]["capacity"] == 8);
}

TEST_CASE("the cluster's JSON has the strategy and each worker's health, breaker, RTT, draining") {
  wire::ClusterInfo cluster;
  cluster.strategy = "hash";
  cluster.workers = {{.id = "w-1", .breaker = "half-open", .rtt_ms = 12, .draining = true},
                     {.id = "w-2"}};
  const auto json = ClusterToJson(cluster);
  CHECK(json["strategy"] == "hash");
  CHECK(json["workers"][0]["breaker"] == "half-open");
  CHECK(json["workers"][0]["health"] == "healthy");
  CHECK(json["workers"][0]["rtt_ms"] == 12);
  CHECK(json["workers"][0]["draining"] == true);
  CHECK(json["workers"][1]["rtt_ms"].is_null());
  CHECK(json["workers"][1]["draining"] == false);
}

// A queued job that needs a GPU in eu-1 and nobody can take.
wire::JobInfo PlacedJob() {
  auto job = RunningJob();
  job.state = wire::JobState::kQueued;
  job.worker.clear();
  job.progress.reset();
  job.hash_key = "user-7";
  job.required = {{"gpu", "true"}, {"disk", "ssd"}};
  job.zone = "eu-1";
  job.locality = wire::Locality::kSameZone;
  job.max_rtt_ms = 20;
  job.waiting_reason = "needs gpu=true: none of the 2 workers for type 'resize' has it";
  return job;
}

TEST_CASE("the status listing shows the placement and why a queued job waits") {
  UseUtc();
  CHECK(FormatJob(PlacedJob()) ==
        "id:       j-12\n"
        "type:     resize\n"
        "state:    queued\n"
        "priority: high\n"
        "attempts: 1/5\n"
        "timeout:  30s\n"
        "backoff:  1s (max 5m)\n"
        "hash_key: user-7\n"
        "requires: disk=ssd, gpu=true\n"
        "zone:     eu-1\n"
        "locality: same-zone\n"
        "max_rtt:  20ms\n"
        "waiting:  needs gpu=true: none of the 2 workers for type 'resize' has it\n"
        "created:  2023-11-14 22:13:20\n"
        "updated:  2023-11-14 22:13:23\n");
  const std::string plain = FormatJob(RunningJob());
  for (const char* field : {"hash_key", "requires", "zone", "locality", "max_rtt", "waiting"}) {
    CHECK(plain.find(field) == std::string::npos);
  }
}

TEST_CASE("a job's JSON carries the placement fields and the waiting reason only when set") {
  const auto json = JobToJson(PlacedJob());
  CHECK(json["hash_key"] == "user-7");
  CHECK(json["requires"] == nlohmann::json{{"disk", "ssd"}, {"gpu", "true"}});
  CHECK(json["zone"] == "eu-1");
  CHECK(json["locality"] == "same-zone");
  CHECK(json["max_rtt_ms"] == 20);
  CHECK(json["waiting_reason"] == "needs gpu=true: none of the 2 workers for type 'resize' has it");
  const auto plain = JobToJson(RunningJob());
  for (const char* key :
       {"hash_key", "requires", "zone", "locality", "max_rtt_ms", "waiting_reason"}) {
    CHECK_FALSE(plain.contains(key));
  }
}

TEST_CASE("drain reports the jobs that moved, or that the worker is back in service") {
  CHECK(FormatDrain("w1", true, 2) == "drained w1: 2 running jobs moved to other workers\n");
  CHECK(FormatDrain("w1", true, 1) == "drained w1: 1 running job moved to another worker\n");
  CHECK(FormatDrain("w1", true, 0) == "drained w1: no running job moved\n");
  CHECK(FormatDrain("w1", false, 0) == "w1 back in service\n");
}

TEST_CASE("Join puts the separator between every two items, empty ones too") {
  CHECK(Join({}, ",").empty());
  CHECK(Join({"a"}, ", ") == "a");
  CHECK(Join({"", "b"}, ", ") == ", b");
  CHECK(Join({"a", "", "c"}, ",") == "a,,c");
}

TEST_CASE("--require takes key=value, the value after the first '=' and possibly empty") {
  CHECK(ParseRequirement("gpu=true") == std::pair{"gpu"s, "true"s});
  CHECK(ParseRequirement("expr=a=b") == std::pair{"expr"s, "a=b"s});
  CHECK(ParseRequirement("tag=") == std::pair{"tag"s, ""s});
  CHECK_FALSE(ParseRequirement("gpu"));
  CHECK_FALSE(ParseRequirement("=true"));
  CHECK_FALSE(ParseRequirement("gpu=a\nb"));
  CHECK(ParseRequirement("gpu").error().message == "bad requirement 'gpu': expected key=value");
  CHECK(ParseRequirement("gpu=a\nb").error().message == "bad requirement 'gpu=a\nb': no newlines");
  CHECK(ParseRequirement("=true").error().message == "bad requirement '=true': the key is empty");
  const auto labels = ParseRequirements({"gpu=true", "zone=eu-1"});
  REQUIRE(labels);
  CHECK(*labels == wire::Labels{{"gpu", "true"}, {"zone", "eu-1"}});
  const auto twice = ParseRequirements({"gpu=true", "gpu=false"});
  REQUIRE_FALSE(twice);
  CHECK(twice.error().message == "requirement 'gpu' is given twice");
}

TEST_CASE("--locality takes the three names and --max-rtt a duration that fits 32 bits") {
  for (const auto& entry : wire::kLocalities) CHECK(ParseLocalityArg(entry.name) == entry.code);
  REQUIRE_FALSE(ParseLocalityArg("nearby"));
  CHECK(ParseLocalityArg("nearby").error().message ==
        "unknown locality 'nearby': expected same-zone, cross-zone or any");
  CHECK(ParseMaxRtt("20ms") == 20u);
  CHECK(ParseMaxRtt("1s") == 1000u);
  CHECK(ParseMaxRtt("0") == 0u);
  CHECK_FALSE(ParseMaxRtt("20"));
  CHECK_FALSE(ParseMaxRtt("60d"));
}

TEST_CASE("the progress line draws a bar, the percent, the message, the job and the time") {
  const auto line = RenderProgressLine(RunningJob(), 60, milliseconds(3200));
  CHECK(line == "[##########----------]  50% downloading  j-12 running 3.2s  ");
  CHECK(line.size() == 60);
}

TEST_CASE("the progress line always fills exactly the width, clipping the message first") {
  auto job = RunningJob();
  job.progress->message = std::string(200, 'm');
  job.attempts = 2;
  const auto line = RenderProgressLine(job, 70, milliseconds(1000));
  CHECK(line.size() == 70);
  CHECK(line.ends_with("...  j-12 running (attempt 2/5) 1.0s"));
  CHECK(RenderProgressLine(job, 10, milliseconds(0)).size() == 10);
}

TEST_CASE("the progress line shows a dash without a percent and a full bar on success") {
  auto job = RunningJob();
  job.state = wire::JobState::kQueued;
  job.progress.reset();
  CHECK(
      RenderProgressLine(job, 40, milliseconds(0)).starts_with("[--------------------]    - j-12"));
  job.state = wire::JobState::kSucceeded;
  CHECK(
      RenderProgressLine(job, 40, milliseconds(0)).starts_with("[####################] 100% j-12"));
}

TEST_CASE("the plain update line names the job, state, progress and time") {
  CHECK(FormatUpdateLine(RunningJob(), milliseconds(3200)) ==
        "j-12 running 50% downloading (3.2s)");
  auto job = RunningJob();
  job.state = wire::JobState::kDead;
  job.progress.reset();
  job.error = "boom";
  CHECK(FormatUpdateLine(job, milliseconds(0)) == "j-12 dead: boom (0.0s)");
}

TEST_CASE("printable text excludes control characters and invalid UTF-8") {
  CHECK(IsPrintable("text\twith\ttabs\nand lines\r\n"));
  CHECK_FALSE(IsPrintable("nul\0inside"s));
  CHECK_FALSE(IsPrintable("\x1b[31mred"));
  CHECK_FALSE(IsPrintable("\xff"));
}

TEST_CASE("exit codes: 2xx is OK, NOT_FOUND is 7, any other refusal is 1") {
  CHECK(ExitForStatus(wire::StatusCode::kOk) == wire::ClientExit::kOk);
  CHECK(ExitForStatus(wire::StatusCode::kAccepted) == wire::ClientExit::kOk);
  CHECK(ExitForStatus(wire::StatusCode::kNotFound) == wire::ClientExit::kNotFound);
  CHECK(ExitForStatus(wire::StatusCode::kConflict) == wire::ClientExit::kError);
  CHECK(ExitForStatus(wire::StatusCode::kQueueFull) == wire::ClientExit::kError);
  CHECK(ExitForStatus(wire::StatusCode::kStorageError) == wire::ClientExit::kError);
  CHECK(ToInt(wire::ClientExit::kNotFound) == 7);
}

TEST_CASE("exit codes of a wait: succeeded 0, dead 3, cancelled 4, timed out 5") {
  CHECK(ExitForFinalState(wire::JobState::kSucceeded) == wire::ClientExit::kOk);
  CHECK(ExitForFinalState(wire::JobState::kDead) == wire::ClientExit::kJobDead);
  CHECK(ExitForFinalState(wire::JobState::kCancelled) == wire::ClientExit::kJobCancelled);

  WatchResult result;
  result.end = WatchResult::End::kTimedOut;
  result.job = RunningJob();
  CHECK(ExitForWatch(result) == wire::ClientExit::kWaitTimeout);
  result.end = WatchResult::End::kFinal;
  result.job->state = wire::JobState::kDead;
  CHECK(ExitForWatch(result) == wire::ClientExit::kJobDead);
  result.end = WatchResult::End::kRefused;
  result.refusal.status = wire::StatusCode::kNotFound;
  CHECK(ExitForWatch(result) == wire::ClientExit::kNotFound);
}

TEST_CASE("--payload DATA is the bytes themselves") {
  std::istringstream input("unused");
  CHECK(ReadPayloadArg("hello", input) == "hello");
  CHECK(ReadPayloadArg("", input) == "");
}

TEST_CASE("--payload @- reads all of standard input, binary-safe") {
  std::istringstream input("line 1\n\0line 2\n"s);
  CHECK(ReadPayloadArg("@-", input) == "line 1\n\0line 2\n"s);
}

TEST_CASE("--payload @FILE reads the file's bytes unchanged") {
  const auto path = std::filesystem::temp_directory_path() / "claw_client_payload_test.bin";
  const std::string bytes = "\x00\xff\r\n"s + "rest";
  {
    std::ofstream file(path, std::ios::binary);
    file << bytes;
  }
  std::istringstream input;
  CHECK(ReadPayloadArg("@" + path.string(), input) == bytes);
  std::filesystem::remove(path);
}

TEST_CASE("--payload naming a missing file or no file is an error that says so") {
  std::istringstream input;
  const auto missing = ReadPayloadArg("@/nonexistent/claw-payload", input);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("/nonexistent/claw-payload") != std::string::npos);
  CHECK_FALSE(ReadPayloadArg("@", input));
  const auto directory = ReadPayloadArg("@/tmp", input);
  REQUIRE_FALSE(directory);
  CHECK(directory.error().message.find("directory") != std::string::npos);
}

}  // namespace
}  // namespace claw::client
