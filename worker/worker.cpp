// The worker loop: one thread owns the DEALER socket and polls it together with an eventfd that
// handler threads signal when they have progress or an outcome to report. Each pass handles what
// arrived, then sleeps until the next heartbeat or liveness deadline (or at most kStopCheck, to
// notice the stop flag).
//
// Connection phases: kSendingReady (socket opened, READY waits for the connection to exist,
// since the DEALER is IMMEDIATE), kAwaitingWelcome, kWelcomed; kDisconnected while the reconnect
// delay runs. Jobs remember the connection they arrived on; when it is lost they are cancelled
// and their outcomes dropped.
#include "worker/worker.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>
#include <variant>

#include "schema/duration.hpp"
#include "schema/names.hpp"
#include "schema/transport.hpp"
#include "worker/handler_pool.hpp"
#include "worker/heartbeat.hpp"
#include "worker/log.hpp"
#include "worker/reconnect_backoff.hpp"
#include "worker/unique_fd.hpp"

namespace claw::worker {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kStopCheck{100};
// Messages read from the socket per pass, so a flood cannot starve handler results.
constexpr int kMaxReceiveBatch = 1000;
// Messages waiting for the socket to become writable; PROGRESS beyond it is dropped.
constexpr std::size_t kMaxOutbox = 100000;
// How long a closing socket may try to deliver DISCONNECT.
constexpr int kCloseLingerMs = 1000;
constexpr std::string_view kShuttingDown = "worker shutting down";
// Larger than any message a broker sends (payload limit plus envelope).
constexpr std::int64_t kMaxMessageBytes = 64 << 20;

// What a handler thread hands to the loop.
struct Event {
  std::uint64_t token = 0;
  std::variant<wire::ProgressReport, Outcome> what;
};

// Handler threads -> loop. Post never blocks on the loop; the eventfd wakes the loop's poll.
class Mailbox {
 public:
  Mailbox() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }

  void Post(Event event) {
    bool was_empty = false;
    {
      std::lock_guard lock(mutex_);
      was_empty = events_.empty();
      events_.push_back(std::move(event));
    }
    if (was_empty) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto written = ::write(fd_.get(), &one, sizeof one);
    }
  }

  // Clears the wake-up before taking the events, so a Post racing with Take is either taken now
  // or wakes the next poll.
  std::deque<Event> Take() {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto got = ::read(fd_.get(), &count, sizeof count);
    std::deque<Event> taken;
    std::lock_guard lock(mutex_);
    taken.swap(events_);
    return taken;
  }

 private:
  UniqueFd fd_;
  std::mutex mutex_;
  std::deque<Event> events_;
};

struct ActiveJob {
  std::string id;
  std::string type;
  std::uint64_t lease = 0;
  std::uint32_t attempt = 0;
  std::uint64_t connection = 0;
  std::shared_ptr<JobContext> context;
  bool cancel_requested = false;
  Clock::time_point started;
};

std::string Elapsed(Clock::time_point since) {
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
  return std::to_string(ms) + "ms";
}

}  // namespace

class Worker::Loop {
 public:
  Loop(const WorkerOptions& options, std::vector<std::string> endpoints,
       std::shared_ptr<const Handler> handler)
      : options_(options),
        endpoints_(std::move(endpoints)),
        handler_(std::move(handler)),
        mailbox_(std::make_shared<Mailbox>()),
        pool_(options.run_inline ? 0 : options.capacity),
        timer_(milliseconds(wire::defaults::kHeartbeatMs), wire::defaults::kLiveness, Clock::now()),
        random_(std::random_device{}()) {}

  Status Run(const std::atomic<bool>& stop) {
    if (!mailbox_->valid()) return Fail("cannot create an eventfd");
    Connect(Clock::now());
    Status status;
    while (!stop.load(std::memory_order_relaxed)) {
      status = Step();
      if (!status) break;
    }
    Shutdown();
    return status;
  }

 private:
  enum class Phase { kDisconnected, kSendingReady, kAwaitingWelcome, kWelcomed };

