// The broker's decisions driven directly (tests/unit/core_harness.hpp): submits, dispatch,
// completions, retries, workers, commits.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/unit/core_harness.hpp"

namespace claw::broker {
namespace {

using testing::Harness;
using testing::TestConfig;
using wire::JobState;
using wire::StatusCode;

TEST_CASE("ACCEPTED is sent only once the job is committed") {
  Harness h;
  h.Send("client", wire::SubmitRequest{.rid = 7, .job = {.type = "crawl", .payload = "x"}});
  CHECK(h.RepliesTo("client").empty());
  auto batch = h.core().TakeBatch(h.now());
  REQUIRE(batch.has_value());
  CHECK(batch->writes.size() == 1);
  CHECK(batch->writes[0].insert);
  CHECK(h.RepliesTo("client").empty());  // still in flight
  h.core().OnBatchDone(h.store().Apply(*batch), h.now());
  auto replies = h.RepliesTo("client");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].rid == 7);
  CHECK(replies[0].status == StatusCode::kAccepted);
  CHECK(*replies[0].id == "j-1");
  auto stored = h.store().Get(1);
  REQUIRE(stored.has_value());
  REQUIRE(stored->has_value());
  CHECK((*stored)->type == "crawl");
  CHECK((*stored)->state == JobState::kQueued);
}

TEST_CASE("batch_ack: one commit's ACCEPTEDs reach each client as one reply, in order") {
  Harness h;
  for (std::uint64_t rid : {11, 12, 13}) {
    h.Send("a", wire::SubmitRequest{.rid = rid, .job = {.type = "t"}, .batch_ack = true});
  }
  h.Send("b", wire::SubmitRequest{.rid = 21, .job = {.type = "t"}, .batch_ack = true});
  h.Send("a", wire::SubmitRequest{.rid = 14, .job = {.type = "t"}});
  CHECK(h.RepliesTo("a").empty());
  h.Commit();
  auto to_a = h.RepliesTo("a");
  REQUIRE(to_a.size() == 2);
  const auto& folded = to_a[0];  // in the place of its first request, before rid 14's reply
  const auto& plain = to_a[1];
  CHECK(plain.id == "j-5");
  CHECK_FALSE(plain.rids.has_value());
  CHECK(folded.status == StatusCode::kAccepted);
  CHECK(folded.rid == 11);
  CHECK(folded.id == "j-1");
  CHECK(folded.rids == std::vector<std::uint64_t>{11, 12, 13});
  CHECK(folded.ids == std::vector<std::string>{"j-1", "j-2", "j-3"});
  auto to_b = h.RepliesTo("b");  // one job: a plain ACCEPTED
  REQUIRE(to_b.size() == 1);
  CHECK(to_b[0].rid == 21);
  CHECK(to_b[0].id == "j-4");
  CHECK_FALSE(to_b[0].rids.has_value());
}

TEST_CASE("batch_ack: a job's ACCEPTED comes before the existing:true of a resend of it") {
  Harness h;
  h.Send("a", wire::SubmitRequest{.rid = 1, .job = {.type = "t"}, .batch_ack = true});
  h.Send("a", wire::SubmitRequest{.rid = 2, .job = {.type = "t"}, .key = "k", .batch_ack = true});
  h.Send("a", wire::SubmitRequest{.rid = 3, .job = {.type = "t"}, .key = "k", .batch_ack = true});
  h.Commit();
  auto replies = h.RepliesTo("a");
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].rids == std::vector<std::uint64_t>{1, 2});
  CHECK(replies[0].ids == std::vector<std::string>{"j-1", "j-2"});
  CHECK(replies[1].rid == 3);
  CHECK(replies[1].id == "j-2");
  CHECK(replies[1].existing == true);
}

