// The client against a real ZeroMQ ROUTER that plays the broker: a FakeBroker thread bound to
// tcp://127.0.0.1:* decodes each request with the wire codec and answers what the test's
// script says. Covers the Connection (rid matching, Lazy Pirate resends and failover, the
// idempotency key, WATCH) and claw-client command lines end to end.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "client/cli.hpp"
#include "client/connection.hpp"
#include "schema/transport.hpp"
#include "tests/unit/temp_dir.hpp"

namespace claw::client {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using namespace std::string_literals;

// Decides the replies to one request (none: stay silent). `seen` counts earlier requests.
using Script = std::function<std::vector<wire::ClientReply>(const wire::ClientRequest& request,
                                                            std::size_t seen)>;

class FakeBroker {
 public:
  explicit FakeBroker(Script script) : script_(std::move(script)) {
    auto router = wire::BindRouter(context_, "tcp://127.0.0.1:*", 1 << 20);
    REQUIRE(router);
    router_ = std::move(*router);
    endpoint_ = wire::BoundEndpoint(router_);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeBroker() {
    stop_ = true;
    thread_.join();
  }

  const std::string& endpoint() const { return endpoint_; }

  std::vector<wire::ClientRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  // Waits (up to a generous deadline) until `count` requests have arrived.
  bool WaitForRequests(std::size_t count) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      if (requests().size() >= count) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

 private:
  void Run() {
    while (!stop_) {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, milliseconds(10)) <= 0) continue;
      while (auto inbound = wire::ReceiveInbound(router_, {})) {
        if (!inbound->message) continue;
        const auto& request = std::get<wire::ClientRequest>(*inbound->message);
        std::size_t seen = 0;
        {
          std::lock_guard lock(mutex_);
          seen = requests_.size();
          requests_.push_back(request);
        }
        for (const auto& reply : script_(request, seen)) {
          wire::SendTo(router_, inbound->from, wire::Encode(reply));
        }
      }
    }
  }

  Script script_;
  zmq::context_t context_{1};
  zmq::socket_t router_;
  std::string endpoint_;
  std::mutex mutex_;
  std::vector<wire::ClientRequest> requests_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

wire::ClientReply Reply(const wire::ClientRequest& request, wire::StatusCode status) {
  wire::ClientReply reply;
  reply.command = wire::CommandOf(request);
  reply.rid = wire::RidOf(request);
  reply.status = status;
  return reply;
}

wire::ClientReply Pong(const wire::ClientRequest& request, std::string role) {
  auto reply = Reply(request, wire::StatusCode::kOk);
  reply.role = std::move(role);
  reply.epoch = 1;
  return reply;
}

wire::JobInfo Job(std::string id, wire::JobState state) {
  wire::JobInfo job;
  job.id = std::move(id);
  job.type = "t";
  job.state = state;
  job.max_attempts = 5;
  job.attempts = state == wire::JobState::kQueued ? 0 : 1;
  return job;
}

wire::ClientReply JobReply(const wire::ClientRequest& request, wire::JobInfo job) {
  auto reply = Reply(request, wire::StatusCode::kOk);
  reply.job = std::move(job);
  return reply;
}

wire::ClientReply Refusal(const wire::ClientRequest& request, wire::StatusCode status,
                          std::string message) {
  auto reply = Reply(request, status);
  reply.message = std::move(message);
  return reply;
}

Script Silent() {
  return [](const wire::ClientRequest&, std::size_t) { return std::vector<wire::ClientReply>(); };
}

template <typename T>
std::size_t CountOf(const std::vector<wire::ClientRequest>& requests) {
  std::size_t count = 0;
  for (const auto& request : requests) count += std::holds_alternative<T>(request) ? 1 : 0;
  return count;
}

// ---- Connection ----

TEST_CASE("a reply with a stale rid is ignored") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t) {
    auto stale = Pong(request, "stale");
    stale.rid += 1000;
    return std::vector{stale, Pong(request, "standalone")};
  });
  Connection connection({broker.endpoint()}, milliseconds(2000));
  const auto reply = connection.Call(wire::PingRequest{});
  REQUIRE(reply);
  CHECK(reply->role == "standalone");
}

TEST_CASE("each call gets a fresh rid") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t) {
    return std::vector{Pong(request, "a")};
  });
  Connection connection({broker.endpoint()}, milliseconds(2000));
  REQUIRE(connection.Call(wire::PingRequest{}));
  REQUIRE(connection.Call(wire::PingRequest{}));
  const auto requests = broker.requests();
  REQUIRE(requests.size() == 2);
  CHECK(wire::RidOf(requests[1]) > wire::RidOf(requests[0]));
}

TEST_CASE("a broker that never answers makes Call fail after three rounds of resends") {
  FakeBroker broker(Silent());
  Connection connection({broker.endpoint()}, milliseconds(200));
  const auto start = Clock::now();
  const auto reply = connection.Call(wire::PingRequest{});
  const auto elapsed = Clock::now() - start;
  REQUIRE_FALSE(reply);
  CHECK(reply.error().message == "no broker answered at " + broker.endpoint());
  CHECK(elapsed >= milliseconds(3 * 200 - 50));
  CHECK(elapsed < milliseconds(3 * 200 + 1500));
  CHECK(broker.WaitForRequests(3));
  CHECK(broker.requests().size() == 3);
}

