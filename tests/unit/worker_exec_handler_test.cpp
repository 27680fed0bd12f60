// The exec handler against real /bin/sh processes: results, exit codes, environment, the
// progress channel, checkpoints, timeouts, cancellation and large payloads.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "worker/exec_handler.hpp"

namespace claw::worker {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace std::string_literals;

// Collects what a handler reports, as the worker loop would receive it.
class Reports {
 public:
  ProgressSink Sink() {
    return [this](wire::ProgressReport report) {
      std::lock_guard lock(mutex_);
      reports_.push_back(std::move(report));
      arrived_.notify_all();
    };
  }
  std::vector<wire::ProgressReport> Get() {
    std::lock_guard lock(mutex_);
    return reports_;
  }
  // Waits until at least `count` reports arrived; false at the deadline.
  bool WaitFor(std::size_t count, std::chrono::milliseconds deadline) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, deadline, [&] { return reports_.size() >= count; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<wire::ProgressReport> reports_;
};

wire::JobDispatch Job(std::string payload = {}, std::uint64_t timeout_ms = 30000) {
  return wire::JobDispatch{.id = "job-1",
                           .type = "resize",
                           .payload = std::move(payload),
                           .lease = 7,
                           .attempt = 2,
                           .timeout_ms = timeout_ms,
                           .priority = 5};
}

Outcome Run(const std::string& command, wire::JobDispatch job, Reports* reports = nullptr) {
  JobContext context(std::move(job), reports != nullptr ? reports->Sink() : ProgressSink());
  return RunCommand(ExecOptions{.command = command}, context);
}

std::filesystem::path TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("claw-worker-test-" + std::to_string(::getpid()) + "-" + name);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Processes of the group that are alive (zombies are dead: init may never reap them here).
int LiveMembers(pid_t pgid) {
  int live = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state = 0;
    long ppid = 0;
    long pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') ++live;
  }
  return live;
}

TEST_CASE("the payload goes to stdin and stdout is the result") {
  const Outcome outcome = Run("cat", Job("hello\nworld"));
  CHECK(outcome.succeeded);
  CHECK(outcome.result == "hello\nworld");
}

TEST_CASE("a command that ignores its stdin still succeeds") {
  const Outcome outcome = Run("echo done", Job(std::string(1 << 20, 'x')));
  CHECK(outcome.succeeded);
  CHECK(outcome.result == "done\n");
}

TEST_CASE("the job's details are in the command's environment") {
  const Outcome outcome =
      Run("printf '%s|%s|%s|%s|%s|%s' \"$CLAW_JOB_ID\" \"$CLAW_JOB_TYPE\" \"$CLAW_ATTEMPT\" "
          "\"$CLAW_TIMEOUT_MS\" \"$CLAW_PROGRESS_FD\" \"${CLAW_CHECKPOINT_FILE-none}\"",
          Job({}, 5000));
  CHECK(outcome.succeeded);
  CHECK(outcome.result == "job-1|resize|2|5000|3|none");
}

TEST_CASE("the broker's checkpoint interval reaches the command when it gave one") {
  const std::string command = "printf %s \"${CLAW_CHECKPOINT_INTERVAL_MS-none}\"";
  JobContext hinted(Job(), ProgressSink(), 60'000);
  CHECK(RunCommand(ExecOptions{.command = command}, hinted).result == "60000");
  CHECK(Run(command, Job()).result == "none");
}

TEST_CASE("the worker's environment is inherited") {
  ::setenv("CLAW_WORKER_TEST_VALUE", "inherited", 1);
  const Outcome outcome = Run("printf %s \"$CLAW_WORKER_TEST_VALUE\"", Job());
  CHECK(outcome.result == "inherited");
}

TEST_CASE("exit 100 is a permanent failure with the stderr tail") {
  const Outcome outcome = Run("echo 'bad input' >&2; exit 100", Job());
  CHECK_FALSE(outcome.succeeded);
  CHECK(outcome.permanent);
  CHECK(outcome.error == "exit code 100: bad input");
}

TEST_CASE("exit 3 is a retryable failure with the stderr tail") {
  const Outcome outcome = Run("echo partial; echo 'disk on fire' >&2; exit 3", Job());
  CHECK_FALSE(outcome.succeeded);
  CHECK_FALSE(outcome.permanent);
  CHECK(outcome.error == "exit code 3: disk on fire");
}

TEST_CASE("only the last 4 KiB of stderr is kept") {
  const Outcome outcome =
      Run("head -c 6000 /dev/zero | tr '\\0' a >&2; printf END >&2; exit 1", Job());
  CHECK_FALSE(outcome.succeeded);
  CHECK(outcome.error.size() <= std::string("exit code 1: ").size() + 4096);
  CHECK(outcome.error.ends_with("aaaEND"));
}

TEST_CASE("death by a signal is a retryable failure naming the signal") {
  const Outcome outcome = Run("kill -9 $$", Job());
  CHECK_FALSE(outcome.succeeded);
  CHECK_FALSE(outcome.permanent);
  CHECK(outcome.error == "killed by SIGKILL");
}

TEST_CASE("a command past its timeout is killed with its whole process group") {
  const auto pid_file = TempPath("timeout-pid");
  const auto start = Clock::now();
  const Outcome outcome =
      Run("echo $$ > " + pid_file.string() + "; sleep 30 & sleep 30", Job({}, 300));
  const auto elapsed = Clock::now() - start;
  CHECK_FALSE(outcome.succeeded);
  CHECK_FALSE(outcome.permanent);
  CHECK(outcome.error == "timed out after 300ms");
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 10s);
  const pid_t pgid = std::stoi(ReadFile(pid_file));
  std::filesystem::remove(pid_file);
  CHECK(LiveMembers(pgid) == 0);
}

TEST_CASE("a command that ignores SIGTERM is killed after the grace period") {
  JobContext context(Job({}, 200), ProgressSink());
  const auto start = Clock::now();
  const Outcome outcome =
      RunCommand(ExecOptions{.command = "trap '' TERM; sleep 30", .kill_grace = 300ms}, context);
  CHECK(outcome.error == "timed out after 200ms");
  CHECK(Clock::now() - start >= 500ms);
  CHECK(Clock::now() - start < 10s);
}

TEST_CASE("cancellation kills the command and reports cancelled") {
  Reports reports;
  JobContext context(Job(), reports.Sink());
  auto result = std::async(std::launch::async, [&] {
    return RunCommand(
        ExecOptions{.command = "echo \"progress 1 $$\" >&$CLAW_PROGRESS_FD; sleep 30 & sleep 30"},
        context);
  });
  // The first progress report says the command runs, and names its process group.
  REQUIRE(reports.WaitFor(1, 10s));
  context.RequestCancel();
  REQUIRE(result.wait_for(10s) == std::future_status::ready);
  const Outcome outcome = result.get();
  CHECK_FALSE(outcome.succeeded);
  CHECK(outcome.error == "cancelled");
  const pid_t pgid = std::stoi(*reports.Get().front().message);
  CHECK(LiveMembers(pgid) == 0);
}

TEST_CASE("progress and checkpoint lines reach the job context and malformed lines are ignored") {
  Reports reports;
  const Outcome outcome =
      Run("echo 'progress 50 halfway there' >&$CLAW_PROGRESS_FD; "
          "echo 'checkpoint step=2' >&$CLAW_PROGRESS_FD; "
          "echo 'nonsense' >&$CLAW_PROGRESS_FD; "
          "echo 'progress 101' >&$CLAW_PROGRESS_FD; "
          "printf 'progress 100' >&$CLAW_PROGRESS_FD",
          Job(), &reports);
  CHECK(outcome.succeeded);
  const auto got = reports.Get();
  REQUIRE(got.size() == 3);
  CHECK(got[0] ==
        wire::ProgressReport{.id = "job-1", .lease = 7, .percent = 50, .message = "halfway there"});
  CHECK(got[1] == wire::ProgressReport{.id = "job-1", .lease = 7, .checkpoint = "step=2"});
  CHECK(got[2] == wire::ProgressReport{.id = "job-1", .lease = 7, .percent = 100});
}

TEST_CASE("a job with a checkpoint gets it in a file that is deleted after the run") {
  wire::JobDispatch job = Job();
  job.checkpoint = std::string("offset=42\nrest");
  const Outcome outcome = Run(
      "printf '%s\\n' \"$CLAW_CHECKPOINT_FILE\"; cat \"$CLAW_CHECKPOINT_FILE\"", std::move(job));
  REQUIRE(outcome.succeeded);
  const auto newline = outcome.result.find('\n');
  const std::string path = outcome.result.substr(0, newline);
  CHECK(outcome.result.substr(newline + 1) == "offset=42\nrest");
  CHECK_FALSE(path.empty());
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a job's inputs are a JSON-lines file and a directory of results and errors") {
  wire::JobDispatch job = Job();
  job.inputs = {wire::Input{.id = "j-1", .state = "succeeded", .result = "the 2\nfox 1\n"},
                wire::Input{.id = "j-2", .state = "dead", .error = "exit code 100: bad"}};
  const Outcome outcome =
      Run("printf '%s\\n' \"$CLAW_INPUTS_DIR\"; cat \"$CLAW_INPUTS\"; cd \"$CLAW_INPUTS_DIR\"; ls; "
          "cat j-1.result j-2.error",
          std::move(job));
  REQUIRE(outcome.succeeded);
  std::istringstream lines(outcome.result);
  std::string dir, first, second;
  std::getline(lines, dir);
  std::getline(lines, first);
  std::getline(lines, second);
  CHECK(first == R"({"error":null,"id":"j-1","result":"the 2\nfox 1\n","state":"succeeded"})");
  CHECK(second == R"({"error":"exit code 100: bad","id":"j-2","result":null,"state":"dead"})");
  std::string rest((std::istreambuf_iterator<char>(lines)), std::istreambuf_iterator<char>());
  CHECK(rest == "j-1.result\nj-2.error\nthe 2\nfox 1\nexit code 100: bad");
  CHECK_FALSE(dir.empty());
  CHECK_FALSE(std::filesystem::exists(dir));
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(dir).parent_path()));
}