TEST_CASE("batch_ack: a batched reply answers at most max_batch_acks SUBMITs") {
  Harness h;
  const auto n = static_cast<std::uint64_t>(wire::limits::kMaxBatchAcks) + 1;
  for (std::uint64_t rid = 1; rid <= n; ++rid) {
    h.Send("a", wire::SubmitRequest{.rid = rid, .job = {.type = "t"}, .batch_ack = true});
  }
  h.Commit();
  auto replies = h.RepliesTo("a");
  REQUIRE(replies.size() == 2);
  REQUIRE(replies[0].rids.has_value());
  CHECK(replies[0].rids->size() == n - 1);
  CHECK(replies[0].ids->back() == "j-" + std::to_string(n - 1));
  CHECK(replies[1].rid == n);
  CHECK(replies[1].id == "j-" + std::to_string(n));
}

TEST_CASE("batch_ack: a failed commit answers each SUBMIT with its own STORAGE_ERROR") {
  Harness h;
  for (std::uint64_t rid : {1, 2}) {
    h.Send("a", wire::SubmitRequest{.rid = rid, .job = {.type = "t"}, .batch_ack = true});
  }
  auto batch = h.core().TakeBatch(h.now());
  REQUIRE(batch.has_value());
  h.core().OnBatchDone(std::unexpected(Error{"disk full"}), h.now());
  auto replies = h.RepliesTo("a");
  REQUIRE(replies.size() == 2);
  for (const auto& reply : replies) {
    CHECK(reply.status == StatusCode::kStorageError);
    CHECK_FALSE(reply.rids.has_value());
  }
  CHECK(replies[0].rid + replies[1].rid == 3);
}

TEST_CASE("a new job is not dispatched before its commit") {
  Harness h;
  h.Ready("w1", {"crawl"}, 1);
  h.MessagesTo("w1");
  h.Send("client", wire::SubmitRequest{.rid = 1, .job = {.type = "crawl"}});
  CHECK(h.JobsTo("w1").empty());
  h.Commit();
  CHECK(h.JobsTo("w1").size() == 1);
}

TEST_CASE("changes nobody waits for are held back for commit_delay, then go in one write") {
  Harness h;  // commit_delay_ms: the default, 10
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.Advance(0);  // the heartbeat scan, due at once after a READY, is done
  CHECK_FALSE(h.core().TakeBatch(h.now()).has_value());  // the dispatch waits
  CHECK(h.core().MillisUntilDue(h.now()) == 10);
  h.Advance(4);
  h.SendWorker("w1", wire::Done{id, job.lease, "r"});
  CHECK_FALSE(h.core().TakeBatch(h.now()).has_value());
  CHECK(h.core().MillisUntilDue(h.now()) == 6);  // counted from the first held-back change
  h.Advance(6);
  auto batch = h.core().TakeBatch(h.now());
  REQUIRE(batch.has_value());
  REQUIRE(batch->writes.size() == 1);  // dispatch and completion, one row write
  CHECK_FALSE(batch->writes[0].insert);
  CHECK(batch->writes[0].job.state == JobState::kSucceeded);
}

TEST_CASE("a held-back batch goes at once when a new job or a watcher joins it") {
  Harness h;
  const auto first = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  const auto lease = h.JobsTo("w1").at(0).lease;
  REQUIRE_FALSE(h.core().TakeBatch(h.now()).has_value());
  h.Send("client", wire::SubmitRequest{.rid = 90, .job = {.type = "t"}});
  auto batch = h.core().TakeBatch(h.now());
  REQUIRE(batch.has_value());
  CHECK(batch->writes.size() == 2);  // the dispatch rides with the insert
  h.core().OnBatchDone(h.store().Apply(*batch), h.now());
  CHECK(h.RepliesTo("client").size() == 1);

  h.SendWorker("w1", wire::Done{first, lease, ""});
  REQUIRE_FALSE(h.core().TakeBatch(h.now()).has_value());
  h.Ask(wire::WatchRequest{91, "j-2"});
  h.Ready("w2", {"t"}, 1);  // j-2 is dispatched: a watched job changes
  CHECK(h.core().TakeBatch(h.now()).has_value());
}

