// The Python client and worker (client/python/claw.py, written from schema/ alone) against the
// real C++ broker, worker and client: each side of the protocol is played once by Python and
// once by C++. Python is Debian's /usr/bin/python3 with python3-zmq and python3-msgpack; when it
// is missing the tests fail with a message naming the package (scripts/setup.sh installs them).
// Groups: a Python client's group is mapped by a C++ exec worker and reduced by a Python worker,
// and claw.py's golden files of the group messages are checked against the C++ codec.
#include <doctest/doctest.h>
#include <signal.h>

#include <fstream>
#include <functional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "schema/codec.hpp"
#include "tests/integration/cluster.hpp"

namespace claw::testing {
namespace {

const std::string kPython = "/usr/bin/python3";

std::string PythonDir() { return std::string(CLAW_SOURCE_DIR) + "/client/python"; }

// Fails the test unless /usr/bin/python3 can import what claw.py needs.
void RequirePython() {
  auto probe = Run({kPython, "-c", "import zmq, msgpack, yaml"});
  REQUIRE_MESSAGE(probe.code == 0,
                  "/usr/bin/python3 with python3-zmq, python3-msgpack and python3-yaml is needed "
                  "(scripts/setup.sh installs them): "
                      << probe.err);
}

// argv running one of client/python's scripts; -B keeps __pycache__ out of the source tree.
std::vector<std::string> Python(const std::string& script, std::vector<std::string> args) {
  args.insert(args.begin(), {kPython, "-B", PythonDir() + "/" + script});
  return args;
}

Process StartPythonWorker(Cluster& c, const std::string& script, const std::string& type,
                          const std::string& log_name) {
  return Process::Start(Python(script, {"--broker", c.endpoint(), "--type", type}),
                        c.Path(log_name));
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// The three frames of a golden file: its lines that are not comments, bytes in hex.
std::vector<std::string> GoldenFrames(const std::string& path) {
  std::istringstream in(ReadFile(path));
  std::vector<std::string> frames;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    std::istringstream hex(line);
    std::string frame;
    std::string byte;
    while (hex >> byte) frame.push_back(static_cast<char>(std::stoi(byte, nullptr, 16)));
    frames.push_back(frame);
  }
  return frames;
}

// claw.py's golden file `name` (client/python/tests/golden/) must be what the C++ codec writes
// for the same message, and must decode to it (`decodes_to` gets the file's frames).
void CheckPythonGolden(const std::string& name, const wire::Frames& encoded,
                       const std::function<bool(std::span<const std::string_view>)>& decodes_to) {
  INFO(name);
  const auto frames = GoldenFrames(PythonDir() + "/tests/golden/" + name);
  REQUIRE(frames.size() == 3);
  CHECK(frames[0] == encoded.header);
  CHECK(frames[1] == std::string(1, static_cast<char>(encoded.command)));
  CHECK(frames[2] == encoded.body);
  const std::vector<std::string_view> views(frames.begin(), frames.end());
  CHECK(decodes_to(views));
}

bool RequestIs(std::span<const std::string_view> frames, const wire::ClientRequest& want) {
  auto inbound = wire::DecodeInbound(frames);
  return inbound && std::holds_alternative<wire::ClientRequest>(*inbound) &&
         std::get<wire::ClientRequest>(*inbound) == want;
}

wire::JobInfo GoldenJob(const std::string& id, const std::string& type, wire::JobState state,
                        std::uint32_t attempts) {
  return {.id = id,
          .type = type,
          .state = state,
          .priority = 5,
          .attempts = attempts,
          .max_attempts = 5,
          .timeout_ms = 300'000,
          .backoff_ms = 1000,
          .max_backoff_ms = 300'000,
          .created_at = 1'700'000'000'000,
          .updated_at = 1'700'000'001'000,
          .group = "g-1"};
}

TEST_CASE("python: claw.py's golden files of groups and dependencies are the C++ codec's bytes") {
  using wire::DependencyPolicy;
  const wire::ClientRequest submit{
      wire::SubmitRequest{.rid = 2,
                          .job = {.type = "reduce",
                                  .after = {"j-1", "j-2"},
                                  .after_policy = DependencyPolicy::kAllSettled},
                          .key = "k-1"}};
  const wire::ClientRequest group_submit{wire::GroupSubmitRequest{
      .rid = 3,
      .jobs = {wire::JobSpec{.type = "map", .payload = "a b"},
               wire::JobSpec{.type = "map", .payload = "b", .priority = 7, .after = {"#0"}}},
      .follow_up = wire::JobSpec{.type = "reduce"},
      .follow_up_policy = DependencyPolicy::kAllSucceeded,
      .key = "wc-1"}};
  const wire::ClientRequest group_status{
      wire::GroupStatusRequest{.rid = 4, .id = "g-1", .members = false}};
  for (const auto& [name, request] : {std::pair{"submit_after_request.hex", submit},
                                      std::pair{"group_submit_request.hex", group_submit},
                                      std::pair{"group_status_request.hex", group_status}}) {
    CheckPythonGolden(name, wire::Encode(request),
                      [&](auto frames) { return RequestIs(frames, request); });
  }

  wire::ClientReply accepted{.command = wire::ClientCommand::kGroupSubmit,
                             .rid = 3,
                             .status = wire::StatusCode::kAccepted};
  accepted.id = "g-1";
  accepted.ids = std::vector<std::string>{"j-1", "j-2"};
  accepted.follow_up_id = "j-3";
  auto done = GoldenJob("j-1", "map", wire::JobState::kSucceeded, 1);
  done.worker = "w1";
  done.result = "1 a";
  auto dead = GoldenJob("j-2", "map", wire::JobState::kDead, 1);
  dead.worker = "w1";
  dead.error = "boom";
  auto follow_up = GoldenJob("j-3", "reduce", wire::JobState::kQueued, 0);
  follow_up.follow_up = true;
  follow_up.after = {"j-1", "j-2"};
  follow_up.after_policy = DependencyPolicy::kAllSettled;
  wire::ClientReply status{.command = wire::ClientCommand::kGroupStatus, .rid = 5};
  status.group = wire::GroupInfo{.id = "g-1",
                                 .total = 2,
                                 .counts = {{"cancelled", 0},
                                            {"dead", 1},
                                            {"queued", 0},
                                            {"running", 0},
                                            {"scheduled", 0},
                                            {"succeeded", 1},
                                            {"waiting", 0}},
                                 .settled = 2,
                                 .members = std::vector<wire::JobInfo>{done, dead},
                                 .follow_up = follow_up};
  for (const auto& [name, reply] : {std::pair{"group_submit_accepted_reply.hex", accepted},
                                    std::pair{"group_status_reply.hex", status}}) {
    CheckPythonGolden(name, wire::Encode(reply), [&](auto frames) {
      auto decoded = wire::DecodeClientReply(frames);
      return decoded && *decoded == reply;
    });
  }

  const wire::WorkerMessage job{
      wire::JobDispatch{.id = "j-3",
                        .type = "reduce",
                        .lease = 7,
                        .attempt = 1,
                        .timeout_ms = 300'000,
                        .priority = 5,
                        .inputs = {{.id = "j-1", .state = "succeeded", .result = "1 a"},
                                   {.id = "j-2", .state = "dead", .error = "boom"}}}};
  CheckPythonGolden("job_dispatch_inputs.hex", wire::Encode(job), [&](auto frames) {
    auto decoded = wire::DecodeWorkerMessage(frames);
    return decoded && *decoded == job;
  });
}

TEST_CASE("python: claw.py encodes and decodes every golden file byte for byte") {
  RequirePython();
  auto golden = Run(Python("tests/test_golden.py", {}));
  INFO(golden.out, golden.err);
  CHECK(golden.code == 0);
  CHECK(golden.out.find("0 mismatches") != std::string::npos);
}

TEST_CASE("python: a python worker runs a job submitted with claw-client") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  auto worker = StartPythonWorker(c, "examples/upper_worker.py", "py-upper", "py-worker.log");
  const auto id = c.Submit({"--type", "py-upper", "--payload", "hello from c++"});
  auto wait = c.Client({"wait", id, "--timeout", "60s"});
  INFO("python worker log:\n", ReadFile(c.Path("py-worker.log")));
  CHECK(wait.code == 0);
  CHECK(wait.out == "HELLO FROM C++");
  auto job = c.Json({"status", id});
  CHECK(job["attempts"] == 1);
  CHECK(job["progress"]["percent"] == 100);
  CHECK(job["worker"].get<std::string>().rfind("py-", 0) == 0);

