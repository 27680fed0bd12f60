// The worker loop against a fake broker: a real ROUTER socket on tcp://127.0.0.1:* that speaks
// the protocol through the wire codec, and reads like a transcript of the worker dialog.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "schema/transport.hpp"
#include "worker/log.hpp"
#include "worker/worker.hpp"

namespace claw::worker {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;

class FakeBroker {
 public:
  explicit FakeBroker(const std::string& bind = "tcp://127.0.0.1:*")
      : router_(std::move(*wire::BindRouter(context_, bind, 64 << 20))),
        endpoint_(wire::BoundEndpoint(router_)) {}

  const std::string& endpoint() const { return endpoint_; }
  const std::string& peer() const { return peer_.routing_id; }
  int heartbeats() const { return heartbeats_; }

  // The next worker message other than HEARTBEAT (those are counted), or nullopt at the deadline.
  std::optional<wire::WorkerMessage> Next(std::chrono::milliseconds within = kDeadline) {
    const auto deadline = Clock::now() + within;
    while (Clock::now() < deadline) {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (zmq::poll(&item, 1, std::max(wait, 0ms)) <= 0) continue;
      auto inbound = wire::ReceiveInbound(router_, wire::DecodeLimits{});
      if (!inbound || !inbound->message) continue;
      auto* message = std::get_if<wire::WorkerMessage>(&*inbound->message);
      if (message == nullptr) continue;
      peer_ = inbound->from;
      if (std::holds_alternative<wire::Heartbeat>(*message)) {
        ++heartbeats_;
        continue;
      }
      return std::move(*message);
    }
    return std::nullopt;
  }

  template <typename T>
  T Expect(std::chrono::milliseconds within = kDeadline) {
    auto message = Next(within);
    REQUIRE(message.has_value());
    INFO("got " << wire::Name(wire::CommandOf(*message)));
    REQUIRE(std::holds_alternative<T>(*message));
    return std::get<T>(std::move(*message));
  }

  void Send(wire::WorkerMessage message) {
    REQUIRE(wire::SendTo(router_, peer_, wire::Encode(message)) == wire::SendOutcome::kSent);
  }

  // READY, then WELCOME with the given timing.
  wire::Ready Greet(std::uint64_t heartbeat_ms = 1000, std::uint32_t liveness = 3) {
    auto ready = Expect<wire::Ready>();
    Send(wire::Welcome{.heartbeat_ms = heartbeat_ms, .liveness = liveness, .epoch = 1});
    return ready;
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t router_;
  std::string endpoint_;
  wire::Envelope peer_;
  int heartbeats_ = 0;
};

// A Worker running on its own thread; stopped and joined when this goes away.
class RunningWorker {
 public:
  RunningWorker(WorkerOptions options, Handler handler)
      : worker_(std::move(options), std::move(handler)),
        thread_([this] { status_ = worker_.Run(stop_); }) {}
  ~RunningWorker() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const Status& status() const { return status_; }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  std::atomic<bool> stop_ = false;
  Worker worker_;
  Status status_;
  std::thread thread_;
};

WorkerOptions Options(const std::string& endpoint, std::uint32_t capacity = 1) {
  Logger()->set_level(spdlog::level::err);
  return WorkerOptions{.brokers = {endpoint},
                       .id = "test-worker",
                       .types = {"echo", "other"},
                       .capacity = capacity,
                       .labels = {{"zone", "eu-1"}},
                       .shutdown_grace = 5s};
}

wire::JobDispatch Job(std::string id, std::uint64_t lease, std::string payload = "hi") {
  return wire::JobDispatch{.id = std::move(id),
                           .type = "echo",
                           .payload = std::move(payload),
                           .lease = lease,
                           .attempt = 1,
                           .timeout_ms = 5000,
                           .priority = 5};
}

// A handler that says "started" through progress, then waits for the test (or cancellation).
struct Gate {
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();