TEST_CASE("with commit_delay 0 every change is committed at once") {
  auto config = TestConfig();
  config.commit_delay_ms = 0;
  Harness h(config);
  h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  REQUIRE(h.JobsTo("w1").size() == 1);
  CHECK(h.core().TakeBatch(h.now()).has_value());
}

TEST_CASE("a failed commit refuses the new jobs with STORAGE_ERROR and keeps nothing") {
  Harness h;
  h.Send("client", wire::SubmitRequest{.rid = 1, .job = {.type = "crawl"}, .key = "k"});
  auto batch = h.core().TakeBatch(h.now());
  REQUIRE(batch.has_value());
  h.core().OnBatchDone(std::unexpected(Error{"disk full"}), h.now());
  auto replies = h.RepliesTo("client");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == StatusCode::kStorageError);
  CHECK(!replies[0].id.has_value());
  CHECK(h.core().CountIn(JobState::kQueued) == 0);
  CHECK(h.Ask(wire::StatusRequest{2, "j-1"}).status == StatusCode::kNotFound);
  // The key is free again: a new submit with it creates the job.
  auto again = h.Submit({.job = {.type = "crawl"}, .key = "k"});
  CHECK(again.status == StatusCode::kAccepted);
  CHECK(!again.existing.has_value());
}

TEST_CASE("dispatch takes higher priority first and is FIFO within a priority") {
  Harness h;
  const auto low = h.SubmitId("t", 2);
  const auto normal1 = h.SubmitId("t", 5);
  const auto critical = h.SubmitId("t", 9);
  const auto normal2 = h.SubmitId("t", 5);
  h.Ready("w1", {"t"}, 1);
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    auto jobs = h.JobsTo("w1");
    REQUIRE(jobs.size() == 1);
    order.push_back(jobs[0].id);
    h.SendWorker("w1", wire::Done{jobs[0].id, jobs[0].lease, "ok"});
  }
  CHECK(order == std::vector<std::string>{critical, normal1, normal2, low});
}

TEST_CASE("a worker never holds more jobs than its capacity") {
  Harness h;
  for (int i = 0; i < 5; ++i) h.SubmitId("t");
  h.Ready("w1", {"t"}, 2);
  auto first = h.JobsTo("w1");
  CHECK(first.size() == 2);
  h.SendWorker("w1", wire::Done{first[0].id, first[0].lease, ""});
  auto next = h.JobsTo("w1");
  CHECK(next.size() == 1);
  CHECK(h.core().Cluster(h.now()).capacity_in_use == 2);
}

TEST_CASE("jobs go only to workers that announced their type") {
  Harness h;
  h.Ready("w-other", {"other"}, 4);
  h.SubmitId("t");
  CHECK(h.JobsTo("w-other").empty());
  h.Ready("w-t", {"other", "t"}, 1);
  CHECK(h.JobsTo("w-t").size() == 1);
}

TEST_CASE("DONE records the result and the job is succeeded") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  CHECK(job.attempt == 1);
  CHECK(job.payload == "payload-1");
  h.SendWorker("w1", wire::Done{id, job.lease, "the result"});
  h.Commit();
  auto info = h.Status(id);
  CHECK(info.state == JobState::kSucceeded);
  CHECK(*info.result == "the result");
  CHECK(info.worker == "w1");
}

TEST_CASE("the same idempotency key gives the same job, before and after its commit") {
  Harness h;
  h.Send("a", wire::SubmitRequest{.rid = 1, .job = {.type = "t"}, .key = "order-17"});
  h.Send("b", wire::SubmitRequest{.rid = 2, .job = {.type = "t"}, .key = "order-17"});
  CHECK(h.RepliesTo("b").empty());  // waits for the first one's commit
  h.Commit();
  auto a = h.RepliesTo("a").at(0);
  auto b = h.RepliesTo("b").at(0);
  CHECK(*a.id == *b.id);
  CHECK(!a.existing.has_value());
  CHECK(*b.existing);
  auto c = h.Submit({.job = {.type = "t"}, .key = "order-17"});
  CHECK(*c.id == *a.id);
  CHECK(h.core().CountIn(JobState::kQueued) == 1);
}