TEST_CASE("a broker answering NOT_ACTIVE makes the Connection ask the next one at once") {
  FakeBroker passive([](const wire::ClientRequest& request, std::size_t) {
    return std::vector{Refusal(request, wire::StatusCode::kNotActive, "standby")};
  });
  FakeBroker active([](const wire::ClientRequest& request, std::size_t) {
    return std::vector{Pong(request, "active")};
  });
  Connection connection({passive.endpoint(), active.endpoint()}, milliseconds(3000));
  const auto start = Clock::now();
  const auto reply = connection.Call(wire::PingRequest{});
  REQUIRE(reply);
  CHECK(reply->role == "active");
  CHECK(Clock::now() - start < milliseconds(2000));
  CHECK(passive.requests().size() == 1);
  CHECK(active.requests().size() == 1);
}

TEST_CASE("a silent broker makes the Connection resend to the next one after the timeout") {
  FakeBroker silent(Silent());
  FakeBroker active([](const wire::ClientRequest& request, std::size_t) {
    return std::vector{Pong(request, "active")};
  });
  Connection connection({silent.endpoint(), active.endpoint()}, milliseconds(200));
  const auto start = Clock::now();
  const auto reply = connection.Call(wire::PingRequest{});
  REQUIRE(reply);
  CHECK(reply->role == "active");
  CHECK(Clock::now() - start >= milliseconds(150));
  CHECK(silent.requests().size() == 1);
}

TEST_CASE("a SUBMIT without a key gets a random one and keeps it when resent") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t seen) {
    if (seen == 0) return std::vector<wire::ClientReply>();  // the reply is "lost"
    auto accepted = Reply(request, wire::StatusCode::kAccepted);
    accepted.id = "j-1";
    return std::vector{accepted};
  });
  Connection connection({broker.endpoint()}, milliseconds(200));
  const auto reply = connection.Call(wire::SubmitRequest{.job = {.type = "t", .payload = "p"}});
  REQUIRE(reply);
  CHECK(reply->status == wire::StatusCode::kAccepted);
  CHECK(reply->id == "j-1");
  const auto requests = broker.requests();
  REQUIRE(requests.size() == 2);
  const auto& first = std::get<wire::SubmitRequest>(requests[0]);
  const auto& second = std::get<wire::SubmitRequest>(requests[1]);
  REQUIRE(first.key);
  CHECK(first.key->starts_with("auto-"));
  CHECK(first.key->size() == 5 + 32);
  CHECK(second.key == first.key);
  CHECK(second.rid == first.rid);
}

TEST_CASE("a SUBMIT with a key is sent with that key, and random keys differ") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t) {
    auto accepted = Reply(request, wire::StatusCode::kAccepted);
    accepted.id = "j-1";
    return std::vector{accepted};
  });
  Connection connection({broker.endpoint()}, milliseconds(2000));
  REQUIRE(connection.Call(wire::SubmitRequest{.job = {.type = "t"}, .key = "mine"}));
  CHECK(std::get<wire::SubmitRequest>(broker.requests()[0]).key == "mine");
  CHECK(RandomKey() != RandomKey());
}

TEST_CASE("endpoint lists split on commas") {
  CHECK(SplitEndpoints("tcp://a:5555,tcp://b:5555") ==
        std::vector<std::string>{"tcp://a:5555", "tcp://b:5555"});
  CHECK(SplitEndpoints("tcp://a:1") == std::vector<std::string>{"tcp://a:1"});
  CHECK(SplitEndpoints(",tcp://a:1,,").size() == 1);
  CHECK(SplitEndpoints("").empty());
}

// ---- Watch ----

TEST_CASE("Watch reports each distinct update and returns the final job") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t) {
    auto running = Job("j-1", wire::JobState::kRunning);
    auto halfway = running;
    halfway.progress = wire::Progress{.percent = 50, .message = "half"};
    auto done = Job("j-1", wire::JobState::kSucceeded);
    done.result = "out";
    return std::vector{JobReply(request, running), JobReply(request, running),
                       JobReply(request, halfway), JobReply(request, done)};
  });
  Connection connection({broker.endpoint()}, milliseconds(2000));
  std::vector<wire::JobInfo> updates;
  const auto result = connection.Watch("j-1", std::nullopt,
                                       [&](const wire::JobInfo& job) { updates.push_back(job); });
  REQUIRE(result);
  CHECK(result->end == WatchResult::End::kFinal);
  CHECK(result->job->result == "out");
  REQUIRE(updates.size() == 3);
  CHECK(updates[1].progress->percent == 50u);
}

TEST_CASE("a silent watch is renewed with the same rid") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t seen) {
    const auto state = seen == 0 ? wire::JobState::kRunning : wire::JobState::kSucceeded;
    return std::vector{JobReply(request, Job("j-1", state))};
  });
  Connection connection({broker.endpoint()}, milliseconds(2000), milliseconds(100));
  const auto result = connection.Watch("j-1", std::nullopt, [](const wire::JobInfo&) {});
  REQUIRE(result);
  CHECK(result->end == WatchResult::End::kFinal);
  const auto requests = broker.requests();
  REQUIRE(requests.size() == 2);
  CHECK(std::get<wire::WatchRequest>(requests[1]) == std::get<wire::WatchRequest>(requests[0]));
}