  // SIGTERM stops it cleanly: it says DISCONNECT, so the broker forgets it at once.
  worker.Signal(SIGTERM);
  CHECK(worker.Wait(std::chrono::seconds(30)) == 0);
  CHECK(
      WaitFor([&] { return c.Json({"cluster"})["workers_total"] == 0; }, std::chrono::seconds(2)));
}

TEST_CASE(
    "python: the python client submits, a c++ worker runs it, python's wait gets the result") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  c.StartWorker("w1", "upper", "tr a-z A-Z");
  auto run = Run(Python("examples/submit_and_wait.py", {"--broker", c.endpoint(), "--type", "upper",
                                                        "--timeout", "60", "hello python"}));
  INFO(run.err);
  CHECK(run.code == 0);
  CHECK(run.out == "HELLO PYTHON");
  const auto submitted = run.err.find("submitted j-");
  REQUIRE(submitted != std::string::npos);
  const auto id =
      Trim(run.err.substr(submitted + 10, run.err.find('\n', submitted) - submitted - 10));
  auto job = c.Json({"status", id});
  CHECK(job["state"] == "succeeded");
  CHECK(job["worker"] == "w1");
  CHECK(job["payload"] == "hello python");
  CHECK(job["key"].get<std::string>().rfind("py-", 0) == 0);  // the automatic idempotency key
}