TEST_CASE("a failed attempt waits its backoff, doubling, then the job is dead") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::Failed{id, job.lease, "boom", false});
  auto info = h.Status(id);
  CHECK(info.state == JobState::kScheduled);
  CHECK(info.error == "boom");
  CHECK(*info.run_at == static_cast<std::uint64_t>(h.now().wall_ms + 1000));
  h.Advance(999);
  CHECK(h.JobsTo("w1").empty());
  h.Advance(1);
  job = h.JobsTo("w1").at(0);
  CHECK(job.attempt == 2);
  h.SendWorker("w1", wire::Failed{id, job.lease, "boom again", false});
  h.Advance(1999);
  CHECK(h.JobsTo("w1").empty());
  h.Advance(1);
  job = h.JobsTo("w1").at(0);
  CHECK(job.attempt == 3);
  h.SendWorker("w1", wire::Failed{id, job.lease, "last", false});
  info = h.Status(id);
  CHECK(info.state == JobState::kDead);
  CHECK(info.attempts == 3);
  CHECK(info.error == "last");
}

TEST_CASE("a permanent failure is dead at once") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::Failed{id, job.lease, "bad input", true});
  CHECK(h.Status(id).state == JobState::kDead);
  CHECK(h.Status(id).attempts == 1);
}

TEST_CASE("retry puts a dead job back in the queue with its attempts reset") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::Failed{id, job.lease, "bad", true});
  h.Commit();  // the dead job leaves memory; retry must find it in the store
  CHECK(h.core().Find(1) == nullptr);
  auto reply = h.Ask(wire::RetryRequest{9, id});
  CHECK(reply.status == StatusCode::kOk);
  CHECK(reply.job->state == JobState::kQueued);
  job = h.JobsTo("w1").at(0);
  CHECK(job.attempt == 1);
  CHECK(h.Ask(wire::RetryRequest{10, id}).status == StatusCode::kConflict);
}

TEST_CASE("a worker that goes silent is dead; without migration its job backs off, then reruns") {
  CoreConfig config = TestConfig();
  config.migration.enabled = false;
  Harness h(config);
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.Advance(2000);
  h.Ready("w2", {"t"}, 1);  // w2 keeps talking; w1 does not
  h.Advance(1001);          // w1 silent for 3001 ms > 3 x 1000
  CHECK(h.Cluster().workers_total == 1);
  auto info = h.Status(id);
  CHECK(info.state == JobState::kScheduled);
  CHECK(info.error.find("worker w1 lost") != std::string::npos);
  h.SendWorker("w2", wire::Heartbeat{});
  h.Advance(1000);
  auto again = h.JobsTo("w2");
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempt == 2);
  // w1's late DONE is ignored: that lease ended.
  h.SendWorker("w1", wire::Done{id, job.lease, "late"});
  CHECK(h.Status(id).state == JobState::kRunning);
}

TEST_CASE("a reply for a lease that has ended is never applied") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::Done{id, job.lease + 1, "wrong lease"});
  CHECK(h.Status(id).state == JobState::kRunning);
  h.SendWorker("w1", wire::Done{id, job.lease, "right"});
  CHECK(h.Status(id).state == JobState::kSucceeded);
  h.SendWorker("w1", wire::Failed{id, job.lease, "twice", true});
  CHECK(h.Status(id).state == JobState::kSucceeded);
  CHECK(*h.Status(id).result == "right");
}

TEST_CASE("the broker's deadline fails a job whose worker never answers, and cancels it there") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  for (int i = 0; i < 13; ++i) {  // timeout 10 s + grace 3 s, heartbeating throughout
    h.SendWorker("w1", wire::Heartbeat{});
    h.Advance(1000);
  }
  auto cancels = h.Only<wire::CancelJob>(h.MessagesTo("w1"));
  REQUIRE(cancels.size() == 1);
  CHECK(cancels[0].lease == job.lease);
  CHECK(h.Status(id).state == JobState::kScheduled);
  // The slot stays taken until the worker says the handler stopped.
  CHECK(h.Cluster().capacity_in_use == 1);
  h.SendWorker("w1", wire::Failed{id, job.lease, "cancelled", false});
  CHECK(h.Cluster().capacity_in_use == 0);
}