TEST_CASE("an input's result that is not UTF-8 is raw in its file and replaced in the JSON") {
  wire::JobDispatch job = Job();
  job.inputs = {wire::Input{.id = "j-7", .state = "succeeded", .result = "a\xff"s + '\0' + "b"}};
  const Outcome outcome =
      Run("od -An -c \"$CLAW_INPUTS_DIR/j-7.result\" | tr -s ' '; cat \"$CLAW_INPUTS\"",
          std::move(job));
  REQUIRE(outcome.succeeded);
  CHECK(outcome.result ==
        " a 377 \\0 b\n"
        "{\"error\":null,\"id\":\"j-7\",\"result\":\"a\xef\xbf\xbd\\u0000b\",\"state\":"
        "\"succeeded\"}\n");
}

TEST_CASE("a job without inputs has no inputs variables, even when the worker's env has them") {
  ::setenv("CLAW_INPUTS", "/leaked", 1);
  const Outcome outcome =
      Run("printf '%s|%s' \"${CLAW_INPUTS-none}\" \"${CLAW_INPUTS_DIR-none}\"", Job());
  ::unsetenv("CLAW_INPUTS");
  CHECK(outcome.result == "none|none");
}

TEST_CASE("the C++ handler API sees the inputs in order") {
  wire::JobDispatch job = Job();
  job.inputs = {wire::Input{.id = "j-2", .state = "cancelled", .error = "cancelled"},
                wire::Input{.id = "j-1", .state = "succeeded", .result = "1"}};
  const JobContext context(std::move(job), ProgressSink());
  REQUIRE(context.inputs().size() == 2);
  CHECK(context.inputs()[0].id == "j-2");
  CHECK(context.inputs()[1].result == "1");
}

TEST_CASE("a large payload through cat does not deadlock") {
  std::string payload(4 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  const Outcome outcome = Run("cat", Job(payload));
  CHECK(outcome.succeeded);
  CHECK(outcome.result == payload);
}

TEST_CASE("a result over the limit is a failure") {
  JobContext context(Job(), ProgressSink());
  const Outcome outcome = RunCommand(
      ExecOptions{.command = "head -c 5000 /dev/zero", .max_result_bytes = 4096}, context);
  CHECK_FALSE(outcome.succeeded);
  CHECK(outcome.error == "result too large: over 4096 bytes");
}

TEST_CASE("a background process left holding stdout does not hold up the job") {
  const auto start = Clock::now();
  const Outcome outcome = Run("sleep 30 & echo started", Job());
  CHECK(outcome.succeeded);
  CHECK(outcome.result == "started\n");
  CHECK(Clock::now() - start < 10s);
}

TEST_CASE("MakeExecHandler runs the command for a job") {
  const Handler handler = MakeExecHandler("tr a-z A-Z");
  JobContext context(Job("shout"), ProgressSink());
  const Outcome outcome = RunHandler(handler, context);
  CHECK(outcome.result == "SHOUT");
}

}  // namespace
}  // namespace claw::worker