TEST_CASE("a watch that times out returns the last state and never cancels the job") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t) {
    return std::vector{JobReply(request, Job("j-1", wire::JobState::kRunning))};
  });
  Connection connection({broker.endpoint()}, milliseconds(2000), milliseconds(100));
  int updates = 0;
  const auto result =
      connection.Watch("j-1", milliseconds(350), [&](const wire::JobInfo&) { ++updates; });
  REQUIRE(result);
  CHECK(result->end == WatchResult::End::kTimedOut);
  CHECK(result->job->state == wire::JobState::kRunning);
  CHECK(updates == 1);
  const auto requests = broker.requests();
  CHECK(CountOf<wire::WatchRequest>(requests) == requests.size());
}

TEST_CASE("watching an unknown job is refused with NOT_FOUND") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t) {
    return std::vector{Refusal(request, wire::StatusCode::kNotFound, "no job j-9")};
  });
  Connection connection({broker.endpoint()}, milliseconds(2000));
  const auto result = connection.Watch("j-9", std::nullopt, [](const wire::JobInfo&) {});
  REQUIRE(result);
  CHECK(result->end == WatchResult::End::kRefused);
  CHECK(result->refusal.status == wire::StatusCode::kNotFound);
  CHECK(result->refusal.message == "no job j-9");
}

// ---- claw-client command lines ----

struct CliRun {
  int code = 0;
  std::string out;
  std::string err;
};

CliRun RunClaw(std::vector<std::string> args, const std::string& input = "") {
  args.insert(args.begin(), "claw-client");
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  std::istringstream in(input);
  std::ostringstream out, err;
  CliRun run;
  run.code =
      RunCli(static_cast<int>(argv.size()), argv.data(), CliIo{.in = in, .out = out, .err = err});
  run.out = out.str();
  run.err = err.str();
  return run;
}

// A broker with one job, "j-1", whose WATCH answers run it to `final`.
Script OneJob(wire::JobState final, std::string result = "", std::string error = "") {
  return [=](const wire::ClientRequest& request, std::size_t) {
    auto job = Job("j-1", final);
    job.error = error;
    if (final == wire::JobState::kSucceeded) job.result = result;
    if (std::holds_alternative<wire::SubmitRequest>(request)) {
      auto accepted = Reply(request, wire::StatusCode::kAccepted);
      accepted.id = "j-1";
      return std::vector{accepted};
    }
    if (const auto* status = std::get_if<wire::StatusRequest>(&request)) {
      if (status->id != "j-1")
        return std::vector{Refusal(request, wire::StatusCode::kNotFound, "no job " + status->id)};
      return std::vector{JobReply(request, job)};
    }
    if (std::holds_alternative<wire::WatchRequest>(request)) {
      auto running = Job("j-1", wire::JobState::kRunning);
      running.progress = wire::Progress{.percent = 40, .message = "working"};
      return std::vector{JobReply(request, running), JobReply(request, job)};
    }
    if (std::holds_alternative<wire::CancelRequest>(request)) {
      return std::vector{Refusal(request, wire::StatusCode::kConflict, "j-1 is already final")};
    }
    if (std::holds_alternative<wire::ListRequest>(request)) {
      auto reply = Reply(request, wire::StatusCode::kOk);
      reply.jobs = std::vector{job, Job("j-0", wire::JobState::kQueued)};
      return std::vector{reply};
    }
    return std::vector{Pong(request, "standalone")};
  };
}

TEST_CASE("claw-client submit prints the new job id alone and sends the flags") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run =
      RunClaw({"--broker", broker.endpoint(), "submit", "--type", "resize", "--payload", "@-",
               "--priority", "high", "--timeout", "30s", "--max-attempts", "3", "--backoff",
               "500ms", "--max-backoff", "1m", "--key", "k-1"},
              "from stdin");
  CHECK(run.code == 0);
  CHECK(run.out == "j-1\n");
  const auto submit = std::get<wire::SubmitRequest>(broker.requests().at(0));
  CHECK(submit.job.type == "resize");
  CHECK(submit.job.payload == "from stdin");
  CHECK(submit.job.priority == 7u);
  CHECK(submit.job.timeout_ms == 30000u);
  CHECK(submit.job.max_attempts == 3u);
  CHECK(submit.job.backoff_ms == 500u);
  CHECK(submit.job.max_backoff_ms == 60000u);
  CHECK(submit.key == "k-1");
}

TEST_CASE("--timeout before the subcommand is the request timeout, after submit the job's") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run = RunClaw({"--timeout", "1s", "--broker", broker.endpoint(), "submit", "--type",
                            "t", "--timeout", "45s"});
  CHECK(run.code == 0);
  CHECK(std::get<wire::SubmitRequest>(broker.requests().at(0)).job.timeout_ms == 45000u);
}

TEST_CASE("claw-client submit --json prints the job fetched with STATUS") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run = RunClaw({"--broker", broker.endpoint(), "submit", "--type", "t", "--json"});
  CHECK(run.code == 0);
  const auto json = nlohmann::json::parse(run.out);
  CHECK(json["id"] == "j-1");
  CHECK(json["state"] == "queued");
  CHECK(CountOf<wire::StatusRequest>(broker.requests()) == 1);
}

