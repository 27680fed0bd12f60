#include "broker/server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

#include "broker/sqlite_store.hpp"

namespace claw::broker {
namespace {

// Messages taken from a socket before the loop commits and sends; bounds the time between two
// looks at the writer and the clock.
constexpr int kMaxMessagesPerTurn = 4096;
// Within a turn, how many messages the loop handles between looks at the store writer, so that
// a finished commit is followed by the next one (and its replies go out) without waiting for the
// rest of the turn.
constexpr int kWriterCheckInterval = 64;
// The longest the loop sleeps with nothing due, so that it notices a stop request.
constexpr std::int64_t kMaxSleepMs = 200;

std::optional<BStarEvent> PeerEvent(std::string_view state) {
  if (state == Name(BStarState::kPrimary)) return BStarEvent::kPeerPrimary;
  if (state == Name(BStarState::kBackup)) return BStarEvent::kPeerBackup;
  if (state == Name(BStarState::kActive)) return BStarEvent::kPeerActive;
  if (state == Name(BStarState::kPassive)) return BStarEvent::kPeerPassive;
  return std::nullopt;
}

}  // namespace

Now ClockNow() {
  using namespace std::chrono;
  return Now{duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count(),
             duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()};
}

Result<std::unique_ptr<Server>> Server::Start(const BrokerConfig& config) {
  auto server = std::make_unique<Server>(PrivateTag{});
  server->config_ = config;
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return Fail("cannot create data directory " + config.data_dir + ": " + ec.message());
  const std::string lock_path = config.data_dir + "/LOCK";
  server->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (server->lock_fd_ < 0 || ::flock(server->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Fail("data directory " + config.data_dir + " is in use by another broker (cannot lock " +
                lock_path + ")");
  }
  const std::string db_path = config.data_dir + "/claw.db";
  const SqliteOptions options = SqliteOptions::ForDurability(config.durability);
  auto writer_store = SqliteJobStore::Open(db_path, options);
  if (!writer_store) return std::unexpected(writer_store.error());
  auto reader = SqliteJobStore::Open(db_path, options);
  if (!reader) return std::unexpected(reader.error());
  server->reader_ = std::move(*reader);
  auto epoch = server->reader_->Epoch();
  if (!epoch) return std::unexpected(epoch.error());
  server->epoch_ = *epoch;

  std::unique_ptr<Replicator> replicator;
  const auto& pair = config.pair;
  if (pair.enabled) {
    replicator = std::make_unique<Replicator>(
        server->context_, pair.peer, pair.sync, std::chrono::milliseconds(pair.ack_timeout_ms),
        static_cast<std::uint32_t>(wire::defaults::kSnapshotChunkJobs));
  }
  server->writer_ = std::make_unique<StoreWriter>(server->context_, std::move(*writer_store),
                                                  std::move(replicator));
  // Limits: a body may hold a payload at the limit plus its fields; ZeroMQ drops a peer that
  // sends a larger message, and the codec refuses a larger body with TOO_LARGE.
  server->limits_.max_body_bytes = config.core.max_payload_bytes + 64 * 1024;
  server->peer_limits_.max_body_bytes = std::size_t{1} << 30;
  server->peer_limits_.max_array = 10'000'000;
  auto router = wire::BindRouter(server->context_, config.bind,
                                 static_cast<std::int64_t>(server->limits_.max_body_bytes) * 2);
  if (!router) return std::unexpected(router.error());
  server->router_ = std::move(*router);

  if (pair.enabled) {
    auto peer_router = wire::BindRouter(server->context_, pair.peer_bind, -1);
    if (!peer_router) return std::unexpected(peer_router.error());
    server->peer_router_ = std::move(*peer_router);
    auto peer_dealer = wire::ConnectDealer(server->context_, pair.peer, -1);
    if (!peer_dealer) return std::unexpected(peer_dealer.error());
    server->peer_dealer_ = std::move(*peer_dealer);
    server->state_ = pair.primary ? BStarState::kPrimary : BStarState::kBackup;
    // As if the peer had just been heard: nobody takes over before two heartbeats have passed
    // without a word from the peer (a restarted broker must first learn who is active).
    server->peer_heard_ms_ = ClockNow().mono_ms;
    spdlog::info("listening on {} as the {} of a pair (peer {}, replication {}), data in {}",
                 server->endpoint(), pair.primary ? "primary" : "backup", pair.peer,
                 pair.sync ? "sync" : "async", config.data_dir);
  } else {
    if (auto s = server->BecomeActive(ClockNow()); !s) return std::unexpected(s.error());
    spdlog::info("listening on {}, data in {} (durability {}, epoch {})", server->endpoint(),
                 config.data_dir, config.durability, server->epoch_);
  }
  return server;
}

Server::~Server() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string Server::endpoint() { return wire::BoundEndpoint(router_); }

Status Server::BecomeActive(Now now) {
  // Whatever the store writer holds from the old active must be on disk before Recover reads.
  DrainWriter(now);
  if (state_ == BStarState::kPassive && !have_copy_) {
    return Fail("this standby's copy became incomplete while it was being completed");
  }
  auto epoch = reader_->NextEpoch();
  if (!epoch) return std::unexpected(epoch.error());
  epoch_ = *epoch;
  CoreConfig core_config = config_.core;
  core_config.role = config_.pair.enabled ? "active" : "standalone";
  core_ = std::make_unique<Core>(core_config, *reader_, epoch_, std::random_device{}());
  core_->set_pair_info([this](Now at) { return PairInfo(at); });
  if (auto s = core_->Recover(now); !s) {
    core_.reset();
    have_copy_ = false;
    return s;
  }
  state_ = BStarState::kActive;
  if (config_.pair.enabled) {
    tasks_.push_back({WriterTask{.kind = WriterTask::Kind::kActivate, .epoch = epoch_}});
    spdlog::info("active with epoch {}", epoch_);
  }
  return {};
}

Status Server::Run(const std::atomic<bool>& stop) {
  // The sockets' file descriptors are edge triggered: one becomes readable when the socket gets
  // news after an operation that found nothing to read. So the loop polls them with a timeout only
  // when every socket is armed (its last receive found nothing and nothing was sent on it since);
  // otherwise it looks again at once, which also handles a burst in fewer sleeps.
  std::vector<pollfd> fds = {{router_.get(zmq::sockopt::fd), POLLIN, 0},
                             {writer_->socket().get(zmq::sockopt::fd), POLLIN, 0}};
  if (config_.pair.enabled) fds.push_back({peer_router_.get(zmq::sockopt::fd), POLLIN, 0});
  while (!stop.load()) {
    Now now = ClockNow();
    const bool armed = router_armed_ && writer_armed_ && (!config_.pair.enabled || peer_armed_);
    std::int64_t wait = 0;
    if (armed) {
      wait = kMaxSleepMs;
      if (core_) {
        const std::int64_t due = core_->MillisUntilDue(now);
        if (due >= 0) wait = std::min(wait, due);
      }
      if (config_.pair.enabled)
        wait = std::min(wait, std::max<std::int64_t>(0, next_state_ms_ - now.mono_ms));
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0) {
      if (errno != EINTR) return Fail(std::string("poll failed: ") + std::strerror(errno));
      continue;
    }
    if (wait > 0) now = ClockNow();
    if (!writer_armed_ || fds[1].revents != 0) ServiceWriter(now);
    if (config_.pair.enabled) {
      int taken = 0;
      for (; taken < kMaxMessagesPerTurn; ++taken) {
        auto in = wire::ReceiveInbound(peer_router_, peer_limits_);
        if (!in) break;
        if (!in->message || !std::holds_alternative<wire::PeerMessage>(*in->message)) continue;
        HandlePeer(in->from, std::move(std::get<wire::PeerMessage>(*in->message)), now);
      }
      peer_armed_ = taken < kMaxMessagesPerTurn;
      if (fatal_) return std::unexpected(*fatal_);
      PairTick(now);
    }
    if (!router_armed_ || fds[0].revents != 0) {
      int taken = 0;
      for (; taken < kMaxMessagesPerTurn; ++taken) {
        auto in = wire::ReceiveInbound(router_, limits_);
        if (!in) break;
        HandleInbound(std::move(*in), now);
        // What the message produced (a worker's next JOB above all) goes out now, not after a
        // turn of thousands of SUBMITs.
        if (core_ && !core_->outbox().empty()) Flush(now);
        if (taken % kWriterCheckInterval == kWriterCheckInterval - 1) ServiceWriter(now);
      }
      router_armed_ = taken < kMaxMessagesPerTurn;
    }
    if (core_) core_->OnTick(now);
    FeedWriter(now);
    Flush(now);
  }
  // Commit what is pending before leaving, so a clean stop keeps every change.
  spdlog::info("stopping: committing pending changes");
  DrainWriter(ClockNow());
  // Bounded: a store that fails every commit (a full disk) must not keep the broker from stopping.
  constexpr int kMaxShutdownCommits = 16;
  for (int i = 0; core_ && i < kMaxShutdownCommits; ++i) {
    auto batch = core_->TakeAll();
    Flush(ClockNow());
    if (!batch) break;
    tasks_.push_back({WriterTask{.kind = WriterTask::Kind::kApply, .batch = std::move(*batch)},
                      /*from_core=*/true});
    DrainWriter(ClockNow());
  }
  return {};
}

void Server::HandleInbound(wire::BrokerInbound in, Now now) {
  if (!in.message) {
    if (core_) {
      core_->OnMalformed(in.from, in.message.error(), now);
    } else if (in.message.error().answerable &&
               in.message.error().dialog == wire::Dialog::kClient) {
      wire::ClientReply reply{
          .command = static_cast<wire::ClientCommand>(in.message.error().command),
          .rid = in.message.error().rid,
          .status = in.message.error().status};
      reply.message = in.message.error().message;
      Send(in.from, wire::Encode(reply));
    }
    return;
  }
  if (std::holds_alternative<wire::PeerMessage>(*in.message)) {
    if (core_) {
      wire::DecodeError error;
      error.dialog = wire::Dialog::kPeer;
      error.message = "a peer message on the client endpoint";
      core_->OnMalformed(in.from, error, now);
    }
    return;
  }
  if (state_ == BStarState::kActive) {
    core_->OnInbound(in.from, std::move(*in.message), now);
  } else {
    HandleWhileNotActive(in.from, std::move(*in.message), now);
  }
}

void Server::HandleWhileNotActive(const wire::Envelope& from, wire::Inbound message, Now now) {
  const std::string refusal =
      "this broker is " + std::string(Name(state_)) + "; its peer serves (or is starting to)";
  bool vote = false;
  if (auto* request = std::get_if<wire::ClientRequest>(&message)) {
    if (auto* ping = std::get_if<wire::PingRequest>(request)) {
      wire::ClientReply reply{.command = wire::ClientCommand::kPing, .rid = ping->rid};
      reply.role = std::string(Name(state_));
      reply.epoch = epoch_;
      return Send(from, wire::Encode(reply));
    }
    vote = true;
  } else if (auto* worker = std::get_if<wire::WorkerMessage>(&message)) {
    vote = std::holds_alternative<wire::Ready>(*worker);
  }
  if (vote) {
    BStarFacts facts;
    facts.peer_expired = now.mono_ms - peer_heard_ms_ >=
                         static_cast<std::int64_t>(config_.failover.failover_time_ms);
    facts.primary = config_.pair.primary;
    facts.have_copy = have_copy_;
    const BStarStep step = BStarTransition(state_, BStarEvent::kClientRequest, facts);
    if (step.action == BStarAction::kServe) {
      spdlog::warn("{} ({} -> {})", step.why, Name(state_), Name(step.next));
      if (auto s = BecomeActive(now); !s) {
        spdlog::error("cannot become active: {}", s.error().message);
      } else {
        core_->OnInbound(from, std::move(message), now);
        return;
      }
    }
  }
  if (auto* request = std::get_if<wire::ClientRequest>(&message)) {
    wire::ClientReply reply{.command = wire::CommandOf(*request),
                            .rid = wire::RidOf(*request),
                            .status = wire::StatusCode::kNotActive};
    reply.message = refusal;
    Send(from, wire::Encode(reply));
  } else {
    Send(from, wire::Encode(wire::WorkerMessage{wire::Disconnect{refusal}}));
  }
}

// ---- the pair ----

std::uint64_t Server::DataEpoch() const {
  // A passive's data is a valid copy of the active's only when complete.
  return state_ == BStarState::kPassive && !have_copy_ ? 0 : epoch_;
}

void Server::SendPeer(const wire::PeerMessage& message) {
  wire::Send(peer_dealer_, wire::Encode(message));
}

void Server::PairTick(Now now) {
  if (now.mono_ms < next_state_ms_) return;
  next_state_ms_ = now.mono_ms + static_cast<std::int64_t>(config_.pair.heartbeat_ms);
  const std::uint64_t position =
      state_ == BStarState::kActive ? replica_.position : applied_position_;
  SendPeer(wire::PeerState{std::string(Name(state_)), DataEpoch(), position, config_.pair.primary});
  // A snapshot whose last chunk never came (the active gave up on it) is dropped, and asked for
  // again.
  const auto patience =
      static_cast<std::int64_t>(config_.pair.ack_timeout_ms + 2 * config_.pair.heartbeat_ms);
  if (snapshot_open_ && now.mono_ms - snapshot_chunk_ms_ > patience) {
    spdlog::warn("replication: the snapshot stopped coming; asking again");
    snapshot_open_ = false;
    snapshot_.clear();
  }
  const auto is_replace = [](const Task& t) {
    return t.task.kind == WriterTask::Kind::kReplaceAll;
  };
  const bool snapshot_pending = snapshot_open_ || (in_flight_ && is_replace(*in_flight_)) ||
                                std::any_of(tasks_.begin(), tasks_.end(), is_replace);
  if (state_ == BStarState::kPassive && !have_copy_ && !snapshot_pending && peer_ &&
      peer_->state == Name(BStarState::kActive)) {
    SendPeer(wire::PeerHello{DataEpoch(), applied_position_});
  }
}

void Server::HandlePeer(const wire::Envelope& from, wire::PeerMessage message, Now now) {
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::PeerState>) {
          peer_ = m;
          peer_heard_ms_ = now.mono_ms;
          if (state_ == BStarState::kPassive && have_copy_) CheckCopy(now);
          if (auto event = PeerEvent(m.state)) {
            if (auto s = OnPeerEvent(*event, now); !s) fatal_ = s.error();
          }
        } else if constexpr (std::is_same_v<T, wire::PeerHello>) {
          if (state_ != BStarState::kActive) return;
          const bool queued = std::any_of(tasks_.begin(), tasks_.end(), [](const Task& t) {
            return t.task.kind == WriterTask::Kind::kSendSnapshot;
          });
          const bool running =
              in_flight_ && in_flight_->task.kind == WriterTask::Kind::kSendSnapshot;
          if (!queued && !running) {
            spdlog::info("standby asked for a snapshot");
            tasks_.push_back({WriterTask{.kind = WriterTask::Kind::kSendSnapshot}});
          }
        } else if constexpr (std::is_same_v<T, wire::PeerSnapshot>) {
          if (state_ != BStarState::kPassive) return;
          if (m.first) {
            snapshot_.clear();
            snapshot_open_ = true;
            have_copy_ = false;
          }
          if (!snapshot_open_) return;
          snapshot_chunk_ms_ = now.mono_ms;
          std::move(m.jobs.begin(), m.jobs.end(), std::back_inserter(snapshot_));
          if (!m.last) return;
          snapshot_open_ = false;
          spdlog::info("taking the active's snapshot: {} jobs at epoch {} position {}",
                       snapshot_.size(), m.epoch, m.position);
          Task task{WriterTask{.kind = WriterTask::Kind::kReplaceAll,
                               .jobs = std::move(snapshot_),
                               .epoch = m.epoch}};
          snapshot_.clear();
          task.ack_to = from;
          task.ack_position = m.position;
          expected_position_ = m.position;
          tasks_.push_back(std::move(task));
        } else if constexpr (std::is_same_v<T, wire::PeerBatch>) {
          if (state_ != BStarState::kPassive) return;
          const bool in_order = m.epoch == epoch_ && m.position == expected_position_ + 1;
          if (!have_copy_ || !in_order) {
            if (have_copy_) {
              spdlog::warn("replication: batch {} of epoch {} out of order; asking for a snapshot",
                           m.position, m.epoch);
            }
            have_copy_ = false;
            return;
          }
          expected_position_ = m.position;
          Task task{WriterTask{.kind = WriterTask::Kind::kApply,
                               .batch = WriteBatch{std::move(m.writes)}}};
          task.ack_to = from;
          task.ack_position = m.position;
          tasks_.push_back(std::move(task));
        }
      },
      message);
}

