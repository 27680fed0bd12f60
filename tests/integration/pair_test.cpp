// The broker pair end to end: a primary and a backup on 127.0.0.1, workers and clients given
// both endpoints, and kill -9 of whichever broker is active.
#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/cluster.hpp"

namespace claw::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Workers notice a dead broker within 3 x 200 ms and move to the other one.
const std::vector<std::string> kFastWorkers = {"--heartbeat", "200ms"};

std::string Role(Cluster& c, std::size_t index) {
  auto ping = c.ClientAt(index, {"--request-timeout", "500ms", "ping"});
  return ping.code == 0 ? ping.out.substr(0, ping.out.find(' ')) : "";
}

// How many times each job id was executed, from the lines the workers append.
std::map<std::string, int> Executions(const std::string& path) {
  std::map<std::string, int> runs;
  std::istringstream lines(ReadFile(path));
  for (std::string id; std::getline(lines, id);) ++runs[id];
  return runs;
}

std::set<std::string> Succeeded(Cluster& c) {
  std::set<std::string> ids;
  for (const auto& job : c.Json({"list", "--state", "succeeded", "--limit", "10000"})) {
    ids.insert(job["id"].get<std::string>());
  }
  return ids;
}

void StartWorkers(Cluster& c, const std::string& log) {
  for (const auto* id : {"w1", "w2"}) {
    c.StartWorker(id, "stream", "echo $CLAW_JOB_ID >> " + log + "; cat", {"--capacity", "2"});
  }
}

TEST_CASE("kill -9 of the active under a stream of submits loses no accepted job, twice") {
  constexpr int kBefore = 15, kDuring = 30, kAfter = 15;
  auto c = Cluster::Pair(kFastWorkers);
  c->StartBroker(0);
  c->StartBroker(1);
  REQUIRE(WaitFor([&] { return Role(*c, 0) == "active" && Role(*c, 1) == "passive"; }));
  // The pair's promise starts once the standby holds a copy; before that it cannot take over.
  REQUIRE(WaitFor([&] {
    auto cluster = c->Json({"cluster"});
    return cluster.contains("pair") && cluster["pair"]["replica_in_sync"] == true;
  }));
  const auto executions = c->Path("executions.txt");
  StartWorkers(*c, executions);

  std::set<std::string> accepted;
  auto submit = [&](int n) {
    auto r = c->Client({"--request-timeout", "1500ms", "submit", "--type", "stream", "--payload",
                        "job " + std::to_string(n)});
    REQUIRE_MESSAGE(r.code == 0, "submit " << n << " failed: " << r.err);
    accepted.insert(r.out.substr(0, r.out.find('\n')));
  };
  for (int i = 0; i < kBefore; ++i) submit(i);

  // The active dies while submits keep coming: once the stream is under way, the kill lands
  // in the middle of whatever submit is in flight.
  std::atomic<int> streamed{0};
  std::atomic<bool> killed{false};
  Clock::time_point killed_at;
  std::thread killer([&] {
    WaitFor([&] { return streamed.load() >= 2; });
    killed_at = Clock::now();
    c->broker(0).Signal(SIGKILL);
    killed = true;
  });
  std::optional<Clock::duration> failover;
  for (int i = kBefore; i < kBefore + kDuring; ++i) {
    submit(i);
    ++streamed;
    if (killed && !failover) failover = Clock::now() - killed_at;
  }
  killer.join();
  REQUIRE(c->broker(0).Wait(std::chrono::seconds(10)).has_value());
  CHECK(Role(*c, 1) == "active");
  const bool first_round =
      WaitFor([&] { return Succeeded(*c) == accepted; }, std::chrono::seconds(120));
  CHECK_MESSAGE(first_round, c->broker_log(1));
  auto runs = Executions(executions);
  int duplicates = 0;
  for (const auto& [id, n] : runs) duplicates += n - 1;
  MESSAGE(
      "first failover: "
      << accepted.size() << " accepted, " << Succeeded(*c).size()
      << " completed, first submit served after the kill in "
      << (failover ? std::chrono::duration_cast<std::chrono::milliseconds>(*failover).count() : -1)
      << " ms, " << duplicates << " duplicate executions");

  // The old primary comes back, becomes the standby and catches up.
  c->StartBroker(0);
  REQUIRE(WaitFor([&] { return Role(*c, 0) == "passive"; }));
  REQUIRE(WaitFor([&] {
    auto cluster = c->Json({"cluster"});
    return cluster.contains("pair") && cluster["pair"]["replica_in_sync"] == true;
  }));
  for (int i = kBefore + kDuring; i < kBefore + kDuring + kAfter; ++i) submit(i);

  // And takes over again when the backup dies: nothing acknowledged is lost.
  c->KillBroker(SIGKILL, 1);
  submit(kBefore + kDuring + kAfter);
  CHECK(Role(*c, 0) == "active");
  const bool second_round =
      WaitFor([&] { return Succeeded(*c) == accepted; }, std::chrono::seconds(120));
  CHECK_MESSAGE(second_round, c->broker_log(0));
  CHECK(accepted.size() == kBefore + kDuring + kAfter + 1);
  runs = Executions(executions);
  CHECK(runs.size() == accepted.size());  // every accepted job ran, and nothing else did
  duplicates = 0;
  for (const auto& [id, n] : runs) duplicates += n - 1;
  MESSAGE("after both failovers: " << accepted.size() << " accepted, " << Succeeded(*c).size()
                                   << " completed, 0 lost, " << duplicates
                                   << " duplicate executions (leases cut by a failover)");
}