TEST_CASE("claw-client wait prints the result bytes unchanged and exits 0") {
  const std::string bytes = "\x00\xff result\n"s;
  FakeBroker broker(OneJob(wire::JobState::kSucceeded, bytes));
  const auto run = RunClaw({"wait", "j-1", "--broker", broker.endpoint()});
  CHECK(run.code == 0);
  CHECK(run.out == bytes);
  CHECK(run.err.find("j-1 running 40% working") != std::string::npos);
}

TEST_CASE("claw-client wait on a terminal redraws one progress line in place") {
  FakeBroker broker(OneJob(wire::JobState::kSucceeded, "ok"));
  const std::vector<const char*> argv = {"claw-client", "--broker", broker.endpoint().c_str(),
                                         "wait", "j-1"};
  std::istringstream in;
  std::ostringstream out, err;
  const int code = RunCli(
      static_cast<int>(argv.size()), argv.data(),
      CliIo{.in = in, .out = out, .err = err, .err_is_terminal = true, .terminal_width = 61});
  CHECK(code == 0);
  CHECK(out.str() == "ok");
  const std::string text = err.str();
  CHECK(text.starts_with("\r[########------------]  40% working  j-1 running "));
  CHECK(text.find("\r[####################] 100% j-1 succeeded ") != std::string::npos);
  CHECK(text.ends_with("\n"));
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
}

TEST_CASE("claw-client submit --wait waits and keeps stdout for the result") {
  FakeBroker broker(OneJob(wire::JobState::kSucceeded, "42"));
  const auto run = RunClaw({"--broker", broker.endpoint(), "submit", "--type", "t", "--wait"});
  CHECK(run.code == 0);
  CHECK(run.out == "42");
  CHECK(run.err.starts_with("j-1\n"));
}

TEST_CASE("claw-client wait exits 3 for a dead job and 4 for a cancelled one") {
  FakeBroker dead(OneJob(wire::JobState::kDead, "", "disk on fire"));
  const auto dead_run = RunClaw({"--broker", dead.endpoint(), "wait", "j-1"});
  CHECK(dead_run.code == 3);
  CHECK(dead_run.out.empty());
  CHECK(dead_run.err.find("disk on fire") != std::string::npos);

  FakeBroker cancelled(OneJob(wire::JobState::kCancelled));
  CHECK(RunClaw({"--broker", cancelled.endpoint(), "wait", "j-1"}).code == 4);
}

TEST_CASE("claw-client wait --timeout exits 5 and does not cancel the job") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t) {
    return std::vector{JobReply(request, Job("j-1", wire::JobState::kRunning))};
  });
  const auto run = RunClaw({"--broker", broker.endpoint(), "wait", "j-1", "--timeout", "300ms"});
  CHECK(run.code == 5);
  CHECK(CountOf<wire::CancelRequest>(broker.requests()) == 0);
}

TEST_CASE("claw-client status of an unknown job prints NOT_FOUND and exits 7") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run = RunClaw({"--broker", broker.endpoint(), "status", "j-9"});
  CHECK(run.code == 7);
  CHECK(run.err == "claw-client: NOT_FOUND: no job j-9\n");
}

TEST_CASE("claw-client status --json after the subcommand prints the job object") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run = RunClaw({"status", "j-1", "--json", "--broker", broker.endpoint()});
  CHECK(run.code == 0);
  CHECK(nlohmann::json::parse(run.out)["id"] == "j-1");
}

TEST_CASE("claw-client cancel of a finished job prints CONFLICT and exits 1") {
  FakeBroker broker(OneJob(wire::JobState::kSucceeded));
  const auto run = RunClaw({"--broker", broker.endpoint(), "cancel", "j-1"});
  CHECK(run.code == 1);
  CHECK(run.err == "claw-client: CONFLICT: j-1 is already final\n");
}

TEST_CASE("claw-client list --json prints an array and sends the filters") {
  FakeBroker broker(OneJob(wire::JobState::kDead));
  const auto run = RunClaw({"--broker", broker.endpoint(), "--json", "list", "--state", "dead",
                            "--type", "t", "--limit", "5"});
  CHECK(run.code == 0);
  const auto json = nlohmann::json::parse(run.out);
  REQUIRE(json.is_array());
  CHECK(json.size() == 2);
  const auto list = std::get<wire::ListRequest>(broker.requests().at(0));
  CHECK(list.state == wire::JobState::kDead);
  CHECK(list.type == "t");
  CHECK(list.limit == 5u);
}

TEST_CASE("claw-client ping prints the role and epoch") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run = RunClaw({"--broker", broker.endpoint(), "ping"});
  CHECK(run.code == 0);
  CHECK(run.out == "standalone 1\n");
}

TEST_CASE("claw-client exits 6 when no broker answers") {
  FakeBroker broker(Silent());
  const auto run = RunClaw({"--broker", broker.endpoint(), "--request-timeout", "100ms", "ping"});
  CHECK(run.code == 6);
  CHECK(run.err == "claw-client: no broker answered at " + broker.endpoint() + "\n");
}