  bool Connected() const { return phase_ == Phase::kAwaitingWelcome || phase_ == Phase::kWelcomed; }
  const std::string& Endpoint() const { return endpoints_[endpoint_index_ % endpoints_.size()]; }

  // One pass: wait for the socket, the mailbox or the next deadline, then handle all of them.
  //
  // The socket's file descriptor is ZeroMQ's edge-triggered notification: it becomes readable when
  // the socket gets news after an operation on it found nothing to read. So the loop sleeps only
  // when the socket is armed (its last operation was a receive that found nothing); otherwise it
  // looks at once. Each pass ends with that receive, so a job's round trip costs one sleep, where
  // zmq_poll would spend four polls on it.
  Status Step() {
    auto now = Clock::now();
    if (phase_ == Phase::kDisconnected && now >= reconnect_at_) Connect(now);

    std::array<pollfd, 2> fds = {pollfd{mailbox_->fd(), POLLIN, 0}, pollfd{socket_fd_, POLLIN, 0}};
    const nfds_t count = socket_ ? 2 : 1;
    const bool armed = !socket_ || socket_armed_;
    const int wait = armed ? static_cast<int>(PollTimeout(now).count()) : 0;
    if (::poll(fds.data(), count, wait) < 0) {
      if (errno != EINTR) return Fail(std::string("poll failed: ") + std::strerror(errno));
      return {};
    }

    if (fds[0].revents & POLLIN) HandleEvents();
    if (socket_ && phase_ == Phase::kSendingReady) SendReady(Clock::now());
    if (socket_) FlushOutbox();
    if (socket_) ReceiveAll();
    CheckTimers(Clock::now());
    return {};
  }

  milliseconds PollTimeout(Clock::time_point now) const {
    Clock::time_point deadline = now + kStopCheck;
    if (phase_ == Phase::kDisconnected) {
      deadline = std::min(deadline, reconnect_at_);
    } else {
      deadline = std::min(deadline, timer_.NextDeadline());
    }
    // Round up so the loop does not wake a fraction of a millisecond early and spin.
    const auto wait = std::chrono::ceil<milliseconds>(deadline - now);
    return std::max(wait, milliseconds(0));
  }

  // ---- connection ----

  void Connect(Clock::time_point now) {
    // A dns:// broker is looked up again each time, so brokers added behind the name are found.
    std::vector<std::string> unresolved;
    auto endpoints = wire::ResolveEndpoints(options_.brokers, &unresolved);
    const char* then = endpoints            ? "going on with the other brokers"
                       : endpoints_.empty() ? "will try again"
                                            : "trying the addresses found before";
    for (const auto& failure : unresolved) {
      Logger()->warn("worker {}: {}; {}", options_.id, failure, then);
    }
    if (endpoints && *endpoints != endpoints_) {
      Logger()->info("worker {}: brokers now {}", options_.id, fmt::join(*endpoints, ","));
      endpoints_ = std::move(*endpoints);
    }
    if (endpoints_.empty()) {
      ScheduleReconnect(now);
      return;
    }
    auto socket = wire::ConnectDealer(context_, Endpoint(), kMaxMessageBytes);
    if (!socket) {
      Logger()->error("worker {}: {}", options_.id, socket.error().message);
      ScheduleReconnect(now);
      return;
    }
    socket_ = std::move(*socket);
    socket_fd_ = socket_->get(zmq::sockopt::fd);
    socket_armed_ = false;
    phase_ = Phase::kSendingReady;
    timer_ =
        HeartbeatTimer(milliseconds(wire::defaults::kHeartbeatMs), wire::defaults::kLiveness, now);
    Logger()->debug("worker {}: connecting to {}", options_.id, Endpoint());
    SendReady(now);
  }

  void SendReady(Clock::time_point now) {
    const wire::Ready ready{.worker_id = options_.id,
                            .types = options_.types,
                            .capacity = options_.capacity,
                            .labels = options_.labels,
                            .prefetch = options_.prefetch};
    if (!Put(wire::WorkerMessage(ready))) return;
    phase_ = Phase::kAwaitingWelcome;
    timer_.Sent(now);
  }