TEST_CASE("python: the python wait sees the progress a c++ exec worker reports") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  c.StartWorker("w1", "slow", "echo 'progress 50 half' >&$CLAW_PROGRESS_FD; sleep 1; cat");
  auto run = Run(Python("examples/submit_and_wait.py", {"--broker", c.endpoint(), "--type", "slow",
                                                        "--timeout", "60", "payload"}));
  INFO(run.err);
  CHECK(run.code == 0);
  CHECK(run.out == "payload");
  CHECK(run.err.find("progress 50% half") != std::string::npos);
}

TEST_CASE("python: the python wait gives up at its timeout and the job goes on") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  auto run =
      Run(Python("examples/submit_and_wait.py", {"--broker", c.endpoint(), "--type",
                                                 "nobody-runs-this", "--timeout", "0.5", "x"}));
  INFO(run.err);
  CHECK(run.Is(wire::ClientExit::kWaitTimeout));
  CHECK(run.err.find("timed out waiting for job j-") != std::string::npos);
}

TEST_CASE("python: a python worker's PermanentFailure is dead at once, other errors are retried") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  auto worker = StartPythonWorker(c, "tests/failing_worker.py", "py-fail", "py-worker.log");
  const auto permanent =
      c.Submit({"--type", "py-fail", "--payload", "permanent", "--max-attempts", "5"});
  const auto flaky = c.Submit(
      {"--type", "py-fail", "--payload", "flaky", "--max-attempts", "5", "--backoff", "100ms"});
  INFO("python worker log:\n", ReadFile(c.Path("py-worker.log")));

  CHECK(c.Client({"wait", permanent, "--timeout", "60s"}).Is(wire::ClientExit::kJobDead));
  auto dead = c.Json({"status", permanent});
  CHECK(dead["state"] == "dead");
  CHECK(dead["attempts"] == 1);
  CHECK(dead["error"] == "cannot ever work");

  auto waited = c.Client({"wait", flaky, "--timeout", "60s"});
  CHECK(waited.code == 0);
  CHECK(waited.out == "attempt 2");
  auto retried = c.Json({"status", flaky});
  CHECK(retried["state"] == "succeeded");
  CHECK(retried["attempts"] == 2);
}

TEST_CASE("python: a python submit with the same key twice gives the same id") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  auto run = Run(Python("tests/same_key.py", {c.endpoint(), "once", "order-17"}));
  INFO(run.err);
  REQUIRE(run.code == 0);
  const auto first_line = run.out.substr(0, run.out.find('\n'));
  const auto id = first_line.substr(0, first_line.find(' '));
  CHECK(id.rfind("j-", 0) == 0);
  CHECK(run.out == id + " False\n" + id + " True\n");
  auto jobs = c.Json({"list"});
  REQUIRE(jobs.is_array());
  CHECK(jobs.size() == 1);
  CHECK(c.Json({"status", id})["payload"] == "first");
}