TEST_CASE("claw-client exits 2 on bad flags, naming a bad state") {
  CHECK(RunClaw({}).code == 2);
  CHECK(RunClaw({"submit"}).code == 2);
  CHECK(RunClaw({"submit", "--type", "t", "--priority", "urgent"}).code == 2);
  CHECK(RunClaw({"wait", "j-1", "--timeout", "10"}).code == 2);
  CHECK(RunClaw({"--broker", "nonsense", "ping"}).code == 2);
  const auto scheme = RunClaw({"--broker", "bogus://x", "ping"});
  CHECK(scheme.code == 2);
  CHECK(scheme.err.find("bad endpoint 'bogus://x'") != std::string::npos);
  CHECK(RunClaw({"--broker", "dns://no-port", "ping"}).code == 2);
  CHECK(RunClaw({"wait", "j-1", "--timeout", "200000d"}).code == 2);  // over 100 years
  const auto run = RunClaw({"list", "--state", "sleeping"});
  CHECK(run.code == 2);
  CHECK(run.err.find("'sleeping'") != std::string::npos);
  CHECK(RunClaw({"--help"}).code == 0);
}

// ---- groups ----

TEST_CASE("a GROUP_SUBMIT without a key gets a random one and keeps it when resent") {
  FakeBroker broker([](const wire::ClientRequest& request, std::size_t seen) {
    if (seen == 0) return std::vector<wire::ClientReply>();  // the reply is "lost"
    auto accepted = Reply(request, wire::StatusCode::kAccepted);
    accepted.id = "g-1";
    return std::vector{accepted};
  });
  Connection connection({broker.endpoint()}, milliseconds(200));
  const auto reply =
      connection.Call(wire::GroupSubmitRequest{.jobs = {wire::JobSpec{.type = "t"}}});
  REQUIRE(reply);
  CHECK(reply->id == "g-1");
  const auto requests = broker.requests();
  REQUIRE(requests.size() == 2);
  const auto& first = std::get<wire::GroupSubmitRequest>(requests[0]);
  REQUIRE(first.key);
  CHECK(first.key->starts_with("auto-"));
  CHECK(std::get<wire::GroupSubmitRequest>(requests[1]).key == first.key);
}

// A broker holding one group g-1 of `total` members: each GROUP_STATUS settles one more member
// (as `outcome`), and the follow-up j-9 (if any) ends as `follow_up` once all have settled.
Script OneGroup(std::uint64_t total, wire::JobState outcome,
                std::optional<wire::JobState> follow_up) {
  auto polls = std::make_shared<std::uint64_t>(0);
  return [=](const wire::ClientRequest& request, std::size_t) {
    if (std::holds_alternative<wire::GroupSubmitRequest>(request)) {
      auto accepted = Reply(request, wire::StatusCode::kAccepted);
      accepted.id = "g-1";
      accepted.ids = std::vector<std::string>{"j-1", "j-2"};
      if (follow_up) accepted.follow_up_id = "j-9";
      return std::vector{accepted};
    }
    const auto& status = std::get<wire::GroupStatusRequest>(request);
    wire::GroupInfo group{.id = status.id, .total = total};
    group.settled = std::min(++*polls, total);
    for (const auto& state : wire::kJobStates) group.counts[std::string(state.name)] = 0;
    group.counts[std::string(wire::Name(outcome))] = group.settled;
    group.counts["running"] = total - group.settled;
    if (status.members) {
      group.members.emplace();
      for (std::uint64_t i = 1; i <= total; ++i) {
        group.members->push_back(Job("j-" + std::to_string(i), outcome));
      }
    }
    if (follow_up) {
      group.follow_up = Job("j-9", group.settled == total ? *follow_up : wire::JobState::kWaiting);
      group.follow_up->follow_up = true;
      group.follow_up->group = "g-1";
      if (group.follow_up->state == wire::JobState::kSucceeded) group.follow_up->result = "sum 3\n";
    }
    auto reply = Reply(request, wire::StatusCode::kOk);
    reply.group = std::move(group);
    return std::vector{reply};
  };
}

TEST_CASE("claw-client group submit sends every line of a file as a member, and the follow-up") {
  testing::TempDir dir;
  {
    std::ofstream file(dir.File("members.jsonl"));
    file << R"({"payload": "a", "priority": "high", "after": []})" << '\n'
         << '\n'
         << R"({"type": "other", "payload": "b", "timeout": "30s", "after": ["#0"]})" << '\n';
  }
  FakeBroker broker(OneGroup(2, wire::JobState::kSucceeded, wire::JobState::kSucceeded));
  const auto run = RunClaw({"--broker", broker.endpoint(), "group", "submit",
                            dir.File("members.jsonl"), "--type", "map", "--max-attempts", "2",
                            "--then", "reduce", "--then-payload", "go", "--key", "k-1"});
  CHECK(run.code == 0);
  CHECK(run.out == "g-1\n");
  const auto request = std::get<wire::GroupSubmitRequest>(broker.requests().at(0));
  REQUIRE(request.jobs.size() == 2);
  CHECK(request.jobs[0].type == "map");
  CHECK(request.jobs[0].payload == "a");
  CHECK(request.jobs[0].priority == 7u);
  CHECK(request.jobs[0].max_attempts == 2u);
  CHECK(request.jobs[1].type == "other");
  CHECK(request.jobs[1].timeout_ms == 30000u);
  CHECK(request.jobs[1].after == std::vector<std::string>{"#0"});
  REQUIRE(request.follow_up);
  CHECK(request.follow_up->type == "reduce");
  CHECK(request.follow_up->payload == "go");
  CHECK(request.follow_up_policy == wire::DependencyPolicy::kAllSettled);
  CHECK(request.key == "k-1");
}