  // Forgets the socket and everything tied to it, and schedules the next attempt.
  void LoseConnection(Clock::time_point now, const std::string& reason) {
    Logger()->warn("worker {}: lost broker {}: {}", options_.id, Endpoint(), reason);
    socket_.reset();
    outbox_.clear();
    if (!held_.empty()) {
      Logger()->warn("worker {}: dropped {} job(s) that had not started", options_.id,
                     held_.size());
      held_.clear();
    }
    for (auto& [token, job] : jobs_) {
      if (job.connection != connection_) continue;
      Logger()->warn("job {} type={} attempt={} worker={}: cancelled, its connection was lost",
                     job.id, job.type, job.attempt, options_.id);
      job.context->RequestCancel();
    }
    ++connection_;
    ++endpoint_index_;
    ScheduleReconnect(now);
  }

  void ScheduleReconnect(Clock::time_point now) {
    phase_ = Phase::kDisconnected;
    const auto delay = backoff_.Next(std::uniform_real_distribution<double>(0.0, 1.0)(random_));
    reconnect_at_ = now + delay;
    Logger()->info(
        "worker {}: reconnecting to {} in {}ms", options_.id,
        endpoints_.empty() ? fmt::format("{}", fmt::join(options_.brokers, ",")) : Endpoint(),
        delay.count());
  }

  void CheckTimers(Clock::time_point now) {
    if (phase_ == Phase::kDisconnected) return;
    if (timer_.PeerDead(now)) {
      const auto silence = timer_.interval() * timer_.liveness();
      LoseConnection(now, "no message for " + wire::FormatDuration(silence.count()));
      return;
    }
    if (timer_.HeartbeatDue(now)) {
      // Counted as sent even when nothing could go out (READY still waiting, or a full pipe), so
      // the loop does not spin on a deadline in the past.
      if (Connected() && outbox_.empty()) {
        Put(wire::WorkerMessage(wire::Heartbeat{}));
      }
      timer_.Sent(now);
    }
  }

  // Every send goes through here. Any operation on the socket may take in its news, after which
  // its descriptor no longer tells of them, so a send disarms the socket (see Step).
  bool Put(const wire::WorkerMessage& message) {
    socket_armed_ = false;
    return wire::Send(*socket_, wire::Encode(message));
  }

  // Sends in order: once something had to wait, everything after it waits too.
  void SendMessage(wire::WorkerMessage message) {
    if (outbox_.empty() && Put(message)) {
      timer_.Sent(Clock::now());
      return;
    }
    if (outbox_.size() >= kMaxOutbox && std::holds_alternative<wire::ProgressReport>(message)) {
      return;
    }
    outbox_.push_back(std::move(message));
  }

  void FlushOutbox() {
    while (!outbox_.empty() && Put(outbox_.front())) {
      outbox_.pop_front();
      timer_.Sent(Clock::now());
    }
  }

  // ---- broker -> worker ----

  // Reads until the socket has nothing more (which arms it) or kMaxReceiveBatch messages.
  void ReceiveAll() {
    for (int i = 0; i < kMaxReceiveBatch && socket_; ++i) {
      auto frames = wire::Receive(*socket_, milliseconds(0));
      if (!frames) {
        socket_armed_ = true;
        break;
      }
      const auto now = Clock::now();
      timer_.Received(now);
      auto message = wire::DecodeWorkerMessage(wire::Views(*frames));
      if (!message) {
        Logger()->warn("worker {}: dropped a bad message from the broker: {}", options_.id,
                       message.error().message);
        continue;
      }
      Handle(std::move(*message), now);
    }
  }

