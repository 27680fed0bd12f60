// Which worker gets a job: the strategies and the circuit breaker as the Core applies them
// (the decisions themselves are tested in broker_strategy_test and broker_circuit_breaker_test).
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "tests/unit/core_harness.hpp"

namespace claw::broker {
namespace {

using testing::Harness;
using testing::TestConfig;
using wire::JobState;
using wire::StatusCode;

// Moves the clock on by `ms` in steps of one heartbeat, the worker heartbeating all along.
void AdvanceAlive(Harness& h, const std::string& worker, std::int64_t ms) {
  for (std::int64_t step = 0; step < ms; step += 1000) {
    h.SendWorker(worker, wire::Heartbeat{});
    h.Advance(1000);
  }
}

// The worker of each job dispatched so far, by worker.
std::map<std::string, int> Dispatched(Harness& h, std::initializer_list<std::string> workers) {
  std::map<std::string, int> counts;
  for (const auto& w : workers) counts[w] = static_cast<int>(h.JobsTo(w).size());
  return counts;
}

TEST_CASE("dispatch: least-loaded (the default) fills workers in proportion to capacity") {
  Harness h;
  CHECK(h.Cluster().strategy == "least-loaded");
  h.Ready("big", {"t"}, 4);
  h.Ready("small", {"t"}, 2);
  for (int i = 0; i < 3; ++i) h.SubmitId("t");
  // Loads after each pick: big 1/4, small 1/2 -> big 2/4, small 1/2 -> big, as 2/4 ties 1/2 and
  // big has more free slots.
  CHECK(Dispatched(h, {"big", "small"}) == std::map<std::string, int>{{"big", 2}, {"small", 1}});
  for (int i = 0; i < 3; ++i) h.SubmitId("t");
  CHECK(Dispatched(h, {"big", "small"}) == std::map<std::string, int>{{"big", 2}, {"small", 1}});
}

TEST_CASE("dispatch: with affinity, jobs of a type go on to the worker that ran the last one") {
  CoreConfig config = TestConfig();
  config.scheduling.affinity = true;
  Harness h(config);
  h.Ready("a", {"t"}, 3);
  h.Ready("b", {"t"}, 3);
  for (int i = 0; i < 3; ++i) h.SubmitId("t");
  const auto counts = Dispatched(h, {"a", "b"});
  // Least-loaded alone would alternate; affinity keeps the worker while it has room.
  CHECK((counts == std::map<std::string, int>{{"a", 3}, {"b", 0}} ||
         counts == std::map<std::string, int>{{"a", 0}, {"b", 3}}));
}

TEST_CASE("dispatch: hash sends jobs with the same hash_key to the same worker") {
  CoreConfig config = TestConfig();
  config.scheduling.strategy = Strategy::kHash;
  Harness h(config);
  for (const char* w : {"w1", "w2", "w3"}) h.Ready(w, {"t"}, 100);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(h.Submit(wire::SubmitRequest{.job = {.type = "t", .hash_key = "customer-42"}}).status ==
            StatusCode::kAccepted);
  }
  const auto counts = Dispatched(h, {"w1", "w2", "w3"});
  int holders = 0;
  for (const auto& [w, n] : counts) holders += n > 0 ? 1 : 0;
  CHECK(holders == 1);
  // Many keys spread over every worker.
  for (int i = 0; i < 60; ++i) {
    h.Submit(wire::SubmitRequest{.job = {.type = "t", .hash_key = "k-" + std::to_string(i)}});
  }
  for (const auto& [w, n] : Dispatched(h, {"w1", "w2", "w3"})) CHECK(n > 0);
}

TEST_CASE("dispatch: a worker failing in a row opens its breaker, half-open trials close it") {
  CoreConfig config = TestConfig();
  config.max_attempts = 10;
  config.breaker = BreakerConfig{.enabled = true,
                                 .failure_threshold = 2,
                                 .recovery_timeout_ms = 10'000,
                                 .half_open_requests = 1};
  Harness h(config);
  h.Ready("w", {"t"}, 1);
  for (int i = 0; i < 2; ++i) {
    const auto id = h.SubmitId("t");
    auto jobs = h.JobsTo("w");
    REQUIRE(jobs.size() == 1);
    h.SendWorker("w", wire::Failed{.id = id, .lease = jobs[0].lease, .error = "disk full"});
    h.Commit();
  }
  CHECK(h.Cluster().workers.at(0).breaker == "open");
  AdvanceAlive(h, "w", 5'000);  // the retries are due, but the breaker keeps the worker out
  CHECK(h.JobsTo("w").empty());
  CHECK(h.Cluster().jobs.at("queued") == 2);
  AdvanceAlive(h, "w", 5'000);  // recovery time over: one trial job
  auto trial = h.JobsTo("w");
  REQUIRE(trial.size() == 1);
  CHECK(h.Cluster().workers.at(0).breaker == "half-open");
  h.SendWorker("w", wire::Done{.id = trial[0].id, .lease = trial[0].lease});
  CHECK(h.Cluster().workers.at(0).breaker == "closed");
  CHECK(h.JobsTo("w").size() == 1);  // and the rest flows again
}

TEST_CASE("dispatch: permanent failures are the job's fault and leave the breaker closed") {
  CoreConfig config = TestConfig();
  config.breaker.failure_threshold = 2;
  Harness h(config);
  h.Ready("w", {"t"}, 1);
  for (int i = 0; i < 4; ++i) {
    const auto id = h.SubmitId("t");
    auto jobs = h.JobsTo("w");
    REQUIRE(jobs.size() == 1);
    h.SendWorker(
        "w",
        wire::Failed{.id = id, .lease = jobs[0].lease, .error = "bad input", .permanent = true});
    h.Commit();
  }
  CHECK(h.Cluster().workers.at(0).breaker == "closed");
}

TEST_CASE("placement: a gpu job never reaches a worker without gpu, and says why it waits") {
  Harness h;
  h.SendWorker("cpu", wire::Ready{"cpu", {"render"}, 4, {{"zone", "eu-1"}}});
  const auto gpu_job =
      *h.Submit(wire::SubmitRequest{.job = {.type = "render", .required = {{"gpu", "true"}}}}).id;
  // Behind it, plain jobs still run: the gpu job does not hold up its queue.
  const auto plain = h.SubmitId("render");
  auto jobs = h.JobsTo("cpu");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == plain);
  const auto waiting = h.Status(gpu_job);
  CHECK(waiting.state == JobState::kQueued);
  CHECK(waiting.waiting_reason.find("gpu=true") != std::string::npos);
  CHECK(h.Status(plain).waiting_reason.empty());

  h.SendWorker("gpu", wire::Ready{"gpu", {"render"}, 1, {{"gpu", "true"}}});
  jobs = h.JobsTo("gpu");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == gpu_job);
}

TEST_CASE("placement: same-zone keeps a job in its zone, cross-zone falls back to others") {
  Harness h;
  h.SendWorker("us", wire::Ready{"us", {"t"}, 4, {{"zone", "us-1"}}});
  const auto strict =
      *h.Submit(wire::SubmitRequest{
                    .job = {.type = "t", .zone = "eu-1", .locality = wire::Locality::kSameZone}})
           .id;
  const auto lenient =
      *h.Submit(wire::SubmitRequest{
                    .job = {.type = "t", .zone = "eu-1", .locality = wire::Locality::kCrossZone}})
           .id;
  auto jobs = h.JobsTo("us");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == lenient);
  CHECK(h.Status(strict).waiting_reason.find("eu-1") != std::string::npos);
  h.SendWorker("eu", wire::Ready{"eu", {"t"}, 4, {{"zone", "eu-1"}}});
  jobs = h.JobsTo("eu");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == strict);
}