TEST_CASE("claw-client group submit of a folder makes a member per file, in name order") {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.File("texts"));
  std::ofstream(dir.File("texts/b.txt")) << "second";
  std::ofstream(dir.File("texts/a.txt")) << "first";
  std::filesystem::create_directory(dir.File("texts/sub"));
  FakeBroker broker(OneGroup(2, wire::JobState::kSucceeded, std::nullopt));
  const auto run =
      RunClaw({"--broker", broker.endpoint(), "--json", "group", "submit", dir.File("texts"),
               "--type", "map", "--require", "disk=ssd", "--then", "reduce", "--then-policy",
               "all_succeeded", "--then-require", "role=coordinator"});
  CHECK(run.code == 0);
  const auto json = nlohmann::json::parse(run.out);
  CHECK(json["id"] == "g-1");
  CHECK(json["ids"] == nlohmann::json{"j-1", "j-2"});
  const auto request = std::get<wire::GroupSubmitRequest>(broker.requests().at(0));
  REQUIRE(request.jobs.size() == 2);
  CHECK(request.jobs[0].payload == "first");
  CHECK(request.jobs[1].payload == "second");
  CHECK(request.follow_up_policy == wire::DependencyPolicy::kAllSucceeded);
  // The follow-up is pinned to the coordinator; the members keep their own requirement.
  CHECK(request.jobs[0].required == wire::Labels{{"disk", "ssd"}});
  CHECK(request.follow_up->required == wire::Labels{{"role", "coordinator"}});
  CHECK(RunClaw({"--broker", broker.endpoint(), "group", "submit", dir.File("texts")}).code == 2);
}

TEST_CASE("claw-client group submit refuses a bad line, naming it, without sending anything") {
  testing::TempDir dir;
  std::ofstream(dir.File("members.jsonl")) << "{\"type\": \"t\"}\n{\"type\": \"t\", \"prio\": 1}\n";
  FakeBroker broker(OneGroup(1, wire::JobState::kSucceeded, std::nullopt));
  const auto run =
      RunClaw({"--broker", broker.endpoint(), "group", "submit", dir.File("members.jsonl")});
  CHECK(run.code == 2);
  CHECK(run.err.find("line 2: unknown key 'prio'") != std::string::npos);
  CHECK(broker.requests().empty());
}

TEST_CASE("claw-client group wait polls the counts, then prints the follow-up's result") {
  FakeBroker broker(OneGroup(3, wire::JobState::kSucceeded, wire::JobState::kSucceeded));
  const auto run = RunClaw({"--broker", broker.endpoint(), "group", "wait", "g-1"});
  CHECK(run.code == 0);
  CHECK(run.out == "sum 3\n");
  CHECK(run.err.find("g-1 1/3 settled") != std::string::npos);
  CHECK(run.err.find("g-1 3/3 settled (succeeded 3), follow-up j-9 succeeded") !=
        std::string::npos);
  for (const auto& request : broker.requests()) {
    CHECK_FALSE(std::get<wire::GroupStatusRequest>(request).members);
  }
}

TEST_CASE("claw-client group wait exits with the follow-up's outcome, or the members'") {
  FakeBroker dead_follow_up(OneGroup(1, wire::JobState::kSucceeded, wire::JobState::kDead));
  CHECK(RunClaw({"--broker", dead_follow_up.endpoint(), "group", "wait", "g-1"}).code == 3);
  FakeBroker dead_member(OneGroup(2, wire::JobState::kDead, std::nullopt));
  const auto dead = RunClaw({"--broker", dead_member.endpoint(), "group", "wait", "g-1"});
  CHECK(dead.code == 3);
  CHECK(dead.err.find("g-1: 2 dead, 0 cancelled of 2") != std::string::npos);
  FakeBroker cancelled(OneGroup(1, wire::JobState::kCancelled, std::nullopt));
  CHECK(RunClaw({"--broker", cancelled.endpoint(), "group", "wait", "g-1"}).code == 4);
}

TEST_CASE("claw-client group wait times out with exit 5 and the group going on") {
  FakeBroker broker(OneGroup(1000, wire::JobState::kSucceeded, std::nullopt));
  // The deadline is checked after each look at the group, so 1 ms times out after the first.
  const auto run =
      RunClaw({"--broker", broker.endpoint(), "group", "wait", "g-1", "--timeout", "1ms"});
  CHECK(run.code == 5);
  CHECK(run.err.find("the group goes on") != std::string::npos);
}