  void Handle(wire::WorkerMessage message, Clock::time_point now) {
    if (auto* welcome = std::get_if<wire::Welcome>(&message)) {
      timer_.Configure(milliseconds(welcome->heartbeat_ms), welcome->liveness);
      checkpoint_interval_ms_ = welcome->checkpoint_interval_ms.value_or(0);
      phase_ = Phase::kWelcomed;
      backoff_.Reset();
      Logger()->info("worker {}: welcomed by {} (epoch {}, heartbeat {}ms, liveness {})",
                     options_.id, Endpoint(), welcome->epoch, timer_.interval().count(),
                     timer_.liveness());
    } else if (auto* job = std::get_if<wire::JobDispatch>(&message)) {
      StartJob(std::move(*job));
    } else if (auto* cancel = std::get_if<wire::CancelJob>(&message)) {
      CancelJob(*cancel);
    } else if (auto* recall = std::get_if<wire::Recall>(&message)) {
      if (!GiveBack(recall->id, recall->lease)) {
        Logger()->debug("worker {}: RECALL for job {} that has started or ended", options_.id,
                        recall->id);
      }
    } else if (auto* disconnect = std::get_if<wire::Disconnect>(&message)) {
      LoseConnection(now, "broker said DISCONNECT: " + disconnect->reason);
    } else if (auto* heartbeat = std::get_if<wire::Heartbeat>(&message)) {
      // A health check is answered at once: the broker times the round trip.
      if (heartbeat->check) SendMessage(wire::Heartbeat{.check = heartbeat->check});
    } else {
      Logger()->warn("worker {}: ignored {} from the broker", options_.id,
                     wire::Name(wire::CommandOf(message)));
    }
  }

  void StartJob(wire::JobDispatch job) {
    if (jobs_.size() >= options_.capacity && held_.size() < options_.prefetch) {
      Logger()->debug("job {} type={} attempt={} worker={}: waiting for a free slot", job.id,
                      job.type, job.attempt, options_.id);
      held_.push_back(std::move(job));
      return;
    }
    if (jobs_.size() >= options_.capacity) {
      Logger()->warn("job {} type={} attempt={} worker={}: refused, over capacity {}", job.id,
                     job.type, job.attempt, options_.id, options_.capacity);
      SendMessage(wire::Failed{.id = job.id, .lease = job.lease, .error = "worker over capacity"});
      return;
    }
    const std::uint64_t token = ++next_token_;
    ActiveJob active{.id = job.id,
                     .type = job.type,
                     .lease = job.lease,
                     .attempt = job.attempt,
                     .connection = connection_,
                     .started = Clock::now()};
    Logger()->info("job {} type={} attempt={} worker={}: started", active.id, active.type,
                   active.attempt, options_.id);
    if (options_.prefetch > 0) SendMessage(wire::Started{.id = active.id, .lease = active.lease});
    auto mailbox = mailbox_;
    // An inline handler runs on this thread, so its reports go out directly, ahead of its outcome.
    ProgressSink sink =
        options_.run_inline
            ? ProgressSink([this](wire::ProgressReport report) { SendMessage(std::move(report)); })
            : ProgressSink([mailbox, token](wire::ProgressReport report) {
                mailbox->Post({token, std::move(report)});
              });
    active.context =
        std::make_shared<JobContext>(std::move(job), std::move(sink), checkpoint_interval_ms_);
    if (options_.run_inline) {
      Finish(active, RunHandler(*handler_, *active.context), /*current=*/true);
      return;
    }
    pool_.Submit([handler = handler_, context = active.context, mailbox, token] {
      mailbox->Post({token, RunHandler(*handler, *context)});
    });
    jobs_.emplace(token, std::move(active));
  }

  // Drops a job that is waiting to start and tells the broker so; false if none is.
  bool GiveBack(const std::string& id, std::uint64_t lease) {
    auto it = std::ranges::find_if(
        held_, [&](const wire::JobDispatch& job) { return job.id == id && job.lease == lease; });
    if (it == held_.end()) return false;
    Logger()->info("job {} type={} attempt={} worker={}: given back before it started", id,
                   it->type, it->attempt, options_.id);
    held_.erase(it);
    SendMessage(wire::Returned{.id = id, .lease = lease});
    return true;
  }

  // Starts waiting jobs while threads are free.
  void StartHeld() {
    while (jobs_.size() < options_.capacity && !held_.empty()) {
      wire::JobDispatch next = std::move(held_.front());
      held_.pop_front();
      StartJob(std::move(next));
    }
  }