TEST_CASE("with the peer link up, the passive never becomes active") {
  auto c = Cluster::Pair();
  c->StartBroker(0);
  c->StartBroker(1);
  REQUIRE(WaitFor([&] { return Role(*c, 0) == "active" && Role(*c, 1) == "passive"; }));
  // Clients that talk only to the passive are refused, again and again, for several seconds.
  const auto until = Clock::now() + std::chrono::seconds(4);
  int refused = 0;
  while (Clock::now() < until) {
    auto r = c->ClientAt(1, {"--request-timeout", "500ms", "submit", "--type", "t"});
    CHECK(r.code != 0);
    CHECK(r.err.find("NOT_ACTIVE") != std::string::npos);
    ++refused;
  }
  CHECK(refused > 0);
  CHECK(Role(*c, 1) == "passive");
  CHECK(Role(*c, 0) == "active");
  auto cluster = c->Json({"cluster"});
  CHECK(cluster["pair"]["state"] == "active");
  CHECK(cluster["pair"]["peer_state"] == "passive");
}

TEST_CASE("a client waiting on a job keeps waiting across a failover and gets the result") {
  auto c = Cluster::Pair(kFastWorkers);
  c->StartBroker(0);
  c->StartBroker(1);
  REQUIRE(WaitFor([&] { return Role(*c, 0) == "active" && Role(*c, 1) == "passive"; }));
  REQUIRE(WaitFor([&] {
    auto cluster = c->Json({"cluster"});
    return cluster.contains("pair") && cluster["pair"]["replica_in_sync"] == true;
  }));
  // The job takes a while, so the failover lands in the middle of it.
  c->StartWorker("w1", "slow", "sleep 2; echo finished");
  const auto id = c->Submit({"--type", "slow", "--backoff", "100ms"});
  auto waiter = Process::Start({BinPath("claw-client"), "--broker", c->endpoint(),
                                "--request-timeout", "1s", "wait", id, "--timeout", "120s"},
                               c->Path("waiter.log"));
  REQUIRE(c->WaitState(id, "running"));
  c->KillBroker(SIGKILL, 0);
  const auto code = waiter.Wait(std::chrono::seconds(120));
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(ReadFile(c->Path("waiter.log")).find("finished") != std::string::npos);
  CHECK(Role(*c, 1) == "active");
}

}  // namespace
}  // namespace claw::testing