TEST_CASE("claw-client group status lists the members and --json gives the group") {
  FakeBroker broker(OneGroup(2, wire::JobState::kSucceeded, wire::JobState::kSucceeded));
  const auto text = RunClaw({"--broker", broker.endpoint(), "group", "status", "g-1"});
  CHECK(text.code == 0);
  CHECK(text.out.find("settled:   1/2") != std::string::npos);
  CHECK(text.out.find("follow-up: j-9 t waiting") != std::string::npos);
  CHECK(text.out.find("ID   STATE") != std::string::npos);
  const auto json = nlohmann::json::parse(
      RunClaw({"--broker", broker.endpoint(), "--json", "group", "status", "g-1"}).out);
  CHECK(json["id"] == "g-1");
  CHECK(json["total"] == 2);
  CHECK(json["members"].size() == 2);
  CHECK(json["follow_up"]["state"] == "succeeded");
  CHECK(json["follow_up"]["follow_up"] == true);
}

TEST_CASE("claw-client submit --after sends the dependencies and the policy") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run = RunClaw({"--broker", broker.endpoint(), "submit", "--type", "t", "--after",
                            "j-1", "--after", "j-2", "--after-policy", "all_settled"});
  CHECK(run.code == 0);
  const auto submit = std::get<wire::SubmitRequest>(broker.requests().at(0));
  CHECK(submit.job.after == std::vector<std::string>{"j-1", "j-2"});
  CHECK(submit.job.after_policy == wire::DependencyPolicy::kAllSettled);
  CHECK(RunClaw({"submit", "--type", "t", "--after-policy", "some"}).code == 2);
}

// ---- placement, drain and the cluster ----

TEST_CASE("claw-client submit sends the placement flags") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto run =
      RunClaw({"--broker", broker.endpoint(), "submit", "--type", "render", "--hash-key", "user-7",
               "--require", "gpu=true", "--require", "disk=ssd", "--zone", "eu-1", "--locality",
               "same-zone", "--max-rtt", "20ms"});
  CHECK(run.code == 0);
  const auto submit = std::get<wire::SubmitRequest>(broker.requests().at(0));
  CHECK(submit.job.hash_key == "user-7");
  CHECK(submit.job.required == wire::Labels{{"disk", "ssd"}, {"gpu", "true"}});
  CHECK(submit.job.zone == "eu-1");
  CHECK(submit.job.locality == wire::Locality::kSameZone);
  CHECK(submit.job.max_rtt_ms == 20u);
}

TEST_CASE("claw-client submit without placement flags sends no placement") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  CHECK(RunClaw({"--broker", broker.endpoint(), "submit", "--type", "t"}).code == 0);
  const auto submit = std::get<wire::SubmitRequest>(broker.requests().at(0));
  CHECK_FALSE(submit.job.hash_key);
  CHECK(submit.job.required.empty());
  CHECK_FALSE(submit.job.zone);
  CHECK_FALSE(submit.job.locality);
  CHECK_FALSE(submit.job.max_rtt_ms);
}

TEST_CASE("claw-client submit exits 2 on bad placement flags, sending nothing") {
  FakeBroker broker(OneJob(wire::JobState::kQueued));
  const auto submit = [&](std::vector<std::string> flags) {
    std::vector<std::string> args = {"--broker", broker.endpoint(), "submit", "--type", "t"};
    args.insert(args.end(), flags.begin(), flags.end());
    return RunClaw(args);
  };
  const auto no_value = submit({"--require", "gpu"});
  CHECK(no_value.code == 2);
  CHECK(no_value.err.find("expected key=value") != std::string::npos);
  const auto twice = submit({"--require", "gpu=true", "--require", "gpu=false"});
  CHECK(twice.code == 2);
  CHECK(twice.err == "claw-client: requirement 'gpu' is given twice\n");
  CHECK(submit({"--locality", "nearby"}).code == 2);
  CHECK(submit({"--max-rtt", "20"}).code == 2);
  CHECK(broker.requests().empty());
}

TEST_CASE("claw-client group submit takes placement defaults that members may override") {
  testing::TempDir dir;
  std::ofstream(dir.File("members.jsonl"))
      << "{}\n"
      << R"({"requires": {"cpu": "arm"}, "zone": "us-2", "max_rtt": "5ms"})" << '\n';
  FakeBroker broker(OneGroup(2, wire::JobState::kSucceeded, std::nullopt));
  const auto run = RunClaw({"--broker", broker.endpoint(), "group", "submit",
                            dir.File("members.jsonl"), "--type", "render", "--require", "gpu=true",
                            "--zone", "eu-1", "--locality", "cross-zone", "--hash-key", "batch-1"});
  CHECK(run.code == 0);
  const auto request = std::get<wire::GroupSubmitRequest>(broker.requests().at(0));
  REQUIRE(request.jobs.size() == 2);
  CHECK(request.jobs[0].required == wire::Labels{{"gpu", "true"}});
  CHECK(request.jobs[0].zone == "eu-1");
  CHECK(request.jobs[0].locality == wire::Locality::kCrossZone);
  CHECK(request.jobs[0].hash_key == "batch-1");
  CHECK_FALSE(request.jobs[0].max_rtt_ms);
  CHECK(request.jobs[1].required == wire::Labels{{"cpu", "arm"}});
  CHECK(request.jobs[1].zone == "us-2");
  CHECK(request.jobs[1].locality == wire::Locality::kCrossZone);
  CHECK(request.jobs[1].max_rtt_ms == 5u);
}