void Server::CheckCopy(Now now) {
  if (peer_->state != Name(BStarState::kActive)) return;
  if (peer_->epoch != epoch_) {
    spdlog::warn(
        "replication: the active serves epoch {}, this copy is of epoch {}; asking for "
        "a snapshot",
        peer_->epoch, epoch_);
    have_copy_ = false;
    return;
  }
  // In sync mode the active moves its position past a batch only once this standby acknowledged
  // it or the wait for that timed out: ahead of us means it has gone on without us.
  if (config_.pair.sync && peer_->position > applied_position_) {
    spdlog::warn(
        "replication: the active went on without this standby (at {}, the active at {}); "
        "asking for a snapshot",
        applied_position_, peer_->position);
    have_copy_ = false;
    return;
  }
  // Async: behind for longer than the active waits for an acknowledgement means the active has
  // stopped shipping to this standby, so only a snapshot can catch up.
  if (peer_->position <= applied_position_) {
    behind_.reset();
  } else if (!behind_ || applied_position_ >= behind_->first) {
    behind_ = {peer_->position, now.mono_ms};
  } else if (now.mono_ms - behind_->second >
             static_cast<std::int64_t>(config_.pair.ack_timeout_ms +
                                       2 * config_.pair.heartbeat_ms)) {
    spdlog::warn(
        "replication: this standby fell behind (at {}, the active at {}); asking for a "
        "snapshot",
        applied_position_, peer_->position);
    have_copy_ = false;
    behind_.reset();
  }
}