  void CancelJob(const wire::CancelJob& cancel) {
    if (GiveBack(cancel.id, cancel.lease)) return;
    for (auto& [token, job] : jobs_) {
      if (job.id != cancel.id || job.lease != cancel.lease || job.connection != connection_) {
        continue;
      }
      if (!job.cancel_requested) {
        Logger()->info("job {} type={} attempt={} worker={}: cancel requested{}{}", job.id,
                       job.type, job.attempt, options_.id, cancel.reason.empty() ? "" : ": ",
                       cancel.reason);
        job.cancel_requested = true;
        job.context->RequestCancel();
      }
      return;
    }
    Logger()->debug("worker {}: CANCEL for job {} lease {} that is not running here", options_.id,
                    cancel.id, cancel.lease);
  }

  // ---- handlers -> worker ----

  void HandleEvents() {
    for (auto& event : mailbox_->Take()) {
      auto found = jobs_.find(event.token);
      if (found == jobs_.end()) continue;
      ActiveJob& job = found->second;
      const bool current = job.connection == connection_ && Connected();
      if (auto* report = std::get_if<wire::ProgressReport>(&event.what)) {
        if (current) SendMessage(std::move(*report));
        continue;
      }
      Finish(job, std::get<Outcome>(std::move(event.what)), current);
      jobs_.erase(found);
    }
    StartHeld();
  }

  void Finish(const ActiveJob& job, Outcome outcome, bool current) {
    const auto log = Logger();
    if (!current) {
      log->info(
          "job {} type={} attempt={} worker={}: ended after {}; its connection is gone, outcome "
          "not reported",
          job.id, job.type, job.attempt, options_.id, Elapsed(job.started));
      return;
    }
    if (job.cancel_requested) {
      log->info("job {} type={} attempt={} worker={}: cancelled after {}", job.id, job.type,
                job.attempt, options_.id, Elapsed(job.started));
      SendMessage(wire::Failed{.id = job.id, .lease = job.lease, .error = "cancelled"});
    } else if (outcome.succeeded) {
      log->info("job {} type={} attempt={} worker={}: succeeded in {} ({} bytes)", job.id, job.type,
                job.attempt, options_.id, Elapsed(job.started), outcome.result.size());
      SendMessage(
          wire::Done{.id = job.id, .lease = job.lease, .result = std::move(outcome.result)});
    } else {
      log->info("job {} type={} attempt={} worker={}: failed{} after {}: {}", job.id, job.type,
                job.attempt, options_.id, outcome.permanent ? " permanently" : "",
                Elapsed(job.started), outcome.error);
      SendMessage(wire::Failed{.id = job.id,
                               .lease = job.lease,
                               .error = std::move(outcome.error),
                               .permanent = outcome.permanent});
    }
  }

  // ---- shutdown ----

  void Shutdown() {
    const auto log = Logger();
    if (!jobs_.empty()) {
      log->info("worker {}: stopping {} running job(s)", options_.id, jobs_.size());
    }
    // The session ends at once: running jobs are failed (retryable, so they run elsewhere) before
    // DISCONNECT, as the protocol asks, rather than after their handlers have wound down.
    for (auto& [token, job] : jobs_) {
      job.context->RequestCancel();
      if (job.connection != connection_ || !Connected()) continue;
      log->info("job {} type={} attempt={} worker={}: failed, worker shutting down", job.id,
                job.type, job.attempt, options_.id);
      SendMessage(
          wire::Failed{.id = job.id, .lease = job.lease, .error = std::string(kShuttingDown)});
    }
    // Jobs that have not started go back to the queue at once, their attempt not counted.
    while (!held_.empty() && Connected()) GiveBack(held_.front().id, held_.front().lease);
    held_.clear();
    if (socket_ && Connected()) SendMessage(wire::Disconnect{std::string(kShuttingDown)});
    // Nothing more goes to the broker: outcomes that arrive from here on are dropped.
    ++connection_;

    const auto deadline = Clock::now() + options_.shutdown_grace;
    while (!jobs_.empty() && Clock::now() < deadline) {
      const auto wait = std::chrono::ceil<milliseconds>(deadline - Clock::now());
      zmq::pollitem_t item{nullptr, mailbox_->fd(), ZMQ_POLLIN, 0};
      try {
        zmq::poll(&item, 1, std::max(wait, milliseconds(0)));
      } catch (const zmq::error_t&) {
        // Interrupted by a signal: the deadline still bounds the wait.
      }
      HandleEvents();
    }
    // Idle threads exit at once; only handlers still running after the grace are detached.
    const std::size_t detached =
        pool_.Stop(jobs_.empty() ? HandlerPool::kDestructorGrace : milliseconds(0));
    if (!jobs_.empty() || detached > 0) {
      log->warn("worker {}: {} handler(s) did not stop within {}ms; leaving them", options_.id,
                std::max(jobs_.size(), detached), options_.shutdown_grace.count());
    }
    if (socket_) {
      try {
        socket_->set(zmq::sockopt::linger, kCloseLingerMs);
      } catch (const zmq::error_t&) {
        // The socket closes without lingering; DISCONNECT may be lost, the broker's liveness
        // check covers it.
      }
      socket_.reset();
    }
    log->info("worker {}: stopped", options_.id);
  }

