// Groups, dependencies and retention, driven through the Core (tests/unit/core_harness.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/unit/core_harness.hpp"

namespace claw::broker {
namespace {

using testing::Harness;
using testing::TestConfig;
using wire::DependencyPolicy;
using wire::JobState;
using wire::StatusCode;

wire::JobSpec Spec(std::string type, std::string payload = "",
                   std::vector<std::string> after = {}) {
  return wire::JobSpec{
      .type = std::move(type), .payload = std::move(payload), .after = std::move(after)};
}

// Sends a GROUP_SUBMIT, commits, and returns the reply.
wire::ClientReply SubmitGroup(Harness& h, wire::GroupSubmitRequest request) {
  h.Send("client", std::move(request));
  h.Commit();
  auto replies = h.RepliesTo("client");
  REQUIRE(replies.size() == 1);
  return replies[0];
}

wire::GroupSubmitRequest MapReduce(int maps, DependencyPolicy policy) {
  wire::GroupSubmitRequest r{.rid = 1};
  for (int i = 0; i < maps; ++i) r.jobs.push_back(Spec("map", "part-" + std::to_string(i)));
  r.follow_up = Spec("reduce");
  r.follow_up_policy = policy;
  return r;
}

// Runs every job the worker has been sent: payload "fail" fails permanently, the rest succeed
// with "done:<payload>". Returns how many ran.
int RunAll(Harness& h, const std::string& worker) {
  int ran = 0;
  for (const auto& job : h.JobsTo(worker)) {
    ++ran;
    if (job.payload.find("fail") != std::string::npos) {
      h.SendWorker(
          worker,
          wire::Failed{.id = job.id, .lease = job.lease, .error = "bad input", .permanent = true});
    } else {
      h.SendWorker(worker,
                   wire::Done{.id = job.id, .lease = job.lease, .result = "done:" + job.payload});
    }
  }
  return ran;
}

TEST_CASE("group: every member and the follow-up go into one commit, ACCEPTED after it") {
  Harness h;
  h.Send("client", MapReduce(3, DependencyPolicy::kAllSettled));
  CHECK(h.RepliesTo("client").empty());
  auto batch = h.core().TakeBatch(h.now());
  REQUIRE(batch.has_value());
  CHECK(batch->writes.size() == 4);
  CHECK(std::all_of(batch->writes.begin(), batch->writes.end(),
                    [](const auto& w) { return w.insert; }));
  h.core().OnBatchDone(h.store().Apply(*batch), h.now());
  auto replies = h.RepliesTo("client");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == StatusCode::kAccepted);
  CHECK(*replies[0].id == "g-1");
  CHECK(*replies[0].ids == std::vector<std::string>{"j-1", "j-2", "j-3"});
  CHECK(*replies[0].follow_up_id == "j-4");
  const auto follow_up = h.Status("j-4");
  CHECK(follow_up.state == JobState::kWaiting);
  CHECK(follow_up.follow_up);
  CHECK(follow_up.group == "g-1");
  CHECK(follow_up.after == std::vector<std::string>{"j-1", "j-2", "j-3"});
  CHECK(h.Status("j-2").group == "g-1");
}

TEST_CASE("group: a failed commit refuses the whole group and leaves nothing behind") {
  Harness h;
  h.Send("client", MapReduce(3, DependencyPolicy::kAllSettled));
  auto batch = h.core().TakeBatch(h.now());
  REQUIRE(batch.has_value());
  h.core().OnBatchDone(Fail("disk full"), h.now());
  auto replies = h.RepliesTo("client");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == StatusCode::kStorageError);
  for (const char* id : {"j-1", "j-2", "j-3", "j-4"}) {
    CHECK(h.Ask(wire::StatusRequest{.rid = 9, .id = id}).status == StatusCode::kNotFound);
  }
  CHECK(h.Cluster().jobs.at("waiting") == 0);
  CHECK(h.Cluster().jobs.at("queued") == 0);
}