// A locality none of the three does not decode (schema_decode_test).
TEST_CASE("placement: bad labels and zones are refused at submit") {
  Harness h;
  const auto label =
      h.Submit(wire::SubmitRequest{.job = {.type = "t", .required = {{"a=b", "c"}}}});
  CHECK(label.status == StatusCode::kBadRequest);
  CHECK(label.message == "required label 'a=b': the key holds '='");
  CHECK(h.Submit(wire::SubmitRequest{.job = {.type = "t", .zone = "two words"}}).status ==
        StatusCode::kBadRequest);
}

TEST_CASE("placement: a type with no worker at all says so") {
  Harness h;
  const auto id = h.SubmitId("nobody-runs-this");
  CHECK(h.Status(id).waiting_reason == "no worker serves type 'nobody-runs-this'");
}

TEST_CASE("migration: a lost worker's job moves at once and resumes from its checkpoint") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::ProgressReport{.id = id, .lease = job.lease, .checkpoint = "page=40"});
  h.Ready("w2", {"t"}, 1);
  AdvanceAlive(h, "w2", 4000);  // w1 silent: lost
  auto moved = h.JobsTo("w2");
  REQUIRE(moved.size() == 1);
  CHECK(moved[0].id == id);
  CHECK(moved[0].attempt == 2);  // a lost worker's attempt counts: the job may have killed it
  CHECK(*moved[0].checkpoint == "page=40");
}