Status Server::OnPeerEvent(BStarEvent event, Now now) {
  BStarFacts facts;
  facts.peer_newer = peer_->epoch > DataEpoch();
  facts.peer_older = peer_->epoch < DataEpoch();
  facts.primary = config_.pair.primary;
  facts.have_copy = have_copy_;
  const BStarStep step = BStarTransition(state_, event, facts);
  if (step.action == BStarAction::kStop) {
    return Fail("stopping: " + std::string(step.why));
  }
  if (step.next == state_) return {};
  spdlog::warn("{} ({} -> {}, {})", step.why, Name(state_), Name(step.next), Name(event));
  if (step.next == BStarState::kActive) return BecomeActive(now);
  state_ = step.next;
  if (state_ == BStarState::kPassive) have_copy_ = false;
  return {};
}

std::optional<wire::PairInfo> Server::PairInfo(Now now) const {
  if (!config_.pair.enabled) return std::nullopt;
  wire::PairInfo info;
  info.state = std::string(Name(state_));
  info.peer_state = peer_ ? peer_->state : "unknown";
  info.peer = config_.pair.peer;
  if (peer_) {
    info.peer_epoch = peer_->epoch;
    info.peer_heard_ms = static_cast<std::uint64_t>(now.mono_ms - peer_heard_ms_);
  }
  info.replication = config_.pair.sync ? "sync" : "async";
  // Only the active answers CLUSTER: this is its view of the standby.
  info.replica_in_sync = replica_.in_sync;
  info.position = replica_.position;
  info.lag = replica_.position - std::min(replica_.acked, replica_.position);
  return info;
}