TEST_CASE("group: a bad member, a cycle or a limit refuses the group before anything exists") {
  Harness h;
  auto bad_member = MapReduce(3, DependencyPolicy::kAllSettled);
  bad_member.jobs[1].type = "no spaces allowed";
  auto reply = SubmitGroup(h, bad_member);
  CHECK(reply.status == StatusCode::kBadRequest);
  CHECK(reply.message.find("job #1") != std::string::npos);

  wire::GroupSubmitRequest cycle{.rid = 2};
  cycle.jobs = {Spec("a", "", {"#2"}), Spec("b", "", {"#0"}), Spec("c", "", {"#1"})};
  reply = SubmitGroup(h, cycle);
  CHECK(reply.status == StatusCode::kBadRequest);
  CHECK(reply.message.find("cycle: #0 -> #2 -> #1 -> #0") != std::string::npos);

  wire::GroupSubmitRequest out_of_range{.rid = 3};
  out_of_range.jobs = {Spec("a", "", {"#1"})};
  reply = SubmitGroup(h, out_of_range);
  CHECK(reply.status == StatusCode::kBadRequest);
  CHECK(reply.message.find("'#1' is not a member") != std::string::npos);

  CoreConfig small = TestConfig();
  small.max_pending = 3;
  h.Open(small);
  reply = SubmitGroup(h, MapReduce(3, DependencyPolicy::kAllSettled));  // 3 + the follow-up
  CHECK(reply.status == StatusCode::kQueueFull);
  CHECK(h.Cluster().jobs.at("queued") == 0);
  CHECK(SubmitGroup(h, MapReduce(2, DependencyPolicy::kAllSettled)).status ==
        StatusCode::kAccepted);
}

TEST_CASE("group: all_settled runs the follow-up after every member ends, with every outcome") {
  Harness h;
  auto request = MapReduce(4, DependencyPolicy::kAllSettled);
  request.jobs[2].payload = "fail-2";
  REQUIRE(SubmitGroup(h, request).status == StatusCode::kAccepted);
  h.Ready("mapper", {"map"}, 4);
  h.Ready("reducer", {"reduce"}, 1);
  CHECK(RunAll(h, "mapper") == 4);
  h.Commit();
  auto jobs = h.JobsTo("reducer");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == "j-5");
  REQUIRE(jobs[0].inputs.size() == 4);
  CHECK(jobs[0].inputs[0].id == "j-1");
  CHECK(jobs[0].inputs[0].state == "succeeded");
  CHECK(*jobs[0].inputs[0].result == "done:part-0");
  CHECK(jobs[0].inputs[2].state == "dead");
  CHECK(jobs[0].inputs[2].error == "bad input");
  CHECK_FALSE(jobs[0].inputs[2].result.has_value());
  CHECK(*jobs[0].inputs[3].result == "done:part-3");

  auto status = h.Ask(wire::GroupStatusRequest{.rid = 5, .id = "g-1"});
  REQUIRE(status.status == StatusCode::kOk);
  CHECK(status.group->total == 4);
  CHECK(status.group->settled == 4);
  CHECK(status.group->counts.at("succeeded") == 3);
  CHECK(status.group->counts.at("dead") == 1);
  CHECK(status.group->members->size() == 4);
  CHECK(status.group->follow_up->state == JobState::kRunning);
}

TEST_CASE("group: the follow-up waits while any member is still running") {
  Harness h;
  REQUIRE(SubmitGroup(h, MapReduce(2, DependencyPolicy::kAllSettled)).status ==
          StatusCode::kAccepted);
  h.Ready("mapper", {"map"}, 1);
  h.Ready("reducer", {"reduce"}, 1);
  CHECK(RunAll(h, "mapper") == 1);
  h.Commit();
  CHECK(h.JobsTo("reducer").empty());
  CHECK(h.Status("j-3").state == JobState::kWaiting);
  CHECK(RunAll(h, "mapper") == 1);
  h.Commit();
  CHECK(h.JobsTo("reducer").size() == 1);
}

TEST_CASE("group: all_succeeded cancels the follow-up when a member dies, naming it") {
  Harness h;
  auto request = MapReduce(3, DependencyPolicy::kAllSucceeded);
  request.jobs[1].payload = "fail";
  REQUIRE(SubmitGroup(h, request).status == StatusCode::kAccepted);
  h.Ready("mapper", {"map"}, 3);
  h.Ready("reducer", {"reduce"}, 1);
  RunAll(h, "mapper");
  h.Commit();
  CHECK(h.JobsTo("reducer").empty());
  const auto follow_up = h.Status("j-4");
  CHECK(follow_up.state == JobState::kCancelled);
  CHECK(follow_up.error == "dependency j-2 ended dead");
}

TEST_CASE("group: the same key gives back the same group without creating another") {
  Harness h;
  auto request = MapReduce(2, DependencyPolicy::kAllSettled);
  request.key = "wordcount-7";
  const auto first = SubmitGroup(h, request);
  REQUIRE(first.status == StatusCode::kAccepted);
  const auto again = SubmitGroup(h, request);
  CHECK(again.status == StatusCode::kAccepted);
  CHECK(again.existing == true);
  CHECK(again.id == first.id);
  CHECK(again.ids == first.ids);
  CHECK(again.follow_up_id == first.follow_up_id);
  CHECK(h.Cluster().jobs.at("queued") == 2);
}

