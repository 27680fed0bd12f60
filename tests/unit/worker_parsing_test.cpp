// Pure parts of the worker: progress-channel lines, flag values, the reconnect backoff, the
// heartbeat timer, and the handler exception boundary. Time is a parameter here; nothing sleeps.
#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>

#include "worker/flags.hpp"
#include "worker/heartbeat.hpp"
#include "worker/job_context.hpp"
#include "worker/progress_line.hpp"
#include "worker/reconnect_backoff.hpp"

namespace claw::worker {
namespace {

using namespace std::chrono_literals;

TEST_CASE("a progress line carries a percent and an optional message") {
  CHECK(*ParseProgressLine("progress 40 resizing images") ==
        ProgressChannelLine(ProgressLine{40, "resizing images"}));
  CHECK(*ParseProgressLine("progress 0") == ProgressChannelLine(ProgressLine{0, ""}));
  CHECK(*ParseProgressLine("progress 100 done\r") ==
        ProgressChannelLine(ProgressLine{100, "done"}));
}

TEST_CASE("a checkpoint line carries the text to the end of the line") {
  CHECK(*ParseProgressLine("checkpoint offset=12 rest of it") ==
        ProgressChannelLine(CheckpointLine{"offset=12 rest of it"}));
  CHECK(*ParseProgressLine("checkpoint") == ProgressChannelLine(CheckpointLine{""}));
}

TEST_CASE("malformed progress lines are refused") {
  for (const char* line : {"", "progress", "progress 101", "progress -1", "progress 5x",
                           "progress abc", "progressing 5", "checkpointed x", "hello"}) {
    CAPTURE(line);
    CHECK_FALSE(ParseProgressLine(line).has_value());
  }
}

TEST_CASE("a label is key=value") {
  CHECK(*ParseLabel("zone=eu-1") == std::pair<std::string, std::string>{"zone", "eu-1"});
  CHECK(*ParseLabel("empty=") == std::pair<std::string, std::string>{"empty", ""});
  CHECK(*ParseLabel("expr=a=b") == std::pair<std::string, std::string>{"expr", "a=b"});
  CHECK(ParseLabel("zone").error().message == "label 'zone': expected key=value");
  CHECK(ParseLabel("note=a\nb").error().message == "label 'note=a\nb': no newlines");
  CHECK_FALSE(ParseLabel("=value").has_value());
}

TEST_CASE("comma-separated lists drop empty items and spaces") {
  CHECK(SplitList("tcp://a:1,tcp://b:2") == std::vector<std::string>{"tcp://a:1", "tcp://b:2"});
  CHECK(SplitList(" a , ,b,") == std::vector<std::string>{"a", "b"});
  CHECK(SplitList("").empty());
}

TEST_CASE("job types follow the protocol's alphabet and length") {
  CHECK(CheckJobType("img.resize:v2-fast_1").has_value());
  CHECK_FALSE(CheckJobType("").has_value());
  CHECK_FALSE(CheckJobType("has space").has_value());
  CHECK_FALSE(CheckJobType(std::string(129, 'a')).has_value());
}

TEST_CASE("the default worker id is hostname-pid") {
  CHECK(DefaultWorkerId().ends_with("-" + std::to_string(::getpid())));
}

TEST_CASE("the reconnect delay starts at 250ms and doubles to 10s until reset") {
  ReconnectBackoff backoff;
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 8; ++i) delays.push_back(backoff.Next(0.0).count());
  CHECK(delays == std::vector<std::int64_t>{250, 500, 1000, 2000, 4000, 8000, 10000, 10000});
  backoff.Reset();
  CHECK(backoff.Next(0.0) == 250ms);
}

TEST_CASE("the reconnect jitter adds up to 25% of the delay") {
  ReconnectBackoff backoff;
  CHECK(backoff.Next(0.999).count() == 250 + 62);
  CHECK(backoff.Next(0.5) == 500ms + 62ms);
}

TEST_CASE(
    "a heartbeat is due after one quiet interval and the peer is dead after liveness of them") {
  using Clock = HeartbeatTimer::Clock;
  const Clock::time_point t0{};
  HeartbeatTimer timer(1000ms, 3, t0);
  CHECK_FALSE(timer.HeartbeatDue(t0 + 999ms));
  CHECK(timer.HeartbeatDue(t0 + 1000ms));
  CHECK(timer.NextDeadline() == t0 + 1000ms);
  timer.Sent(t0 + 1000ms);
  CHECK_FALSE(timer.HeartbeatDue(t0 + 1500ms));
  CHECK_FALSE(timer.PeerDead(t0 + 2999ms));
  CHECK(timer.PeerDead(t0 + 3000ms));
  timer.Received(t0 + 2500ms);
  CHECK_FALSE(timer.PeerDead(t0 + 5499ms));
  CHECK(timer.PeerDead(t0 + 5500ms));
}

TEST_CASE("WELCOME's heartbeat and liveness replace the defaults and zeros keep them") {
  using Clock = HeartbeatTimer::Clock;
  const Clock::time_point t0{};
  HeartbeatTimer timer(1000ms, 3, t0);
  timer.Configure(200ms, 5);
  CHECK(timer.HeartbeatDue(t0 + 200ms));
  CHECK(timer.PeerDead(t0 + 1000ms));
  CHECK_FALSE(timer.PeerDead(t0 + 999ms));
  timer.Configure(0ms, 0);
  CHECK(timer.interval() == 200ms);
  CHECK(timer.liveness() == 5);
}

TEST_CASE("a handler that throws is a retryable failure with the exception's message") {
  JobContext context(wire::JobDispatch{.id = "j"}, ProgressSink());
  const Outcome outcome =
      RunHandler([](JobContext&) -> Outcome { throw std::runtime_error("boom"); }, context);
  CHECK_FALSE(outcome.succeeded);
  CHECK_FALSE(outcome.permanent);
  CHECK(outcome.error.find("boom") != std::string::npos);
}

TEST_CASE("progress reports quote the job's id and lease and percent is clamped to 100") {
  std::vector<wire::ProgressReport> reports;
  JobContext context(wire::JobDispatch{.id = "j", .lease = 9},
                     [&](wire::ProgressReport report) { reports.push_back(std::move(report)); });
  context.ReportProgress(250, "");
  context.SaveCheckpoint("state");
  REQUIRE(reports.size() == 2);
  CHECK(reports[0] == wire::ProgressReport{.id = "j", .lease = 9, .percent = 100});
  CHECK(reports[1] == wire::ProgressReport{.id = "j", .lease = 9, .checkpoint = "state"});
}

}  // namespace
}  // namespace claw::worker