  Handler Make() {
    return [future = opened](JobContext& job) {
      job.ReportProgress(std::nullopt, "started");
      const auto deadline = Clock::now() + kDeadline;
      while (!job.cancelled() && Clock::now() < deadline) {
        if (future.wait_for(5ms) == std::future_status::ready) return Outcome::Success("released");
      }
      return Outcome::Failure(job.cancelled() ? "saw cancel" : "gate never opened");
    };
  }
};

TEST_CASE("the worker says READY and after WELCOME runs a JOB and reports DONE with its lease") {
  FakeBroker broker;
  RunningWorker worker(Options(broker.endpoint(), 2),
                       [](JobContext& job) { return Outcome::Success(job.payload() + "!"); });
  const auto ready = broker.Greet();
  CHECK(ready == wire::Ready{.worker_id = "test-worker",
                             .types = {"echo", "other"},
                             .capacity = 2,
                             .labels = {{"zone", "eu-1"}}});
  broker.Send(Job("job-1", 42));
  CHECK(broker.Expect<wire::Done>() == wire::Done{.id = "job-1", .lease = 42, .result = "hi!"});
}

TEST_CASE("a worker started before its broker is there says READY once it is, and runs jobs") {
  // The loop sleeps on the socket's descriptor; the connection coming up must wake it.
  std::string endpoint;
  {
    FakeBroker probe;  // for a free port, closed again
    endpoint = probe.endpoint();
  }
  RunningWorker worker(Options(endpoint),
                       [](JobContext& job) { return Outcome::Success(job.payload() + "!"); });
  FakeBroker broker(endpoint);
  broker.Greet();
  broker.Send(Job("job-1", 7));
  CHECK(broker.Expect<wire::Done>() == wire::Done{.id = "job-1", .lease = 7, .result = "hi!"});
}

TEST_CASE("progress and checkpoints from a handler reach the broker with the job's lease") {
  FakeBroker broker;
  RunningWorker worker(Options(broker.endpoint()), [](JobContext& job) {
    job.ReportProgress(50, "half");
    job.SaveCheckpoint("cp-1");
    return Outcome::Success("ok");
  });
  broker.Greet();
  broker.Send(Job("job-1", 7));
  CHECK(broker.Expect<wire::ProgressReport>() ==
        wire::ProgressReport{.id = "job-1", .lease = 7, .percent = 50, .message = "half"});
  CHECK(broker.Expect<wire::ProgressReport>() ==
        wire::ProgressReport{.id = "job-1", .lease = 7, .checkpoint = "cp-1"});
  CHECK(broker.Expect<wire::Done>().lease == 7);
}

TEST_CASE("the handler sees the job's checkpoint and attempt") {
  FakeBroker broker;
  RunningWorker worker(Options(broker.endpoint()), [](JobContext& job) {
    return Outcome::Success(job.checkpoint().value_or("none") + "/" +
                            std::to_string(job.attempt()));
  });
  broker.Greet();
  auto job = Job("job-1", 3);
  job.attempt = 4;
  job.checkpoint = "offset=9";
  broker.Send(job);
  CHECK(broker.Expect<wire::Done>().result == "offset=9/4");
}

TEST_CASE("a failing handler is reported as FAIL and as permanent when it says so") {
  FakeBroker broker;
  RunningWorker worker(Options(broker.endpoint()), [](JobContext& job) {
    return Outcome::Failure("bad " + job.id(), job.id() == "job-2");
  });
  broker.Greet();
  broker.Send(Job("job-1", 1));
  CHECK(broker.Expect<wire::Failed>() ==
        wire::Failed{.id = "job-1", .lease = 1, .error = "bad job-1", .permanent = false});
  broker.Send(Job("job-2", 2));
  CHECK(broker.Expect<wire::Failed>() ==
        wire::Failed{.id = "job-2", .lease = 2, .error = "bad job-2", .permanent = true});
}

TEST_CASE("a handler that throws is a retryable FAIL and the worker goes on") {
  FakeBroker broker;
  RunningWorker worker(Options(broker.endpoint()), [](JobContext& job) -> Outcome {
    if (job.id() == "job-1") throw std::runtime_error("boom");
    return Outcome::Success("fine");
  });
  broker.Greet();
  broker.Send(Job("job-1", 1));
  const auto failed = broker.Expect<wire::Failed>();
  CHECK(failed.lease == 1);
  CHECK_FALSE(failed.permanent);
  CHECK(failed.error.find("boom") != std::string::npos);
  broker.Send(Job("job-2", 2));
  CHECK(broker.Expect<wire::Done>().result == "fine");
}

TEST_CASE("inline handlers run on the loop's thread in arrival order, progress ahead of outcome") {
  FakeBroker broker;
  auto options = Options(broker.endpoint(), 2);
  options.run_inline = true;
  std::vector<std::thread::id> ran_on;  // written by the handler, read once the worker stopped
  RunningWorker worker(options, [&ran_on](JobContext& job) -> Outcome {
    ran_on.push_back(std::this_thread::get_id());
    job.ReportProgress(10, "at " + job.id());
    if (job.id() == "job-2") throw std::runtime_error("boom");
    return Outcome::Success(job.payload());
  });
  broker.Greet();
  broker.Send(Job("job-1", 1, "one"));
  broker.Send(Job("job-2", 2));
  CHECK(broker.Expect<wire::ProgressReport>().message == "at job-1");
  CHECK(broker.Expect<wire::Done>() == wire::Done{.id = "job-1", .lease = 1, .result = "one"});
  CHECK(broker.Expect<wire::ProgressReport>().message == "at job-2");
  const auto failed = broker.Expect<wire::Failed>();
  CHECK(failed.lease == 2);
  CHECK(failed.error.find("boom") != std::string::npos);
  const auto loop_thread = worker.thread_id();
  worker.Stop();
  CHECK(ran_on == std::vector<std::thread::id>{loop_thread, loop_thread});
}

TEST_CASE("a CANCEL stops the handler and the worker reports FAIL cancelled") {
  FakeBroker broker;
  Gate gate;
  RunningWorker worker(Options(broker.endpoint()), gate.Make());
  broker.Greet();
  broker.Send(Job("job-1", 5));
  CHECK(broker.Expect<wire::ProgressReport>().message == "started");
  broker.Send(wire::CancelJob{.id = "job-1", .lease = 5, .reason = "client asked"});
  CHECK(broker.Expect<wire::Failed>() ==
        wire::Failed{.id = "job-1", .lease = 5, .error = "cancelled", .permanent = false});
}

TEST_CASE("the worker heartbeats at the broker's interval while a job runs") {
  FakeBroker broker;
  Gate gate;
  RunningWorker worker(Options(broker.endpoint()), gate.Make());
  broker.Greet(50, 100);
  broker.Send(Job("job-1", 5));
  CHECK(broker.Expect<wire::ProgressReport>().message == "started");
  const int before = broker.heartbeats();
  // Nothing but heartbeats comes while the handler is held.
  CHECK_FALSE(broker.Next(400ms).has_value());
  CHECK(broker.heartbeats() - before >= 3);
  gate.open.set_value();
  CHECK(broker.Expect<wire::Done>().result == "released");
}

TEST_CASE("a JOB beyond capacity is refused at once as a retryable FAIL") {
  FakeBroker broker;
  Gate gate;
  RunningWorker worker(Options(broker.endpoint(), 1), gate.Make());
  broker.Greet();
  broker.Send(Job("job-1", 1));
  CHECK(broker.Expect<wire::ProgressReport>().message == "started");
  broker.Send(Job("job-2", 2));
  CHECK(broker.Expect<wire::Failed>() ==
        wire::Failed{.id = "job-2", .lease = 2, .error = "worker over capacity"});
  gate.open.set_value();
  CHECK(broker.Expect<wire::Done>() == wire::Done{.id = "job-1", .lease = 1, .result = "released"});
}

TEST_CASE("with prefetch, jobs beyond capacity wait and start in order; a recalled one goes back") {
  FakeBroker broker;
  Gate gate;
  auto options = Options(broker.endpoint(), 1);
  options.prefetch = 2;
  RunningWorker worker(options, gate.Make());
  CHECK(broker.Greet().prefetch == 2);
  broker.Send(Job("job-1", 1));
  CHECK(broker.Expect<wire::Started>() == wire::Started{.id = "job-1", .lease = 1});
  CHECK(broker.Expect<wire::ProgressReport>().message == "started");
  broker.Send(Job("job-2", 2));
  broker.Send(Job("job-3", 3));
  broker.Send(Job("job-4", 4));  // beyond capacity + prefetch
  CHECK(broker.Expect<wire::Failed>() ==
        wire::Failed{.id = "job-4", .lease = 4, .error = "worker over capacity"});
  broker.Send(wire::Recall{.id = "job-3", .lease = 3});
  CHECK(broker.Expect<wire::Returned>() == wire::Returned{.id = "job-3", .lease = 3});
  broker.Send(wire::Recall{.id = "job-1", .lease = 1});  // running: not answered
  gate.open.set_value();
  CHECK(broker.Expect<wire::Done>() == wire::Done{.id = "job-1", .lease = 1, .result = "released"});
  CHECK(broker.Expect<wire::Started>() == wire::Started{.id = "job-2", .lease = 2});
  CHECK(broker.Expect<wire::ProgressReport>().message == "started");
  CHECK(broker.Expect<wire::Done>() == wire::Done{.id = "job-2", .lease = 2, .result = "released"});
}

// A worker of capacity 1 and prefetch 1, running job-1 (held at the gate) and holding job-2.
struct RunningOneHoldingOne {
  RunningOneHoldingOne() {
    broker.Greet();
    broker.Send(Job("job-1", 1));
    broker.Send(Job("job-2", 2));
    CHECK(broker.Expect<wire::Started>().id == "job-1");
    CHECK(broker.Expect<wire::ProgressReport>().message == "started");
  }
  static WorkerOptions WithPrefetch(const std::string& endpoint) {
    auto options = Options(endpoint, 1);
    options.prefetch = 1;
    return options;
  }
  FakeBroker broker;
  Gate gate;
  RunningWorker worker{WithPrefetch(broker.endpoint()), gate.Make()};
};

TEST_CASE("a CANCEL for a job waiting to start is answered RETURNED") {
  RunningOneHoldingOne w;
  auto& broker = w.broker;
  broker.Send(wire::CancelJob{.id = "job-2", .lease = 2, .reason = "cancelled by a client"});
  CHECK(broker.Expect<wire::Returned>() == wire::Returned{.id = "job-2", .lease = 2});
  w.gate.open.set_value();
  CHECK(broker.Expect<wire::Done>().id == "job-1");
}

TEST_CASE("on stop, a worker with prefetch gives back the jobs it has not started") {
  RunningOneHoldingOne w;
  auto& broker = w.broker;
  w.worker.Stop();
  CHECK(broker.Expect<wire::Failed>() ==
        wire::Failed{.id = "job-1", .lease = 1, .error = "worker shutting down"});
  CHECK(broker.Expect<wire::Returned>() == wire::Returned{.id = "job-2", .lease = 2});
  CHECK(broker.Expect<wire::Disconnect>().reason == "worker shutting down");
}

TEST_CASE("after DISCONNECT from the broker the worker connects again and says READY") {
  FakeBroker broker;
  RunningWorker worker(Options(broker.endpoint()),
                       [](JobContext&) { return Outcome::Success(""); });
  broker.Greet();
  const std::string first_peer = broker.peer();
  broker.Send(wire::Disconnect{.reason = "unknown worker"});
  CHECK(broker.Expect<wire::Ready>().worker_id == "test-worker");
  CHECK(broker.peer() != first_peer);
}

TEST_CASE("a silent broker is declared dead so its jobs are cancelled and the worker reconnects") {
  FakeBroker broker;
  std::promise<bool> saw_cancel;
  RunningWorker worker(Options(broker.endpoint()), [&](JobContext& job) {
    const auto deadline = Clock::now() + kDeadline;
    while (!job.cancelled() && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    saw_cancel.set_value(job.cancelled());
    return Outcome::Success("too late");
  });
  broker.Greet(50, 2);
  broker.Send(Job("job-1", 1));
  // The broker says nothing more: after 2 x 50ms the worker gives up on this connection.
  CHECK(broker.Expect<wire::Ready>().worker_id == "test-worker");
  auto cancelled = saw_cancel.get_future();
  REQUIRE(cancelled.wait_for(kDeadline) == std::future_status::ready);
  CHECK(cancelled.get());
  // The stale outcome is not reported on the new connection.
  broker.Send(wire::Welcome{.heartbeat_ms = 1000, .liveness = 3, .epoch = 2});
  CHECK_FALSE(broker.Next(300ms).has_value());
}

TEST_CASE("the worker fails over to the next broker endpoint") {
  FakeBroker first;
  FakeBroker second;
  auto options = Options(first.endpoint());
  options.brokers.push_back(second.endpoint());
  RunningWorker worker(options, [](JobContext&) { return Outcome::Success("from second"); });
  first.Greet(50, 2);
  second.Greet();
  second.Send(Job("job-1", 9));
  CHECK(second.Expect<wire::Done>().result == "from second");
}

TEST_CASE("on stop the worker fails its running jobs and says DISCONNECT") {
  FakeBroker broker;
  Gate gate;
  RunningWorker worker(Options(broker.endpoint()), gate.Make());
  broker.Greet();
  broker.Send(Job("job-1", 4));
  CHECK(broker.Expect<wire::ProgressReport>().message == "started");
  worker.Stop();
  CHECK(worker.status().has_value());
  CHECK(broker.Expect<wire::Failed>() ==
        wire::Failed{.id = "job-1", .lease = 4, .error = "worker shutting down"});
  CHECK(broker.Expect<wire::Disconnect>().reason == "worker shutting down");
  // The cancelled handler's own outcome is not reported after DISCONNECT.
  CHECK_FALSE(broker.Next(200ms).has_value());
}

TEST_CASE("bad options are refused before connecting") {
  std::atomic<bool> stop = false;
  auto no_type = Options("tcp://127.0.0.1:1");
  no_type.types.clear();
  CHECK_FALSE(Worker(no_type, nullptr).Run(stop).has_value());
  auto zero = Options("tcp://127.0.0.1:1", 0);
  CHECK_FALSE(Worker(zero, nullptr).Run(stop).has_value());
  CHECK_FALSE(Worker(Options("nonsense://x"), nullptr).Run(stop).has_value());
  auto inline_with_prefetch = Options("tcp://127.0.0.1:1");
  inline_with_prefetch.run_inline = true;
  inline_with_prefetch.prefetch = 2;
  const auto refused = Worker(inline_with_prefetch, nullptr).Run(stop);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("run_inline") != std::string::npos);
  auto spaced = Options("tcp://127.0.0.1:1");
  spaced.id = "has space";
  const auto bad_id = Worker(spaced, nullptr).Run(stop);
  REQUIRE_FALSE(bad_id.has_value());
  CHECK(bad_id.error().message ==
        "worker id 'has space' must be 1-128 bytes of A-Z a-z 0-9 _ . : -");
}

TEST_CASE("no-op jobs flow at thousands per second") {
  FakeBroker broker;
  constexpr std::uint32_t kCapacity = 8;
  constexpr int kJobs = 4000;
  RunningWorker worker(Options(broker.endpoint(), kCapacity),
                       [](JobContext&) { return Outcome::Success(""); });
  broker.Greet();
  const auto start = Clock::now();
  int sent = 0;
  for (; sent < static_cast<int>(kCapacity); ++sent) broker.Send(Job("j", sent));
  for (int done = 0; done < kJobs; ++done) {
    REQUIRE(std::holds_alternative<wire::Done>(broker.Next().value()));
    if (sent < kJobs) broker.Send(Job("j", sent++));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double rate = kJobs / seconds;
  MESSAGE(rate << " jobs/s through the loop");
  CHECK(rate > 1000);
}

}  // namespace
}  // namespace claw::worker