// ---- the store writer ----

void Server::ServiceWriter(Now now) {
  bool finished = false;
  while (auto result = writer_->TakeResult()) {
    OnWriterResult(std::move(*result), now);
    finished = true;
  }
  writer_armed_ = true;
  if (!finished) return;
  // The writer is idle: it starts on what built up meanwhile before the loop goes on.
  FeedWriter(now);
  Flush(now);
}

void Server::FeedWriter(Now now) {
  if (in_flight_) return;
  if (tasks_.empty() && core_) {
    if (auto batch = core_->TakeBatch(now)) {
      tasks_.push_back({WriterTask{.kind = WriterTask::Kind::kApply, .batch = std::move(*batch)},
                        /*from_core=*/true});
    }
  }
  if (tasks_.empty()) return;
  in_flight_ = std::move(tasks_.front());
  tasks_.pop_front();
  writer_->Submit(std::move(in_flight_->task));
  // A send may take in the socket's pending news without the descriptor saying so.
  writer_armed_ = false;
}

void Server::DrainWriter(Now now) {
  writer_armed_ = false;
  while (in_flight_ || !tasks_.empty()) {
    if (in_flight_) OnWriterResult(writer_->WaitResult(), now);
    if (!tasks_.empty()) {
      in_flight_ = std::move(tasks_.front());
      tasks_.pop_front();
      writer_->Submit(std::move(in_flight_->task));
    }
  }
}