TEST_CASE("claw-client status shows why a queued job waits, and --json carries the reason") {
  const std::string reason = "needs gpu=true: none of the 2 workers for type 'render' has it";
  FakeBroker broker([&](const wire::ClientRequest& request, std::size_t) {
    auto job = Job("j-1", wire::JobState::kQueued);
    job.required = {{"gpu", "true"}};
    job.waiting_reason = reason;
    return std::vector{JobReply(request, job)};
  });
  const auto text = RunClaw({"--broker", broker.endpoint(), "status", "j-1"});
  CHECK(text.code == 0);
  CHECK(text.out.find("requires: gpu=true\n") != std::string::npos);
  CHECK(text.out.find("waiting:  " + reason + "\n") != std::string::npos);
  const auto json = nlohmann::json::parse(
      RunClaw({"--broker", broker.endpoint(), "--json", "status", "j-1"}).out);
  CHECK(json["waiting_reason"] == reason);
  CHECK(json["requires"]["gpu"] == "true");
}

// A broker with one worker, "w1", running two jobs: DRAIN moves them, DRAIN of another worker is
// NOT_FOUND, CLUSTER shows w1.
Script OneWorker() {
  return [](const wire::ClientRequest& request, std::size_t) {
    if (const auto* drain = std::get_if<wire::DrainRequest>(&request)) {
      if (drain->worker != "w1") {
        return std::vector{
            Refusal(request, wire::StatusCode::kNotFound, "no worker " + drain->worker)};
      }
      auto reply = Reply(request, wire::StatusCode::kOk);
      reply.moved = drain->drain ? 2 : 0;
      return std::vector{reply};
    }
    auto reply = Reply(request, wire::StatusCode::kOk);
    wire::ClusterInfo cluster{.role = "standalone",
                              .strategy = "round-robin",
                              .workers_total = 1,
                              .workers_active = 1,
                              .capacity_total = 4,
                              .capacity_in_use = 2};
    cluster.jobs = {{"running", 2}};
    cluster.workers = {{.id = "w1",
                        .types = {"render"},
                        .capacity = 4,
                        .in_use = 2,
                        .labels = {{"gpu", "true"}, {"zone", "eu-1"}},
                        .breaker = "half-open",
                        .rtt_ms = 7,
                        .draining = true}};
    reply.cluster = cluster;
    return std::vector{reply};
  };
}

TEST_CASE("claw-client drain reports the jobs moved, and --undo puts the worker back") {
  FakeBroker broker(OneWorker());
  const auto drained = RunClaw({"--broker", broker.endpoint(), "drain", "w1"});
  CHECK(drained.code == 0);
  CHECK(drained.out == "drained w1: 2 running jobs moved to other workers\n");
  const auto undone = RunClaw({"--broker", broker.endpoint(), "drain", "w1", "--undo"});
  CHECK(undone.code == 0);
  CHECK(undone.out == "w1 back in service\n");
  const auto requests = broker.requests();
  REQUIRE(requests.size() == 2);
  CHECK(std::get<wire::DrainRequest>(requests[0]).worker == "w1");
  CHECK(std::get<wire::DrainRequest>(requests[0]).drain);
  CHECK_FALSE(std::get<wire::DrainRequest>(requests[1]).drain);
  const auto json =
      nlohmann::json::parse(RunClaw({"--broker", broker.endpoint(), "--json", "drain", "w1"}).out);
  CHECK(json == nlohmann::json{{"worker", "w1"}, {"draining", true}, {"moved", 2}});
}

TEST_CASE("claw-client drain of an unknown worker prints NOT_FOUND and exits 7") {
  FakeBroker broker(OneWorker());
  const auto run = RunClaw({"--broker", broker.endpoint(), "drain", "w9"});
  CHECK(run.code == 7);
  CHECK(run.err == "claw-client: NOT_FOUND: no worker w9\n");
  CHECK(RunClaw({"--broker", broker.endpoint(), "drain"}).code == 2);
}

TEST_CASE("claw-client cluster shows the strategy and each worker's state") {
  FakeBroker broker(OneWorker());
  const auto text = RunClaw({"--broker", broker.endpoint(), "cluster"});
  CHECK(text.code == 0);
  CHECK(text.out.find("strategy:  round-robin\n") != std::string::npos);
  CHECK(text.out.find("workers:   1 of 1 active\n") != std::string::npos);
  CHECK(text.out.find("tasks:     2 active\n") != std::string::npos);
  CHECK(text.out.find("w1      render  2/4   eu-1  gpu=true  healthy  half-open  7ms  yes") !=
        std::string::npos);
  const auto json =
      nlohmann::json::parse(RunClaw({"--broker", broker.endpoint(), "--json", "cluster"}).out);
  CHECK(json["strategy"] == "round-robin");
  CHECK(json["workers"][0]["breaker"] == "half-open");
  CHECK(json["workers"][0]["rtt_ms"] == 7);
  CHECK(json["workers"][0]["draining"] == true);
  CHECK(json["workers"][0]["labels"]["zone"] == "eu-1");
}

}  // namespace
}  // namespace claw::client