TEST_CASE("drain: no new jobs, running ones move with their checkpoint, undrain restores") {
  Harness h;
  h.Ready("old", {"t"}, 2);
  const auto a = h.SubmitId("t");
  auto running = h.JobsTo("old");
  REQUIRE(running.size() == 1);
  h.SendWorker("old",
               wire::ProgressReport{.id = a, .lease = running[0].lease, .checkpoint = "row=7"});
  auto reply = h.Ask(wire::DrainRequest{.rid = 3, .worker = "old"});
  CHECK(reply.status == StatusCode::kOk);
  CHECK(*reply.moved == 1);
  const auto cancels = h.Only<wire::CancelJob>(h.MessagesTo("old"));
  REQUIRE(cancels.size() == 1);
  CHECK(cancels[0].id == a);
  CHECK(h.Cluster().workers.at(0).draining);
  const auto b = h.SubmitId("t");
  CHECK(h.JobsTo("old").empty());
  h.Ready("new", {"t"}, 2);
  auto taken = h.JobsTo("new");
  REQUIRE(taken.size() == 2);
  CHECK(taken[0].id == a);
  CHECK(taken[0].attempt == 1);  // a drain gives the attempt back
  CHECK(*taken[0].checkpoint == "row=7");
  CHECK(taken[1].id == b);
  // The drained worker's late reply for the moved job frees its slot and changes nothing.
  h.SendWorker("old", wire::Failed{.id = a, .lease = running[0].lease, .error = "stopped"});
  CHECK(h.Status(a).state == JobState::kRunning);
  CHECK(h.Ask(wire::DrainRequest{.rid = 4, .worker = "old", .drain = false}).status ==
        StatusCode::kOk);
  h.SubmitId("t");
  CHECK(h.JobsTo("old").size() == 1);
  CHECK(h.Ask(wire::DrainRequest{.rid = 5, .worker = "nobody"}).status == StatusCode::kNotFound);
}