// The lines of `out` (submit_many.py prints one id per line).
std::vector<std::string> Lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_CASE("python: submit_many creates each job once and gives its ids in the order of the jobs") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  constexpr std::size_t kJobs = 3000;
  auto run = Run(Python("tests/submit_many.py", {c.endpoint(), "py-many", std::to_string(kJobs)}));
  INFO(run.err);
  REQUIRE(run.code == 0);
  const auto ids = Lines(run.out);
  REQUIRE(ids.size() == kJobs);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == kJobs);
  for (std::size_t i : {std::size_t{0}, std::size_t{1234}, kJobs - 1}) {
    CHECK(c.Json({"status", ids[i]})["payload"] == "job-" + std::to_string(i));
  }
  CHECK(c.Json({"cluster"})["jobs"]["queued"] == kJobs);
  CHECK(run.err.find("existing 0") != std::string::npos);
}

TEST_CASE(
    "python: submit_many sends again what a killed broker left unanswered, making no job twice") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  // Enough that Python is still submitting when the broker dies (it makes some 10,000 a second).
  constexpr std::size_t kJobs = 150000;
  auto submitter = Process::Start(
      Python("tests/submit_many.py", {c.endpoint(), "py-many", std::to_string(kJobs), "3"}),
      c.Path("submit-many.log"));
  REQUIRE(WaitFor([&] { return c.Json({"cluster"})["jobs"]["queued"] >= 2000; }));
  REQUIRE(submitter.Running());
  c.KillBroker(SIGKILL);
  c.StartBroker();
  const auto code = submitter.Wait(std::chrono::seconds(300));
  const auto log = ReadFile(c.Path("submit-many.log"));
  INFO(log.substr(log.size() > 2000 ? log.size() - 2000 : 0));
  REQUIRE(code == 0);
  // One id per job, none twice: a SUBMIT committed before the kill and sent again matched its key.
  std::set<std::string> ids;
  std::size_t lines = 0;
  for (const auto& line : Lines(log)) {
    if (line.rfind("j-", 0) != 0) continue;
    ++lines;
    ids.insert(line);
  }
  CHECK(lines == kJobs);
  CHECK(ids.size() == kJobs);
  CHECK(c.Json({"cluster"})["jobs"]["queued"] == kJobs);
}

TEST_CASE("python: submit_many moves past an endpoint where no broker answers") {
  RequirePython();
  Cluster nobody;  // never started: its endpoint is a free port with no broker
  Cluster c;
  c.StartBroker();
  constexpr std::size_t kJobs = 500;
  auto run = Run(Python("tests/submit_many.py", {nobody.endpoint() + "," + c.endpoint(), "py-many",
                                                 std::to_string(kJobs), "1"}));
  INFO(run.err);
  REQUIRE(run.code == 0);
  const auto ids = Lines(run.out);
  REQUIRE(ids.size() == kJobs);
  CHECK(c.Json({"status", ids.back()})["payload"] == "job-" + std::to_string(kJobs - 1));
  CHECK(c.Json({"cluster"})["jobs"]["queued"] == kJobs);
}

TEST_CASE("python: client and worker move past an endpoint where no broker answers") {
  RequirePython();
  Cluster nobody;  // never started: its endpoint is a free port with no broker
  Cluster c;
  c.StartBroker();
  const auto endpoints = nobody.endpoint() + "," + c.endpoint();
  auto worker = Process::Start(
      Python("examples/upper_worker.py", {"--broker", endpoints, "--type", "py-upper"}),
      c.Path("py-worker.log"));
  auto run = Run(
      Python("examples/submit_and_wait.py", {"--broker", endpoints, "--request-timeout", "1",
                                             "--type", "py-upper", "--timeout", "60", "moved on"}));
  INFO(run.err);
  INFO("python worker log:\n", ReadFile(c.Path("py-worker.log")));
  CHECK(run.code == 0);
  CHECK(run.out == "MOVED ON");
}

// The map step of examples/mapreduce.py as a shell command: "count word" lines; a text that
// says FAIL fails permanently (exit 100).
const std::string kMapExec =
    "input=$(cat); case \"$input\" in *FAIL*) echo 'cannot map' >&2; exit 100;; esac; "
    "printf '%s' \"$input\" | tr -cs A-Za-z '\\n' | tr A-Z a-z | grep . | sort | uniq -c";

// Writes the texts to files in the cluster's directory and returns their paths.
std::vector<std::string> WriteTexts(Cluster& c, const std::vector<std::string>& texts) {
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    paths.push_back(c.Path("text-" + std::to_string(i) + ".txt"));
    std::ofstream(paths.back()) << texts[i];
  }
  return paths;
}