TEST_CASE("cancel: a queued job never runs; a running job's worker is told to stop") {
  Harness h;
  const auto queued = h.SubmitId("t");
  auto reply = h.Ask(wire::CancelRequest{1, queued});
  CHECK(reply.status == StatusCode::kOk);
  CHECK(reply.job->state == JobState::kCancelled);
  h.Ready("w1", {"t"}, 1);
  CHECK(h.JobsTo("w1").empty());

  const auto running = h.SubmitId("t");
  auto job = h.JobsTo("w1").at(0);
  reply = h.Ask(wire::CancelRequest{2, running});
  CHECK(reply.job->state == JobState::kCancelled);
  auto cancels = h.Only<wire::CancelJob>(h.MessagesTo("w1"));
  REQUIRE(cancels.size() == 1);
  CHECK(cancels[0].id == running);
  h.SendWorker("w1", wire::Failed{running, job.lease, "cancelled", false});
  CHECK(h.Status(running).state == JobState::kCancelled);
  CHECK(h.Ask(wire::CancelRequest{3, running}).status == StatusCode::kConflict);
  CHECK(h.Ask(wire::CancelRequest{4, "j-999"}).status == StatusCode::kNotFound);
}

TEST_CASE("QUEUE_FULL past the broker-wide and the per-type limits, and nothing is stored") {
  CoreConfig config = TestConfig();
  config.max_pending = 3;
  config.max_pending_per_type = 2;
  Harness h(config);
  h.SubmitId("a");
  h.SubmitId("a");
  CHECK(h.Submit({.job = {.type = "a"}}).status == StatusCode::kQueueFull);
  h.SubmitId("b");
  CHECK(h.Submit({.job = {.type = "c"}}).status == StatusCode::kQueueFull);
  CHECK(h.core().CountIn(JobState::kQueued) == 3);
}

TEST_CASE("bad submits are refused with the reason") {
  Harness h;
  CHECK(h.Submit({.job = {.type = ""}}).status == StatusCode::kBadRequest);
  CHECK(h.Submit({.job = {.type = "has space"}}).status == StatusCode::kBadRequest);
  CHECK(h.Submit({.job = {.type = "t", .priority = 10}}).status == StatusCode::kBadRequest);
  CHECK(h.Submit({.job = {.type = "t", .max_attempts = 0}}).status == StatusCode::kBadRequest);
  CHECK(h.Submit({.job = {.type = "t", .timeout_ms = 0}}).status == StatusCode::kBadRequest);
  auto big = h.Submit(
      {.job = {.type = "t", .payload = std::string(wire::defaults::kMaxPayloadBytes + 1, 'x')}});
  CHECK(big.status == StatusCode::kTooLarge);
  CHECK(h.core().CountIn(JobState::kQueued) == 0);
}

TEST_CASE(
    "restart: queued jobs come back, running ones go back to the queue with the attempt counted") {
  Harness h;
  const auto a = h.SubmitId("t");
  const auto b = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  h.JobsTo("w1");
  h.Commit();
  CHECK(h.Status(a).state == JobState::kRunning);
  h.Open();  // a new Core on the same file, as after kill -9
  CHECK(h.core().epoch() == 2);
  CHECK(h.Status(a).state == JobState::kQueued);
  CHECK(h.Status(a).attempts == 1);
  CHECK(h.Status(b).state == JobState::kQueued);
  h.Ready("w2", {"t"}, 2);
  auto jobs = h.JobsTo("w2");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].attempt + jobs[1].attempt == 3);  // a's second attempt, b's first
  CHECK((jobs[0].lease >> 40) == 2);              // leases carry the new epoch
}