void Server::OnWriterResult(WriterResult result, Now now) {
  Task task = std::move(*in_flight_);
  in_flight_.reset();
  replica_ = result.replica;
  if (task.from_core) {
    core_->OnBatchDone(result.status, now);
    return;
  }
  if (!task.ack_to) return;
  if (!result.status) {
    spdlog::error("replication: cannot apply the active's data: {}", result.status.error().message);
    have_copy_ = false;
    // Later batches must not be acknowledged either: an ACK covers every earlier position.
    std::erase_if(tasks_, [](const Task& t) { return t.ack_to.has_value(); });
    return;
  }
  if (result.kind == WriterTask::Kind::kReplaceAll) {
    have_copy_ = true;
    epoch_ = task.task.epoch;
    spdlog::info("standby in sync with the active (epoch {}, position {})", epoch_,
                 task.ack_position);
  }
  applied_position_ = task.ack_position;
  peer_armed_ = false;
  wire::SendTo(peer_router_, *task.ack_to,
               wire::Encode(wire::PeerMessage{wire::PeerAck{epoch_, task.ack_position}}));
}

// ---- sending ----

void Server::Send(const wire::Envelope& to, const wire::Frames& frames) {
  router_armed_ = false;
  wire::SendTo(router_, to, frames);
}

void Server::Flush(Now now) {
  if (!core_) return;
  // Sending may reveal a dead peer, and the Core's reaction may produce more to send; each
  // round sends what the previous one produced, and a dead peer is removed only once.
  for (int round = 0; round < 8 && !core_->outbox().empty(); ++round) {
    router_armed_ = false;
    sending_.swap(core_->outbox());
    for (const auto& message : sending_) {
      switch (wire::SendTo(router_, message.to, message.frames)) {
        case wire::SendOutcome::kSent:
          break;
        case wire::SendOutcome::kUnreachable:
          core_->OnUnreachable(message.to, now);
          break;
        case wire::SendOutcome::kWouldBlock:
          spdlog::warn("peer is not reading (send queue full); a message to it was dropped");
          break;
      }
    }
    sending_.clear();
  }
}

}  // namespace claw::broker