Process StartReduceWorker(Cluster& c) {
  return Process::Start(
      Python("examples/mapreduce.py", {"--broker", c.endpoint(), "worker", "--steps", "reduce"}),
      c.Path("py-reduce.log"));
}

// "group g-1: maps j-1 j-2, reduce j-3" from mapreduce.py's stderr: the map ids and the reduce's.
std::pair<std::vector<std::string>, std::string> GroupIds(const std::string& err) {
  const auto at = err.find("group g-");
  REQUIRE(at != std::string::npos);
  std::istringstream line(err.substr(at, err.find('\n', at) - at));
  std::string word;
  std::vector<std::string> maps;
  line >> word >> word >> word;  // "group", "g-N:", "maps"
  while (line >> word && word.back() != ',') maps.push_back(word);
  maps.push_back(word.substr(0, word.size() - 1));
  line >> word >> word;  // "reduce", its id
  return {maps, word};
}

TEST_CASE(
    "python: a python group's maps run on a c++ exec worker, its reduce on a python worker "
    "that gets every map's outcome") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  c.StartWorker("w1", "wc-map", kMapExec, {"--capacity", "2"});
  auto reducer = StartReduceWorker(c);
  const auto files = WriteTexts(c, {"The quick brown fox", "the lazy dog, the END.",
                                    "FAIL: this one is not counted", "fox fox\nFox", "end"});
  std::vector<std::string> args = {"--broker", c.endpoint(), "submit", "--timeout", "60", "--json"};
  args.insert(args.end(), files.begin(), files.end());
  auto run = Run(Python("examples/mapreduce.py", args));
  INFO(run.err);
  INFO("python worker log:\n", ReadFile(c.Path("py-reduce.log")));
  REQUIRE(run.code == 0);
  const auto [maps, reduce_id] = GroupIds(run.err);
  REQUIRE(maps.size() == 5);

  const auto result = nlohmann::json::parse(run.out);
  const nlohmann::json counts = {{"brown", 1}, {"dog", 1},   {"end", 2}, {"fox", 4},
                                 {"lazy", 1},  {"quick", 1}, {"the", 3}};
  CHECK(result["counts"] == counts);
  CHECK(result["inputs"] == nlohmann::json(maps));  // every member, in order
  REQUIRE(result["failed"].size() == 1);
  CHECK(result["failed"][maps[2]].get<std::string>().find("cannot map") != std::string::npos);

  CHECK(c.Json({"status", maps[0]})["worker"] == "w1");
  CHECK(c.State(maps[2]) == "dead");
  auto reduce = c.Json({"status", reduce_id});
  CHECK(reduce["state"] == "succeeded");
  CHECK(reduce["worker"].get<std::string>().rfind("py-", 0) == 0);
  CHECK(run.err.find("maps 5/5 settled, 1 failed") != std::string::npos);
}

TEST_CASE("python: under all_succeeded a failed map cancels the python reduce") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  c.StartWorker("w1", "wc-map", kMapExec);
  auto reducer = StartReduceWorker(c);
  const auto files = WriteTexts(c, {"one two", "FAIL"});
  auto run = Run(Python("examples/mapreduce.py", {"--broker", c.endpoint(), "submit", "--timeout",
                                                  "60", "--all-succeeded", files[0], files[1]}));
  INFO(run.err);
  CHECK(run.Is(wire::ClientExit::kJobCancelled));
  const auto [maps, reduce_id] = GroupIds(run.err);
  CHECK(c.State(maps[0]) == "succeeded");
  CHECK(c.State(reduce_id) == "cancelled");
  CHECK(c.Json({"status", reduce_id})["attempts"] == 0);  // it never ran
}

TEST_CASE("python: a three-level chain submitted with after runs in order with its inputs") {
  RequirePython();
  Cluster c;
  c.StartBroker();
  auto run = Run(Python("tests/dag.py", {c.endpoint(), "py-dag"}));
  INFO(run.err);
  CHECK(run.code == 0);
  const auto first_line = run.out.substr(0, run.out.find('\n'));
  CHECK(first_line == "c(a,b(a))");
  auto jobs = c.Json({"list", "--type", "py-dag"});
  REQUIRE(jobs.size() == 3);
  const auto a = jobs[2]["id"].get<std::string>();  // newest first
  const auto b = jobs[1]["id"].get<std::string>();
  CHECK(run.out == first_line + "\n" + a + "," + b + " all_settled\n");
}

}  // namespace
}  // namespace claw::testing