TEST_CASE("restart: a running job on its last attempt is dead") {
  CoreConfig config = TestConfig();
  config.max_attempts = 1;
  Harness h(config);
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  h.JobsTo("w1");
  h.Commit();
  h.Open(config);
  CHECK(h.Status(id).state == JobState::kDead);
}

TEST_CASE("a scheduled retry survives a restart and runs at its time") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::Failed{id, job.lease, "x", false});
  h.Commit();
  h.Open();
  h.Ready("w2", {"t"}, 1);
  CHECK(h.JobsTo("w2").empty());
  h.Advance(1000);
  CHECK(h.JobsTo("w2").size() == 1);
}

TEST_CASE("the broker heartbeats an idle worker and says who it is in WELCOME") {
  Harness h;
  h.Ready("w1", {"t"}, 1);
  auto welcome = h.Only<wire::Welcome>(h.MessagesTo("w1"));
  REQUIRE(welcome.size() == 1);
  CHECK(welcome[0].heartbeat_ms == 1000);
  CHECK(welcome[0].liveness == 3);
  CHECK(welcome[0].epoch == 1);
  h.SendWorker("w1", wire::Heartbeat{});
  h.Advance(1000);
  CHECK(h.Only<wire::Heartbeat>(h.MessagesTo("w1")).size() == 1);
}

TEST_CASE("a READY that breaks the protocol's rules is answered with DISCONNECT and the reason") {
  const std::vector<std::pair<wire::Ready, std::string>> cases = {
      {{.worker_id = "has space", .types = {"t"}},
       "worker_id must be 1-128 bytes of A-Z a-z 0-9 _ . : -"},
      {{.worker_id = "w", .types = {}}, "types must name at least one job type"},
      {{.worker_id = "w", .types = {"t", "has space"}},
       "each type must be 1-128 bytes of A-Z a-z 0-9 _ . : -"},
      {{.worker_id = "w", .types = {"t"}, .capacity = 0}, "capacity must be 1-10000"},
      {{.worker_id = "w", .types = {"t"}, .labels = {{"", "x"}}}, "label '': the key is empty"},
      {{.worker_id = "w", .types = {"t"}, .labels = {{"zone", "a\nb"}}},
       "label 'zone': no newlines"},
  };
  for (const auto& [ready, reason] : cases) {
    CAPTURE(reason);
    Harness h;
    h.SendWorker("w", ready);
    const auto replies = h.Only<wire::Disconnect>(h.MessagesTo("w"));
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].reason == reason);
    CHECK(h.Cluster().workers.empty());
  }
}

TEST_CASE("a message from a worker that never said READY is answered with DISCONNECT") {
  Harness h;
  h.SendWorker("stranger", wire::Done{"j-1", 5, ""});
  CHECK(h.Only<wire::Disconnect>(h.MessagesTo("stranger")).size() == 1);
}

TEST_CASE("a malformed client message is counted and answered with its status") {
  Harness h;
  wire::DecodeError error;
  error.dialog = wire::Dialog::kClient;
  error.command = 1;
  error.rid = 12;
  error.answerable = true;
  error.message = "bad msgpack";
  h.core().OnMalformed(wire::Envelope{"client", false}, error, h.now());
  auto replies = h.RepliesTo("client");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].rid == 12);
  CHECK(replies[0].status == StatusCode::kBadRequest);
  CHECK(h.core().malformed() == 1);
  error.answerable = false;
  h.core().OnMalformed(wire::Envelope{"client", false}, error, h.now());
  CHECK(h.RepliesTo("client").empty());
  CHECK(h.core().malformed() == 2);
}