  const WorkerOptions& options_;
  std::vector<std::string> endpoints_;  // options_.brokers with dns:// names resolved
  const std::shared_ptr<const Handler> handler_;
  const std::shared_ptr<Mailbox> mailbox_;
  HandlerPool pool_;
  zmq::context_t context_{1};
  std::optional<zmq::socket_t> socket_;
  int socket_fd_ = -1;
  bool socket_armed_ = false;  // see Step
  Phase phase_ = Phase::kDisconnected;
  std::uint64_t connection_ = 1;
  std::size_t endpoint_index_ = 0;
  Clock::time_point reconnect_at_;
  HeartbeatTimer timer_;
  std::uint64_t checkpoint_interval_ms_ = 0;  // the broker's hint, from WELCOME
  ReconnectBackoff backoff_;
  std::mt19937_64 random_;
  std::deque<wire::WorkerMessage> outbox_;
  std::unordered_map<std::uint64_t, ActiveJob> jobs_;
  // Jobs waiting for a free thread (prefetch), in arrival order; all of the current connection
  // (a lost connection drops them).
  std::deque<wire::JobDispatch> held_;
  std::uint64_t next_token_ = 0;
};

Worker::Worker(WorkerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::make_shared<const Handler>(std::move(handler))) {}

Worker::~Worker() = default;

Status Worker::Run(const std::atomic<bool>& stop) {
  if (options_.brokers.empty()) return Fail("no broker endpoint given");
  if (options_.types.empty()) return Fail("no job type given");
  if (options_.capacity < 1 || options_.capacity > wire::limits::kMaxCapacity) {
    return Fail("capacity must be 1-" + std::to_string(wire::limits::kMaxCapacity) + ", got " +
                std::to_string(options_.capacity));
  }
  if (options_.run_inline && options_.prefetch > 0) {
    return Fail("run_inline takes no prefetch: an inline handler starts each job as it arrives");
  }
  if (options_.prefetch > wire::limits::kMaxCapacity) {
    return Fail("prefetch must be 0-" + std::to_string(wire::limits::kMaxCapacity) + ", got " +
                std::to_string(options_.prefetch));
  }
  const std::string what = "worker id '" + options_.id + "'";
  if (Status id = wire::CheckName(what, options_.id, wire::limits::kMaxWorkerIdBytes); !id) {
    return id;
  }
  for (const auto& broker : options_.brokers) {
    if (Status checked = wire::CheckEndpoint(broker); !checked) return checked;
  }
  // A name that does not resolve yet (its DNS record is still to come) is left to the loop, which
  // looks the names up again at each attempt to connect.
  std::vector<std::string> endpoints =
      wire::ResolveEndpoints(options_.brokers).value_or(std::vector<std::string>{});
  {
    // A typo is caught here, not at failover.
    zmq::context_t probe(1);
    for (const auto& endpoint : endpoints) {
      auto socket = wire::ConnectDealer(probe, endpoint, kMaxMessageBytes);
      if (!socket) return Fail(socket.error().message);
    }
  }
  Loop loop(options_, std::move(endpoints), handler_);
  return loop.Run(stop);
}

}  // namespace claw::worker