TEST_CASE("after: a three-level chain runs level by level") {
  Harness h;
  const auto a = h.SubmitId("step");
  const auto b =
      *h.Submit(wire::SubmitRequest{.job = {.type = "step", .payload = "b", .after = {a}}}).id;
  const auto c =
      *h.Submit(wire::SubmitRequest{.job = {.type = "step", .payload = "c", .after = {b}}}).id;
  CHECK(h.Status(b).state == JobState::kWaiting);
  CHECK(h.Status(c).state == JobState::kWaiting);
  h.Ready("w", {"step"}, 10);
  std::vector<std::string> order;
  for (int level = 0; level < 3; ++level) {
    auto jobs = h.JobsTo("w");
    REQUIRE(jobs.size() == 1);  // never two levels at once
    order.push_back(jobs[0].id);
    h.SendWorker("w", wire::Done{.id = jobs[0].id, .lease = jobs[0].lease, .result = jobs[0].id});
    h.Commit();
  }
  CHECK(order == std::vector<std::string>{a, b, c});
  CHECK(h.Status(c).state == JobState::kSucceeded);
}

TEST_CASE("after: unknown ids, member references and failed dependencies are refused") {
  Harness h;
  auto reply = h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {"j-99"}}});
  CHECK(reply.status == StatusCode::kBadRequest);
  CHECK(reply.message == "after: no job j-99");
  reply = h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {"#0"}}});
  CHECK(reply.status == StatusCode::kBadRequest);
  const auto dead = h.SubmitId("t");
  h.Ask(wire::CancelRequest{.rid = 3, .id = dead});
  h.Commit();
  reply = h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {dead}}});
  CHECK(reply.status == StatusCode::kConflict);
  // all_settled takes a dependency whatever its outcome.
  reply = h.Submit(wire::SubmitRequest{
      .job = {.type = "t", .after = {dead}, .after_policy = DependencyPolicy::kAllSettled}});
  CHECK(reply.status == StatusCode::kAccepted);
  CHECK(h.Status(*reply.id).state == JobState::kQueued);
}

TEST_CASE("after: dependents of a dead job are cancelled down the chain; retry revives them") {
  Harness h;
  const auto a = h.SubmitId("t");
  const auto b = *h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {a}}}).id;
  const auto c = *h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {b}}}).id;
  h.Ready("w", {"t"}, 1);
  auto jobs = h.JobsTo("w");
  REQUIRE(jobs.size() == 1);
  h.SendWorker("w", wire::Failed{.id = a, .lease = jobs[0].lease, .error = "x", .permanent = true});
  h.Commit();
  CHECK(h.Status(b).state == JobState::kCancelled);
  CHECK(h.Status(b).error == "dependency " + a + " ended dead");
  CHECK(h.Status(c).state == JobState::kCancelled);
  CHECK(h.Status(c).error == "dependency " + b + " ended cancelled");

  // Retrying a dependent first is refused: its dependency is still dead.
  auto refused = h.Ask(wire::RetryRequest{.rid = 7, .id = b});
  CHECK(refused.status == StatusCode::kConflict);
  CHECK(h.Ask(wire::RetryRequest{.rid = 8, .id = a}).status == StatusCode::kOk);
  CHECK(h.Ask(wire::RetryRequest{.rid = 9, .id = b}).status == StatusCode::kOk);
  h.Commit();
  CHECK(h.Status(b).state == JobState::kWaiting);
}

TEST_CASE("after: a cancelled waiting job is no longer released, and its dependents follow") {
  Harness h;
  const auto a = h.SubmitId("t");
  const auto b = *h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {a}}}).id;
  const auto c = *h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {b}}}).id;
  CHECK(h.Ask(wire::CancelRequest{.rid = 5, .id = b}).status == StatusCode::kOk);
  h.Commit();
  CHECK(h.Status(c).state == JobState::kCancelled);
  h.Ready("w", {"t"}, 5);
  auto jobs = h.JobsTo("w");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == a);
  h.SendWorker("w", wire::Done{.id = a, .lease = jobs[0].lease});
  h.Commit();
  CHECK(h.JobsTo("w").empty());
  CHECK(h.Status(b).state == JobState::kCancelled);
}

TEST_CASE("after: waiting jobs survive a restart and are released when their dependency ends") {
  Harness h;
  const auto a = h.SubmitId("t");
  const auto b = *h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {a}}}).id;
  h.Open();  // a restart on the same file
  CHECK(h.Status(b).state == JobState::kWaiting);
  h.Ready("w", {"t"}, 5);
  auto jobs = h.JobsTo("w");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == a);
  h.SendWorker("w", wire::Done{.id = a, .lease = jobs[0].lease, .result = "r"});
  h.Commit();
  jobs = h.JobsTo("w");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].id == b);
  REQUIRE(jobs[0].inputs.size() == 1);
  CHECK(*jobs[0].inputs[0].result == "r");
}