TEST_CASE("a watcher hears each committed change and the final state, then nothing more") {
  Harness h;
  const auto id = h.SubmitId("t");
  auto first = h.Ask(wire::WatchRequest{50, id});
  CHECK(first.job->state == JobState::kQueued);
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::ProgressReport{id, job.lease, 40, "halfway", std::nullopt});
  h.Commit();
  auto updates = h.RepliesTo("client");
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].rid == 50);
  CHECK(updates[0].job->state == JobState::kRunning);
  CHECK(*updates[0].job->progress->percent == 40);
  h.SendWorker("w1", wire::Done{id, job.lease, "r"});
  h.Commit();
  updates = h.RepliesTo("client");
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].job->state == JobState::kSucceeded);
  h.Commit();
  CHECK(h.RepliesTo("client").empty());
}

TEST_CASE("a checkpoint reported in one attempt is handed to the next") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  CHECK(!job.checkpoint.has_value());
  h.SendWorker("w1", wire::ProgressReport{id, job.lease, std::nullopt, std::nullopt, "page=40"});
  h.SendWorker("w1", wire::Failed{id, job.lease, "crash", false});
  h.Advance(1000);
  job = h.JobsTo("w1").at(0);
  CHECK(*job.checkpoint == "page=40");
}

TEST_CASE("LIST merges memory and store, newest first, filtered") {
  Harness h;
  const auto a = h.SubmitId("a");
  const auto b = h.SubmitId("b");
  const auto c = h.SubmitId("a");
  h.Ready("w1", {"b"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::Done{b, job.lease, ""});
  h.Commit();
  auto all = h.Ask(wire::ListRequest{1, std::nullopt, std::nullopt, std::nullopt});
  REQUIRE(all.jobs->size() == 3);
  CHECK((*all.jobs)[0].id == c);
  CHECK((*all.jobs)[2].id == a);
  auto done = h.Ask(wire::ListRequest{2, JobState::kSucceeded, std::nullopt, std::nullopt});
  REQUIRE(done.jobs->size() == 1);
  CHECK((*done.jobs)[0].id == b);
  auto of_a = h.Ask(wire::ListRequest{3, std::nullopt, std::string("a"), 1u});
  REQUIRE(of_a.jobs->size() == 1);
  CHECK((*of_a.jobs)[0].id == c);
}

TEST_CASE("CLUSTER counts workers, capacity, jobs by state and queue depth") {
  Harness h;
  h.SubmitId("t", 9);
  h.SubmitId("t", 9);
  h.SubmitId("u", 2);
  h.Ready("w1", {"t"}, 1);
  auto info = h.Cluster();
  CHECK(info.workers_total == 1);
  CHECK(info.workers_active == 1);
  CHECK(info.capacity_total == 1);
  CHECK(info.capacity_in_use == 1);
  CHECK(info.jobs["queued"] == 2);
  CHECK(info.jobs["running"] == 1);
  REQUIRE(info.queues.size() == 2);
  CHECK(info.queues[0].type == "t");
  CHECK(info.queues[0].priority == 9);
  CHECK(info.queues[0].depth == 1);
  CHECK(info.queues[1].type == "u");
}

TEST_CASE("a READY again on the same connection keeps its jobs and counts its slots right") {
  Harness h;
  const auto a = h.SubmitId("t");
  h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  CHECK(job.id == a);
  h.Ready("w1", {"t"}, 1);
  CHECK(h.JobsTo("w1").empty());  // still full
  h.SendWorker("w1", wire::Done{a, job.lease, ""});
  CHECK(h.JobsTo("w1").size() == 1);  // the freed slot is used
  CHECK(h.Status(a).state == JobState::kSucceeded);
}

TEST_CASE("a worker that comes back with a smaller capacity gets no job until it is under it") {
  Harness h;
  for (int i = 0; i < 4; ++i) h.SubmitId("t");
  h.Ready("w1", {"t"}, 3);
  auto jobs = h.JobsTo("w1");
  REQUIRE(jobs.size() == 3);
  h.Ready("w1", {"t"}, 1);
  h.SendWorker("w1", wire::Done{jobs[0].id, jobs[0].lease, ""});
  h.SendWorker("w1", wire::Done{jobs[1].id, jobs[1].lease, ""});
  CHECK(h.JobsTo("w1").empty());  // holds 1, its capacity
  h.SendWorker("w1", wire::Done{jobs[2].id, jobs[2].lease, ""});
  CHECK(h.JobsTo("w1").size() == 1);
}

TEST_CASE("a reply that quotes another job's lease frees nothing and changes nothing") {
  Harness h;
  const auto a = h.SubmitId("t");
  const auto b = h.SubmitId("t");
  h.Ready("w1", {"t"}, 2);
  auto jobs = h.JobsTo("w1");
  REQUIRE(jobs.size() == 2);
  const auto lease_of_b = jobs[0].id == b ? jobs[0].lease : jobs[1].lease;
  h.SendWorker("w1", wire::Done{a, lease_of_b, "wrong"});
  CHECK(h.Cluster().capacity_in_use == 2);
  CHECK(h.Status(a).state == JobState::kRunning);
  CHECK(h.Status(b).state == JobState::kRunning);
}

TEST_CASE("a watcher hears a final state only once it is on disk") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ask(wire::WatchRequest{60, id});
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::ProgressReport{id, job.lease, 10, "", std::nullopt});
  auto batch = h.core().TakeBatch(h.now());  // watched: dispatch and progress go at once
  REQUIRE(batch.has_value());
  h.SendWorker("w1", wire::Done{id, job.lease, "r"});  // lands in the next batch
  h.core().OnBatchDone(h.store().Apply(*batch), h.now());
  for (const auto& update : h.RepliesTo("client")) {
    CHECK(update.job->state != JobState::kSucceeded);
  }
  h.Commit();
  auto updates = h.RepliesTo("client");
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].job->state == JobState::kSucceeded);
}