TEST_CASE("prefetch: a worker holds capacity + prefetch jobs; STARTED starts the timeout clock") {
  CoreConfig config = TestConfig();
  config.health.interval_ms = 60'000;  // the worker answers no health check in these 26 s
  Harness h(config);
  h.SendWorker("w", wire::Ready{.worker_id = "w", .types = {"t"}, .capacity = 1, .prefetch = 2});
  for (int i = 0; i < 4; ++i) h.SubmitId("t");
  const auto jobs = h.JobsTo("w");
  REQUIRE(jobs.size() == 3);  // one to run, two to wait; the fourth stays queued
  CHECK(h.Cluster().workers.at(0).in_use == 3);
  CHECK(h.Cluster().workers.at(0).prefetch == 2);
  CHECK(h.Cluster().workers.at(0).waiting == 3);  // none has said STARTED
  h.SendWorker("w", wire::Started{jobs[0].id, jobs[0].lease});
  CHECK(h.Cluster().workers.at(0).waiting == 2);
  // 10 s timeout + 3 s grace. jobs[0] ends at 12 s and the worker starts jobs[1]: it is working
  // through its queue, so jobs[2], held 14 s by then, stays.
  AdvanceAlive(h, "w", 12'000);
  h.SendWorker("w", wire::Done{jobs[0].id, jobs[0].lease, ""});
  h.SendWorker("w", wire::Started{jobs[1].id, jobs[1].lease});
  const auto fourth = h.JobsTo("w");  // the slot jobs[0] freed
  REQUIRE(fourth.size() == 1);
  AdvanceAlive(h, "w", 2000);
  CHECK(h.Status(jobs[0].id).state == JobState::kSucceeded);
  CHECK(h.Cluster().workers.at(0).waiting == 2);
  CHECK(h.Only<wire::CancelJob>(h.MessagesTo("w")).empty());
  // Then the worker starts nothing: 13 s after its last STARTED, jobs[1] times out and the two
  // it holds unstarted are taken back.
  AdvanceAlive(h, "w", 12'000);
  CHECK(h.Status(jobs[1].id).error.starts_with("timed out"));
  CHECK(h.Status(jobs[2].id).state == JobState::kQueued);
  CHECK(h.Status(jobs[2].id).attempts == 0);
  CHECK(h.Status(fourth[0].id).state == JobState::kQueued);
  const auto cancels = h.Only<wire::CancelJob>(h.MessagesTo("w"));
  REQUIRE(cancels.size() == 3);
  CHECK(std::ranges::count(cancels,
                           wire::CancelJob{jobs[2].id, jobs[2].lease, "not started in time"}) == 1);
  CHECK(std::ranges::count(
            cancels, wire::CancelJob{fourth[0].id, fourth[0].lease, "not started in time"}) == 1);
  // The worker's answers only free the slots; the two taken back, queued ahead of jobs[1]'s
  // retry, take them on their first attempt still.
  h.SendWorker("w", wire::Returned{jobs[2].id, jobs[2].lease});
  h.SendWorker("w", wire::Returned{fourth[0].id, fourth[0].lease});
  const auto again = h.JobsTo("w");
  REQUIRE(again.size() == 2);
  std::map<std::string, std::uint32_t> attempts;
  for (const auto& job : again) attempts[job.id] = job.attempt;
  CHECK(attempts == std::map<std::string, std::uint32_t>{{jobs[2].id, 1}, {fourth[0].id, 1}});
  const auto& held = again[0].id == jobs[2].id ? again[0] : again[1];
  // Given back unstarted: queued again ahead of the others, the attempt not counted.
  h.SendWorker("w", wire::Returned{held.id, held.lease});
  const auto third = h.JobsTo("w");
  REQUIRE(third.size() == 1);
  CHECK(third[0].id == jobs[2].id);
  CHECK(third[0].attempt == 1);
  // Given back after STARTED: that attempt ran, and counts.
  h.SendWorker("w", wire::Started{third[0].id, third[0].lease});
  h.SendWorker("w", wire::Returned{third[0].id, third[0].lease});
  const auto job = h.Status(jobs[2].id);
  CHECK(job.state == JobState::kScheduled);
  CHECK(job.attempts == 1);
  CHECK(job.error == "returned by worker w after it started");
}

TEST_CASE("prefetch: a lost worker's unstarted jobs go back with their attempt given back") {
  Harness h;
  h.SendWorker("w1", wire::Ready{.worker_id = "w1", .types = {"t"}, .capacity = 1, .prefetch = 1});
  const auto a = h.SubmitId("t");
  const auto b = h.SubmitId("t");
  const auto held = h.JobsTo("w1");
  REQUIRE(held.size() == 2);
  h.SendWorker("w1", wire::Started{held[0].id, held[0].lease});
  h.Ready("w2", {"t"}, 2);
  AdvanceAlive(h, "w2", 4000);  // w1 silent: lost
  std::map<std::string, std::uint32_t> attempts;
  for (const auto& job : h.JobsTo("w2")) attempts[job.id] = job.attempt;
  CHECK(attempts == std::map<std::string, std::uint32_t>{{a, 2}, {b, 1}});
}

TEST_CASE("adaptive: an overloaded worker's unstarted jobs are recalled for a less loaded one") {
  CoreConfig config = TestConfig();
  config.scheduling.strategy = Strategy::kAdaptive;
  config.scheduling.rebalance_interval_ms = 2000;
  config.scheduling.affinity = true;  // would send a returned job back to busy, its last pick
  Harness h(config);
  h.SendWorker("busy",
               wire::Ready{.worker_id = "busy", .types = {"t"}, .capacity = 1, .prefetch = 5});
  for (int i = 0; i < 6; ++i) h.SubmitId("t");
  const auto held = h.JobsTo("busy");
  REQUIRE(held.size() == 6);
  h.SendWorker("busy", wire::Started{held[0].id, held[0].lease});
  h.Ready("idle", {"t"}, 2);
  CHECK(h.JobsTo("idle").empty());  // nothing is queued: dispatch alone moves nothing
  const auto both_alive = [&](std::int64_t ms) {
    for (std::int64_t step = 0; step < ms; step += 1000) {
      h.SendWorker("busy", wire::Heartbeat{});
      h.SendWorker("idle", wire::Heartbeat{});
      h.Advance(1000);
    }
  };
  const auto recalls = [&] { return h.Only<wire::Recall>(h.MessagesTo("busy")); };
  both_alive(2000);  // overloaded since the first tick, 1 s ago
  CHECK(recalls().empty());
  both_alive(1000);
  const auto recalled = recalls();
  // As many as idle can start at once (2 slots, load stays below 0.8), the newest first.
  REQUIRE(recalled.size() == 2);
  CHECK(recalled[0].id == held[5].id);
  CHECK(recalled[1].id == held[4].id);
  // One comes back; the other had started (its STARTED crossed the RECALL).
  h.SendWorker("busy", wire::Returned{held[5].id, held[5].lease});
  h.SendWorker("busy", wire::Started{held[4].id, held[4].lease});
  const auto moved = h.JobsTo("idle");
  REQUIRE(moved.size() == 1);
  CHECK(moved[0].id == held[5].id);
  CHECK(moved[0].attempt == 1);
  CHECK(h.Cluster().workers.at(0).waiting == 3);
  // The clock started again: nothing more is recalled within the next interval.
  both_alive(1000);
  CHECK(recalls().empty());
  both_alive(1000);
  const auto last = recalls();
  REQUIRE(last.size() == 1);  // idle has one slot left
  // The recalled job is cancelled before busy answers: nothing more is recalled for it, and a
  // rebalance after it has left memory finds nothing stale.
  REQUIRE(h.Ask(wire::CancelRequest{.rid = 99, .id = last[0].id}).status == StatusCode::kOk);
  CHECK(h.Cluster().workers.at(0).waiting == 2);
  h.Commit();
  both_alive(4000);
  const auto later = h.MessagesTo("busy");
  CHECK(std::ranges::count(h.Only<wire::CancelJob>(later), last[0].id, &wire::CancelJob::id) == 1);
  for (const auto& recall : h.Only<wire::Recall>(later)) CHECK(recall.id != last[0].id);
  CHECK(h.Status(last[0].id).state == JobState::kCancelled);
  CHECK(h.Cluster().workers.size() == 2);
}

TEST_CASE("nodes: a declared node's capacity also ends its worker's prefetch") {
  CoreConfig config = TestConfig();
  config.cluster.nodes = {{.id = "w1", .host = "h", .capacity = 2}};
  Harness h(config);
  h.SendWorker("w1", wire::Ready{.worker_id = "w1", .types = {"t"}, .capacity = 4, .prefetch = 2});
  CHECK(h.Cluster().workers.at(0).capacity == 2);
  CHECK(h.Cluster().workers.at(0).prefetch == 0);
  for (int i = 0; i < 4; ++i) h.SubmitId("t");
  CHECK(h.JobsTo("w1").size() == 2);  // it would run every job it holds: only two
}

TEST_CASE("nodes: a declared worker node bounds its worker's capacity and gives its zone") {
  CoreConfig config = TestConfig();
  config.cluster.name = "crawl";
  config.cluster.nodes = {{.id = "c1", .host = "10.0.1.10", .role = NodeRole::kCoordinator},
                          {.id = "w1", .host = "10.0.1.11", .capacity = 2, .zone = "eu-1"},
                          {.id = "w2", .host = "10.0.1.12", .capacity = 8}};
  Harness h(config);
  h.Ready("w1", {"t"}, 4);
  h.SendWorker(
      "w2",
      wire::Ready{.worker_id = "w2", .types = {"t"}, .capacity = 3, .labels = {{"zone", "us-1"}}});
  const auto cluster = h.Cluster();
  CHECK(cluster.name == "crawl");
  REQUIRE(cluster.workers.size() == 2);
  CHECK(cluster.workers[0].capacity == 2);  // 4 announced, 2 declared
  CHECK(cluster.workers[0].labels.at("zone") == "eu-1");
  CHECK(cluster.workers[1].capacity == 3);                // the smaller of the two
  CHECK(cluster.workers[1].labels.at("zone") == "us-1");  // its own label wins
  REQUIRE(cluster.nodes.size() == 3);
  CHECK(cluster.nodes[0] == wire::NodeInfo{.id = "c1", .host = "10.0.1.10", .role = "coordinator"});
  CHECK(cluster.nodes[1] == wire::NodeInfo{.id = "w1",
                                           .host = "10.0.1.11",
                                           .role = "worker",
                                           .capacity = 2,
                                           .zone = "eu-1",
                                           .up = true});
  CHECK(cluster.nodes[2].up == true);
  for (int i = 0; i < 5; ++i) h.SubmitId("t");
  CHECK(h.JobsTo("w1").size() == 2);
  h.SendWorker("w1", wire::Disconnect{"bye"});
  CHECK(h.Cluster().nodes[1].up == false);
}

TEST_CASE("health: unanswered checks make a worker unhealthy, answers make it healthy again") {
  CoreConfig config = TestConfig();
  config.health = HealthConfig{
      .interval_ms = 1000, .timeout_ms = 500, .unhealthy_threshold = 2, .healthy_threshold = 2};
  Harness h(config);
  h.Ready("w", {"t"}, 1);
  h.Take();
  // The worker heartbeats but ignores the checks.
  for (int i = 0; i < 3; ++i) {
    h.SendWorker("w", wire::Heartbeat{});
    h.Advance(1000);
  }
  CHECK(h.Cluster().workers.at(0).health == "unhealthy");
  const auto id = h.SubmitId("t");
  CHECK(h.JobsTo("w").empty());
  CHECK(h.Status(id).waiting_reason.find("unhealthy") != std::string::npos);
  // Now it answers every check.
  for (int i = 0; i < 20 && h.Cluster().workers.at(0).health != "healthy"; ++i) {
    for (const auto& m : h.Only<wire::Heartbeat>(h.MessagesTo("w"))) {
      if (m.check) h.SendWorker("w", wire::Heartbeat{.check = m.check});
    }
    h.Advance(300);
  }
  CHECK(h.Cluster().workers.at(0).health == "healthy");
  CHECK(h.Cluster().workers.at(0).rtt_ms.has_value());
  CHECK(h.JobsTo("w").size() == 1);
}

}  // namespace
}  // namespace claw::broker