TEST_CASE("after: a job waiting on a dependency that ended while the broker was down is released") {
  Harness h;
  const auto a = h.SubmitId("t");
  const auto b = *h.Submit(wire::SubmitRequest{.job = {.type = "t", .after = {a}}}).id;
  h.Ready("w", {"t"}, 5);
  auto jobs = h.JobsTo("w");
  REQUIRE(jobs.size() == 1);
  // The worker's DONE is committed together with b's release; write a's end alone instead, as
  // a store left by a crash between the two would hold it.
  Job ended = **h.store().Get(1);
  ended.state = JobState::kSucceeded;
  REQUIRE(h.store().Apply(WriteBatch{{{false, ended}}}).has_value());
  h.Open();
  CHECK(h.Status(b).state == JobState::kQueued);
}

TEST_CASE("retention: finished jobs past it are purged in a commit; unfinished ones stay") {
  CoreConfig config = TestConfig();
  config.retention_ms = 3'600'000;
  Harness h(config);
  const auto done = h.Submit(wire::SubmitRequest{.job = {.type = "t"}, .key = "once"});
  const auto pending = h.SubmitId("other");
  h.Ready("w", {"t"}, 1);
  auto jobs = h.JobsTo("w");
  REQUIRE(jobs.size() == 1);
  h.SendWorker("w", wire::Done{.id = *done.id, .lease = jobs[0].lease});
  h.Commit();
  h.Advance(3'500'000);
  h.Commit();
  CHECK(h.Status(*done.id).state == JobState::kSucceeded);  // not yet
  CHECK(h.core().purged() == 0);
  h.Advance(200'000);
  h.Commit();
  CHECK(h.core().purged() == 1);
  CHECK(h.Ask(wire::StatusRequest{.rid = 8, .id = *done.id}).status == StatusCode::kNotFound);
  CHECK(h.Status(pending).state == JobState::kQueued);
  CHECK(h.Cluster().jobs.at("succeeded") == 0);
  // The key went with the job: it may be used again.
  const auto again = h.Submit(wire::SubmitRequest{.job = {.type = "t"}, .key = "once"});
  CHECK(again.status == StatusCode::kAccepted);
  CHECK_FALSE(again.existing.has_value());
  CHECK(again.id != done.id);
}

TEST_CASE("retention: 0 keeps finished jobs forever") {
  CoreConfig config = TestConfig();
  config.retention_ms = 0;
  Harness h(config);
  const auto id = h.SubmitId("t");
  h.Ask(wire::CancelRequest{.rid = 4, .id = id});
  h.Commit();
  h.Advance(400LL * 24 * 3600 * 1000);
  h.Commit();
  CHECK(h.Status(id).state == JobState::kCancelled);
  CHECK(h.core().MillisUntilDue(h.now()) == -1);
}

TEST_CASE("ids: j-N, g-N and #N parse only as they are written") {
  CHECK(ParseJobId("j-42") == 42);
  for (const char* bad : {"j-0", "j-042", "j-", "j-4x", "j--4", "g-4", "42"}) {
    CHECK_MESSAGE(!ParseJobId(bad).has_value(), bad);
  }
  CHECK(ParseGroupId("g-7") == 7);
  CHECK(!ParseGroupId("j-7").has_value());
  CHECK(ParseMemberRef("#0") == 0);
  CHECK(ParseMemberRef("#12") == 12);
  for (const char* bad : {"#", "#-1", "#+1", "#1a", "# 1", "j-1", "1"}) {
    CHECK_MESSAGE(!ParseMemberRef(bad).has_value(), bad);
  }
}

TEST_CASE("keys: an idempotency key or hash key of 0 or more than 256 bytes is refused") {
  Harness h;
  const std::string long_key(257, 'k');
  auto refused = [&](wire::SubmitRequest r) {
    const auto reply = h.Submit(std::move(r));
    CHECK(reply.status == StatusCode::kBadRequest);
    return reply.message;
  };
  CHECK(refused({.job = {.type = "t"}, .key = ""}) == "key must be 1-256 bytes");
  CHECK(refused({.job = {.type = "t"}, .key = long_key}) == "key must be 1-256 bytes");
  CHECK(refused({.job = {.type = "t", .hash_key = long_key}}) == "hash_key must be 1-256 bytes");
  const auto group = SubmitGroup(h, {.rid = 9, .jobs = {Spec("t")}, .key = long_key});
  CHECK(group.status == StatusCode::kBadRequest);
  CHECK(group.message == "key must be 1-256 bytes");
  CHECK(h.Submit({.job = {.type = "t"}, .key = std::string(256, 'k')}).status ==
        StatusCode::kAccepted);
}

}  // namespace
}  // namespace claw::broker