TEST_CASE("refused cancels and retries of finished jobs leave them out of memory") {
  Harness h;
  const auto id = h.SubmitId("t");
  h.Ready("w1", {"t"}, 1);
  auto job = h.JobsTo("w1").at(0);
  h.SendWorker("w1", wire::Done{id, job.lease, ""});
  h.Commit();
  REQUIRE(h.core().Find(1) == nullptr);
  CHECK(h.Ask(wire::CancelRequest{1, id}).status == StatusCode::kConflict);
  CHECK(h.Ask(wire::RetryRequest{2, id}).status == StatusCode::kConflict);
  CHECK(h.core().Find(1) == nullptr);
}

TEST_CASE("a delayed job is scheduled, does not run early, and survives a restart") {
  Harness h;
  auto reply = h.Submit({.job = {.type = "t", .delay_ms = 5000}});
  REQUIRE(reply.status == StatusCode::kAccepted);
  const auto id = *reply.id;
  auto info = h.Status(id);
  CHECK(info.state == JobState::kScheduled);
  CHECK(*info.run_at == static_cast<std::uint64_t>(h.now().wall_ms + 5000));
  h.Ready("w1", {"t"}, 1);
  h.Advance(2000);
  CHECK(h.JobsTo("w1").empty());
  h.Commit();
  h.Open();  // restart
  CHECK(h.Status(id).state == JobState::kScheduled);
  h.Ready("w2", {"t"}, 1);
  h.Advance(2999);
  CHECK(h.JobsTo("w2").empty());
  h.Advance(1);
  CHECK(h.JobsTo("w2").size() == 1);
}

TEST_CASE("run_at in the past runs at once; the later of run_at and delay wins") {
  Harness h;
  h.Ready("w1", {"t"}, 2);
  h.MessagesTo("w1");
  h.Submit({.job = {.type = "t", .run_at = static_cast<std::uint64_t>(h.now().wall_ms - 1000)}});
  CHECK(h.JobsTo("w1").size() == 1);
  auto reply = h.Submit({.job = {.type = "t",
                                 .run_at = static_cast<std::uint64_t>(h.now().wall_ms + 9000),
                                 .delay_ms = 1000}});
  CHECK(*h.Status(*reply.id).run_at == static_cast<std::uint64_t>(h.now().wall_ms + 9000));
}

}  // namespace
}  // namespace claw::broker
