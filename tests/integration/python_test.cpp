// The Python client and worker (client/python/claw.py, written from schema/ alone) against the
// real C++ broker, worker and client: each side of the protocol is played once by Python and
// once by C++. Python is Debian's /usr/bin/python3 with python3-zmq and python3-msgpack; when it
// is missing the tests fail with a message naming the package (scripts/setup.sh installs them).
#include <doctest/doctest.h>
#include <signal.h>

#include <string>
#include <vector>

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
  CHECK(run.code == 5);  // exit_codes.client WAIT_TIMEOUT
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

  CHECK(c.Client({"wait", permanent, "--timeout", "60s"}).code == 3);  // JOB_DEAD
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

}  // namespace
}  // namespace claw::testing
