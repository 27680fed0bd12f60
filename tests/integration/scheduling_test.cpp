// Strategies and the circuit breaker with real workers (the decisions are unit tested in
// tests/unit/broker_dispatch_test.cpp and the modules' own tests).
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>

#include "tests/integration/cluster.hpp"

namespace claw::testing {
namespace {

// Writes a broker config file into `dir` and returns the --config flags for it.
std::vector<std::string> ConfigFlags(const TempDir& dir, const std::string& yaml) {
  const std::string path = dir.File("claw.yaml");
  std::ofstream(path) << yaml;
  return {"--config", path};
}

// Waits until `pred` holds for `claw-client --json cluster`.
template <typename Pred>
bool WaitCluster(Cluster& c, Pred pred) {
  return WaitFor([&] { return pred(c.Json({"cluster"})); }, std::chrono::seconds(60));
}

std::string BreakerOf(const nlohmann::json& cluster, const std::string& worker) {
  for (const auto& w : cluster["workers"]) {
    if (w["id"] == worker) return w["breaker"];
  }
  return "";
}

TEST_CASE("least-loaded: 1,000 jobs over workers of capacity 20/10/10 land in proportion") {
  Cluster c;
  c.StartBroker();
  // Every job sleeps long enough that each worker stays full while the backlog lasts and the
  // cost of starting its process (shared by all workers on two cores) does not decide the split.
  const std::string members = c.Path("jobs.jsonl");
  {
    std::ofstream out(members);
    for (int i = 0; i < 1000; ++i)
      out << R"({"type": "spread", "payload": "x"})"
          << "\n";
  }
  const std::vector<std::pair<std::string, std::string>> workers = {
      {"w20", "20"}, {"w10a", "10"}, {"w10b", "10"}};
  for (const auto& [id, capacity] : workers) {
    c.StartWorker(id, "spread", "sleep 0.4", {"--capacity", capacity});
  }
  // All three ready before the first job, so that none gets a head start.
  REQUIRE(WaitCluster(c, [](const nlohmann::json& cl) { return cl["workers"].size() == 3; }));
  const auto group = c.GroupSubmit({members});
  CHECK(c.Client({"group", "wait", group, "--timeout", "300s"}).code == 0);
  const auto status = c.Group(group);
  std::map<std::string, int> by_worker;
  for (const auto& job : status["members"]) by_worker[job["worker"].get<std::string>()]++;
  MESSAGE("jobs per worker: w20 " << by_worker["w20"] << ", w10a " << by_worker["w10a"] << ", w10b "
                                  << by_worker["w10b"]);
  CHECK(by_worker["w20"] + by_worker["w10a"] + by_worker["w10b"] == 1000);
  // Within 10% of 500 / 250 / 250.
  CHECK(std::abs(by_worker["w20"] - 500) <= 50);
  CHECK(std::abs(by_worker["w10a"] - 250) <= 25);
  CHECK(std::abs(by_worker["w10b"] - 250) <= 25);
}

TEST_CASE("adaptive: jobs a busy worker holds but has not started move to a worker that joins") {
  TempDir config;
  Cluster c(ConfigFlags(config,
                        "distribution:\n"
                        "  strategy: adaptive\n"
                        "  adaptive:\n"
                        "    rebalanceInterval: 500ms\n"
                        "    threshold: 0.8\n"));
  c.StartBroker();
  // Capacity 1 and prefetch 7: it takes all eight jobs, and would run them one after another.
  c.StartWorker("busy", "slow", "sleep 2", {"--prefetch", "7"});
  REQUIRE(WaitCluster(c, [](const nlohmann::json& cl) { return cl["workers"].size() == 1; }));
  const std::string members = c.Path("jobs.jsonl");
  {
    std::ofstream out(members);
    for (int i = 0; i < 8; ++i)
      out << R"({"type": "slow"})"
          << "\n";
  }
  const auto group = c.GroupSubmit({members});
  // Each job takes 2 s, so this holds for seconds after the submit.
  REQUIRE(WaitCluster(c, [](const nlohmann::json& cl) {
    return cl["jobs"]["queued"] == 0 && cl["workers"].size() == 1 &&
           cl["workers"][0]["waiting"] >= 5;
  }));
  // Nothing is queued, so only a rebalance can give the new worker a job.
  c.StartWorker("idle", "slow", "sleep 2", {"--capacity", "4"});
  CHECK(c.Client({"group", "wait", group, "--timeout", "120s"}).code == 0);
  const auto status = c.Group(group);
  std::map<std::string, int> by_worker;
  for (const auto& job : status["members"]) {
    by_worker[job["worker"].get<std::string>()]++;
    CHECK(job["state"] == "succeeded");
    CHECK(job["attempts"] == 1);  // a job given back unstarted keeps its attempt
  }
  MESSAGE("jobs per worker: " << nlohmann::json(by_worker).dump());
  CHECK(by_worker["busy"] + by_worker["idle"] == 8);
  CHECK(by_worker["idle"] >= 1);
  CHECK(c.broker_log().find("recalled") != std::string::npos);
}

TEST_CASE("hash: jobs with the same hash key all run on one worker") {
  TempDir config;
  Cluster hashed(ConfigFlags(config, "distribution:\n  strategy: hash\n"));
  hashed.StartBroker();
  for (const char* w : {"h1", "h2", "h3"})
    hashed.StartWorker(w, "shard", "echo $CLAW_JOB_ID", {"--capacity", "4"});
  REQUIRE(WaitCluster(hashed, [](const nlohmann::json& cl) { return cl["workers"].size() == 3; }));
  std::vector<std::string> same, spread;
  for (int i = 0; i < 12; ++i) {
    same.push_back(hashed.Submit({"--type", "shard", "--hash-key", "customer-42"}));
    spread.push_back(hashed.Submit({"--type", "shard", "--hash-key", "k-" + std::to_string(i)}));
  }
  std::set<std::string> same_workers, spread_workers;
  for (const auto& id : same) {
    REQUIRE(hashed.WaitState(id, "succeeded"));
    same_workers.insert(hashed.Json({"status", id})["worker"].get<std::string>());
  }
  for (const auto& id : spread) {
    REQUIRE(hashed.WaitState(id, "succeeded"));
    spread_workers.insert(hashed.Json({"status", id})["worker"].get<std::string>());
  }
  CHECK(same_workers.size() == 1);
  CHECK(spread_workers.size() > 1);
}

TEST_CASE("breaker: failures in a row open it, and a half-open trial that succeeds closes it") {
  TempDir config;
  const auto flags = ConfigFlags(config,
                                 "faultTolerance:\n"
                                 "  circuitBreaker:\n"
                                 "    enabled: true\n"
                                 "    failureThreshold: 3\n"
                                 "    recoveryTimeout: 2s\n"
                                 "    halfOpenRequests: 1\n");
  Cluster c(flags);
  c.StartBroker();
  // Notes when each attempt starts (ms), then fails (retryably) until the flag file exists.
  const std::string flag = c.Path("healthy");
  const std::string starts = c.Path("starts");
  c.StartWorker("flaky", "fragile", "date +%s%3N >> " + starts + "; test -f " + flag);
  const auto id = c.Submit({"--type", "fragile", "--max-attempts", "20", "--backoff", "100ms",
                            "--max-backoff", "200ms"});
  CHECK(WaitCluster(c, [](const nlohmann::json& cl) { return BreakerOf(cl, "flaky") == "open"; }));
  CHECK(c.State(id) != "succeeded");
  std::ofstream(flag) << "ok";
  CHECK(c.WaitState(id, "succeeded"));
  CHECK(
      WaitCluster(c, [](const nlohmann::json& cl) { return BreakerOf(cl, "flaky") == "closed"; }));
  const auto job = c.Json({"status", id});
  // Three failures opened it; the trial after the recovery time succeeded.
  CHECK(job["attempts"].get<int>() >= 4);
  // No attempt started while it was open: the fourth began at least the recovery time (2 s)
  // after the third. (A lower bound: a slow machine only makes the gap longer.)
  std::vector<long long> at;
  std::ifstream in(starts);
  for (long long ms = 0; in >> ms;) at.push_back(ms);
  REQUIRE(at.size() == job["attempts"].get<std::size_t>());
  CHECK(at[3] - at[2] >= 1900);
}

TEST_CASE("placement: gpu jobs never reach a worker without gpu, and say why they wait") {
  Cluster c;
  c.StartBroker();
  c.StartWorker("cpu", "render", "echo $CLAW_JOB_ID", {"--capacity", "4", "--label", "zone=eu-1"});
  REQUIRE(WaitCluster(c, [](const nlohmann::json& cl) { return cl["workers"].size() == 1; }));
  const auto first = c.Submit({"--type", "render", "--require", "gpu=true"});
  REQUIRE(WaitFor([&] {
    const auto job = c.Json({"status", first});
    return job.contains("waiting_reason") &&
           job["waiting_reason"].get<std::string>().find("gpu=true") != std::string::npos;
  }));
  CHECK(c.State(first) == "queued");
  c.StartWorker("gpu", "render", "echo $CLAW_JOB_ID", {"--capacity", "2", "--label", "gpu=true"});
  std::vector<std::string> gpu_jobs = {first}, plain_jobs;
  for (int i = 0; i < 10; ++i) {
    gpu_jobs.push_back(c.Submit({"--type", "render", "--require", "gpu=true"}));
    plain_jobs.push_back(c.Submit({"--type", "render"}));
  }
  for (const auto& id : gpu_jobs) {
    REQUIRE(c.WaitState(id, "succeeded"));
    CHECK(c.Json({"status", id})["worker"] == "gpu");
  }
  for (const auto& id : plain_jobs) REQUIRE(c.WaitState(id, "succeeded"));
}

TEST_CASE("migration: a job killed with its worker resumes from its checkpoint on another") {
  Cluster c({"--heartbeat", "200ms"});
  c.StartBroker();
  // Ten steps; each reports a checkpoint; a later attempt starts after the last one reported.
  const std::string steps =
      "start=0; [ -n \"$CLAW_CHECKPOINT_FILE\" ] && start=$(cat \"$CLAW_CHECKPOINT_FILE\"); "
      "i=$start; while [ $i -lt 10 ]; do i=$((i+1)); sleep 0.2; "
      "echo \"checkpoint $i\" >&$CLAW_PROGRESS_FD; "
      "echo \"progress $((i*10)) step $i\" >&$CLAW_PROGRESS_FD; done; echo \"from=$start\"";
  auto& doomed = c.StartWorker("doomed", "steps", steps);
  const auto id = c.Submit({"--type", "steps"});
  REQUIRE(WaitFor(
      [&] {
        const auto job = c.Json({"status", id});
        return job.contains("progress") && job["progress"].value("percent", 0) >= 30;
      },
      std::chrono::seconds(60)));
  doomed.Signal(SIGKILL);
  REQUIRE(doomed.Wait(std::chrono::seconds(10)).has_value());
  c.StartWorker("rescuer", "steps", steps);
  REQUIRE(c.WaitState(id, "succeeded"));
  const auto job = c.Json({"status", id});
  CHECK(job["worker"] == "rescuer");
  const std::string result = job["result"];
  REQUIRE(result.starts_with("from="));
  CHECK(std::stoi(result.substr(5)) >= 3);  // resumed, not started over
}

}  // namespace
}  // namespace claw::testing
