#include "broker/core.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>

#include "schema/duration.hpp"

namespace claw::broker {
namespace {

using wire::JobState;
using wire::StatusCode;

constexpr int kLeaseCounterBits = 40;

std::size_t StateIndex(JobState s) { return static_cast<std::size_t>(s); }

bool IsPending(JobState s) {
  return s == JobState::kQueued || s == JobState::kScheduled || s == JobState::kRunning;
}

bool ValidName(std::string_view name, std::size_t max_bytes) {
  if (name.empty() || name.size() > max_bytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  });
}

// The row to write for an update: every column but the immutable ones (payload above all,
// which would otherwise be copied for every state change).
Job UpdateRow(const Job& job) {
  Job row;
  row.seq = job.seq;
  row.type = job.type;
  row.priority = job.priority;
  row.state = job.state;
  row.timeout_ms = job.timeout_ms;
  row.max_attempts = job.max_attempts;
  row.backoff_ms = job.backoff_ms;
  row.max_backoff_ms = job.max_backoff_ms;
  row.key = job.key;
  row.attempts = job.attempts;
  row.created_at = job.created_at;
  row.updated_at = job.updated_at;
  row.run_at = job.run_at;
  row.worker = job.worker;
  row.error = job.error;
  row.result = job.result;
  row.progress = job.progress;
  row.checkpoint = job.checkpoint;
  return row;
}

}  // namespace

Core::Core(CoreConfig config, JobStore& reader, std::uint64_t epoch, std::uint64_t seed)
    : config_(std::move(config)), reader_(reader), epoch_(epoch), rng_(seed) {}

Status Core::Recover(Now now) {
  auto max_seq = reader_.MaxSeq();
  if (!max_seq) return std::unexpected(max_seq.error());
  next_seq_ = *max_seq + 1;
  auto counts = reader_.CountByState();
  if (!counts) return std::unexpected(counts.error());
  for (const auto& [state, n] : *counts) counts_[StateIndex(state)] = n;
  auto keys = reader_.LoadKeys();
  if (!keys) return std::unexpected(keys.error());
  for (auto& [key, seq] : *keys) keys_.emplace(std::move(key), seq);
  auto unfinished = reader_.LoadUnfinished();
  if (!unfinished) return std::unexpected(unfinished.error());
  std::uint64_t requeued = 0;
  for (auto& loaded : *unfinished) {
    const Seq seq = loaded.seq;
    Job& job = jobs_.emplace(seq, std::move(loaded)).first->second;
    ++pending_by_type_[job.type];
    switch (job.state) {
      case JobState::kQueued:
        Enqueue(job);
        break;
      case JobState::kScheduled:
        scheduled_.push({job.run_at, seq, static_cast<std::uint64_t>(job.run_at)});
        break;
      case JobState::kRunning:
        // Its worker may still be running it, but that lease belongs to an earlier epoch and
        // will be refused; the attempt it used counts.
        ++requeued;
        if (Decide(job.attempts, job.max_attempts, false) == AfterFailure::kDead) {
          job.error = "lease lost when the broker stopped, and no attempts are left";
          SetState(job, JobState::kDead, now);
        } else {
          SetState(job, JobState::kQueued, now);
          Enqueue(job);
        }
        MarkDirty(job);
        break;
      default:
        assert(false && "LoadUnfinished returned a finished job");
    }
  }
  spdlog::info(
      "recovered {} unfinished jobs ({} were running and went back to the queue); "
      "epoch {}",
      unfinished->size(), requeued, epoch_);
  Dispatch(now);
  return {};
}

// ---- inbound ----

void Core::OnInbound(const wire::Envelope& from, wire::Inbound message, Now now) {
  if (auto* worker_message = std::get_if<wire::WorkerMessage>(&message)) {
    HandleWorker(from, std::move(*worker_message), now);
    Dispatch(now);
    return;
  }
  assert(std::holds_alternative<wire::ClientRequest>(message) && "the server keeps peer messages");
  auto& request = std::get<wire::ClientRequest>(message);
  std::visit(
      [&](auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, wire::SubmitRequest>) {
          HandleSubmit(from, r, now);
        } else if constexpr (std::is_same_v<T, wire::StatusRequest>) {
          HandleStatus(from, r);
        } else if constexpr (std::is_same_v<T, wire::ListRequest>) {
          HandleList(from, r);
        } else if constexpr (std::is_same_v<T, wire::CancelRequest>) {
          HandleCancel(from, r, now);
        } else if constexpr (std::is_same_v<T, wire::RetryRequest>) {
          HandleRetry(from, r, now);
        } else if constexpr (std::is_same_v<T, wire::ClusterRequest>) {
          wire::ClientReply reply{.command = wire::ClientCommand::kCluster, .rid = r.rid};
          reply.cluster = Cluster(now);
          Reply(from, std::move(reply));
        } else if constexpr (std::is_same_v<T, wire::WatchRequest>) {
          HandleWatch(from, r);
        } else {
          static_assert(std::is_same_v<T, wire::PingRequest>);
          wire::ClientReply reply{.command = wire::ClientCommand::kPing, .rid = r.rid};
          reply.role = config_.role;
          reply.epoch = epoch_;
          Reply(from, std::move(reply));
        }
      },
      request);
  Dispatch(now);
}

void Core::OnMalformed(const wire::Envelope& from, const wire::DecodeError& error, Now now) {
  ++malformed_;
  spdlog::debug("malformed message ({}): {}", malformed_, error.message);
  if (!error.answerable) return;
  if (error.dialog == wire::Dialog::kClient) {
    ReplyError(from, static_cast<wire::ClientCommand>(error.command), error.rid, error.status,
               error.message);
    return;
  }
  // A worker that breaks the protocol is dropped, like MDP says; it may READY again.
  if (workers_.contains(from.routing_id)) {
    RemoveWorker(from.routing_id, "malformed message: " + error.message, now);
    Dispatch(now);
  }
  outbox_.push_back({from, wire::Encode(wire::WorkerMessage{wire::Disconnect{error.message}})});
}

void Core::OnUnreachable(const wire::Envelope& to, Now now) {
  if (workers_.contains(to.routing_id)) {
    RemoveWorker(to.routing_id, "unreachable", now);
    Dispatch(now);
    return;
  }
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    std::erase_if(it->second, [&](const Watcher& w) { return w.to.routing_id == to.routing_id; });
    it = it->second.empty() ? watchers_.erase(it) : std::next(it);
  }
}

// ---- client requests ----

void Core::HandleSubmit(const wire::Envelope& from, const wire::SubmitRequest& r, Now now) {
  const auto cmd = wire::ClientCommand::kSubmit;
  if (!ValidName(r.type, wire::limits::kMaxTypeBytes)) {
    return ReplyError(from, cmd, r.rid, StatusCode::kBadRequest,
                      "type must be 1-128 characters of A-Z a-z 0-9 _ . : -");
  }
  if (r.payload.size() > config_.max_payload_bytes) {
    return ReplyError(from, cmd, r.rid, StatusCode::kTooLarge,
                      "payload of " + std::to_string(r.payload.size()) +
                          " bytes is over the limit of " +
                          std::to_string(config_.max_payload_bytes));
  }
  if (r.priority && *r.priority > static_cast<std::uint32_t>(wire::kPriorityMax)) {
    return ReplyError(from, cmd, r.rid, StatusCode::kBadRequest, "priority must be 0-9");
  }
  if (r.max_attempts && *r.max_attempts == 0) {
    return ReplyError(from, cmd, r.rid, StatusCode::kBadRequest, "max_attempts must be >= 1");
  }
  if (r.timeout_ms && *r.timeout_ms == 0) {
    return ReplyError(from, cmd, r.rid, StatusCode::kBadRequest, "timeout_ms must be > 0");
  }
  if (r.key && (r.key->empty() || r.key->size() > wire::limits::kMaxKeyBytes)) {
    return ReplyError(from, cmd, r.rid, StatusCode::kBadRequest, "key must be 1-256 bytes");
  }
  if (r.key) {
    if (auto it = keys_.find(*r.key); it != keys_.end()) {
      wire::ClientReply reply{.command = cmd, .rid = r.rid, .status = StatusCode::kAccepted};
      reply.id = FormatJobId(it->second);
      reply.existing = true;
      if (Batch* batch = PendingInsertBatch(it->second)) {
        batch->replies.push_back({from, std::move(reply)});
      } else {
        Reply(from, std::move(reply));
      }
      return;
    }
  }
  const std::uint64_t pending =
      CountIn(JobState::kQueued) + CountIn(JobState::kScheduled) + CountIn(JobState::kRunning);
  if (pending >= config_.max_pending) {
    return ReplyError(
        from, cmd, r.rid, StatusCode::kQueueFull,
        "the broker holds " + std::to_string(pending) + " pending jobs, its limit; retry later");
  }
  if (config_.max_pending_per_type != 0 && PendingOfType(r.type) >= config_.max_pending_per_type) {
    return ReplyError(from, cmd, r.rid, StatusCode::kQueueFull,
                      "type '" + r.type + "' holds " + std::to_string(PendingOfType(r.type)) +
                          " pending jobs, its limit; retry later");
  }

  const Seq seq = next_seq_++;
  Job& job = jobs_[seq];
  job.seq = seq;
  job.type = r.type;
  job.payload = r.payload;
  job.priority = r.priority.value_or(wire::kPriorityNormal);
  job.state = JobState::kQueued;
  job.timeout_ms = r.timeout_ms.value_or(config_.job_timeout_ms);
  job.max_attempts = r.max_attempts.value_or(config_.max_attempts);
  job.backoff_ms = r.backoff_ms.value_or(config_.backoff_ms);
  job.max_backoff_ms = r.max_backoff_ms.value_or(config_.max_backoff_ms);
  job.key = r.key.value_or("");
  job.created_at = now.wall_ms;
  job.updated_at = now.wall_ms;
  // A delayed job waits, scheduled, for the later of its run_at and now + delay_ms.
  const std::int64_t not_before =
      std::max(static_cast<std::int64_t>(r.run_at.value_or(0)),
               r.delay_ms ? now.wall_ms + static_cast<std::int64_t>(*r.delay_ms) : 0);
  if (not_before > now.wall_ms) {
    job.state = JobState::kScheduled;
    job.run_at = not_before;
  }
  ++counts_[StateIndex(job.state)];
  ++pending_by_type_[job.type];
  if (!job.key.empty()) keys_.emplace(job.key, seq);
  MarkDirty(job, /*insert=*/true);
  building_.to_enqueue.push_back(seq);
  wire::ClientReply reply{.command = cmd, .rid = r.rid, .status = StatusCode::kAccepted};
  reply.id = FormatJobId(seq);
  building_.replies.push_back({from, std::move(reply)});
  spdlog::info("job {} type={} attempt=0 worker=-: submitted ({}, priority {})", FormatJobId(seq),
               job.type, wire::Name(job.state), job.priority);
}

void Core::HandleStatus(const wire::Envelope& from, const wire::StatusRequest& r) {
  auto job = Lookup(from, wire::ClientCommand::kStatus, r.rid, r.id);
  if (!job) return;
  wire::ClientReply reply{.command = wire::ClientCommand::kStatus, .rid = r.rid};
  reply.job = ToJobInfo(*job, Detail::kFull);
  Reply(from, std::move(reply));
}

void Core::HandleList(const wire::Envelope& from, const wire::ListRequest& r) {
  ListFilter filter;
  filter.state = r.state;
  filter.type = r.type;
  filter.limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      r.limit.value_or(wire::defaults::kListLimit), wire::defaults::kListLimitMax));
  auto stored = reader_.List(filter);
  if (!stored) {
    return ReplyError(from, wire::ClientCommand::kList, r.rid, StatusCode::kInternal,
                      "cannot read the store: " + stored.error().message);
  }
  auto matches = [&](const Job& job) {
    return (!filter.state || job.state == *filter.state) &&
           (!filter.type || job.type == *filter.type);
  };
  // Memory holds the newest version of every job it has; the store has the rest.
  std::map<Seq, const Job*, std::greater<>> merged;
  for (const auto& job : *stored) {
    auto it = jobs_.find(job.seq);
    const Job& current = it != jobs_.end() ? it->second : job;
    if (matches(current)) merged.emplace(job.seq, &current);
  }
  for (const auto& [seq, job] : jobs_) {
    if (matches(job) && !PendingInsertBatch(seq)) merged.emplace(seq, &job);
  }
  wire::ClientReply reply{.command = wire::ClientCommand::kList, .rid = r.rid};
  reply.jobs.emplace();
  for (const auto& [seq, job] : merged) {
    if (reply.jobs->size() >= filter.limit) break;
    reply.jobs->push_back(ToJobInfo(*job, Detail::kSummary));
  }
  Reply(from, std::move(reply));
}

void Core::HandleCancel(const wire::Envelope& from, const wire::CancelRequest& r, Now now) {
  const auto cmd = wire::ClientCommand::kCancel;
  // Refusals look at a copy, so that a finished job read back from the store stays out of memory.
  const auto current = Lookup(from, cmd, r.rid, r.id);
  if (!current) return;
  if (wire::IsFinal(current->state)) {
    return ReplyError(from, cmd, r.rid, StatusCode::kConflict,
                      "job " + r.id + " is already " + std::string(wire::Name(current->state)));
  }
  Job* job = LoadForUpdate(from, cmd, r.rid, r.id);
  if (job == nullptr) return;
  if (job->state == JobState::kQueued) {
    ready_.Remove(job->type, job->priority, job->seq);
  } else if (job->state == JobState::kRunning) {
    // The worker keeps the slot until it reports that the handler stopped.
    const std::uint64_t lease = leases_[job->seq];
    leases_.erase(job->seq);
    if (auto it = worker_ids_.find(job->worker); it != worker_ids_.end()) {
      if (WorkerState* w = FindWorker(it->second)) {
        SendToWorker(*w, wire::CancelJob{FormatJobId(job->seq), lease, "cancelled by a client"},
                     now);
      }
    }
  }
  job->error = "cancelled by a client";
  SetState(*job, JobState::kCancelled, now);
  MarkDirty(*job);
  wire::ClientReply reply{.command = cmd, .rid = r.rid};
  reply.job = ToJobInfo(*job, Detail::kWithResult);
  Reply(from, std::move(reply));
}

void Core::HandleRetry(const wire::Envelope& from, const wire::RetryRequest& r, Now now) {
  const auto cmd = wire::ClientCommand::kRetry;
  const auto current = Lookup(from, cmd, r.rid, r.id);
  if (!current) return;
  if (current->state != JobState::kDead && current->state != JobState::kCancelled) {
    return ReplyError(from, cmd, r.rid, StatusCode::kConflict,
                      "job " + r.id + " is " + std::string(wire::Name(current->state)) +
                          "; only a dead or cancelled job can be retried");
  }
  Job* job = LoadForUpdate(from, cmd, r.rid, r.id);
  if (job == nullptr) return;
  job->attempts = 0;
  job->result.reset();
  job->run_at = 0;
  SetState(*job, JobState::kQueued, now);
  MarkDirty(*job);
  Enqueue(*job);
  wire::ClientReply reply{.command = cmd, .rid = r.rid};
  reply.job = ToJobInfo(*job, Detail::kWithResult);
  Reply(from, std::move(reply));
}

void Core::HandleWatch(const wire::Envelope& from, const wire::WatchRequest& r) {
  auto job = Lookup(from, wire::ClientCommand::kWatch, r.rid, r.id);
  if (!job) return;
  if (!wire::IsFinal(job->state)) {
    auto& list = watchers_[job->seq];
    const bool known = std::any_of(list.begin(), list.end(), [&](const Watcher& w) {
      return w.to.routing_id == from.routing_id && w.rid == r.rid;
    });
    if (!known) list.push_back({from, r.rid});
  }
  wire::ClientReply reply{.command = wire::ClientCommand::kWatch, .rid = r.rid};
  reply.job = ToJobInfo(*job, Detail::kWithResult);
  Reply(from, std::move(reply));
}

// ---- workers ----

void Core::HandleWorker(const wire::Envelope& from, wire::WorkerMessage message, Now now) {
  if (auto* ready = std::get_if<wire::Ready>(&message)) return HandleReady(from, *ready, now);
  WorkerState* w = FindWorker(from.routing_id);
  if (w == nullptr) {
    if (std::holds_alternative<wire::Disconnect>(message)) return;
    spdlog::warn("{} from an unknown worker; told to reconnect",
                 wire::Name(wire::CommandOf(message)));
    outbox_.push_back(
        {from, wire::Encode(wire::WorkerMessage{wire::Disconnect{"unknown worker; send READY"}})});
    return;
  }
  w->last_heard_ms = now.mono_ms;
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::Done>) {
          HandleDone(*w, m, now);
        } else if constexpr (std::is_same_v<T, wire::Failed>) {
          HandleFail(*w, m, now);
        } else if constexpr (std::is_same_v<T, wire::ProgressReport>) {
          HandleProgress(*w, m);
        } else if constexpr (std::is_same_v<T, wire::Disconnect>) {
          RemoveWorker(from.routing_id, "disconnected: " + m.reason, now);
        }
      },
      message);
}

void Core::HandleReady(const wire::Envelope& from, const wire::Ready& m, Now now) {
  std::string problem;
  if (!ValidName(m.worker_id, wire::limits::kMaxWorkerIdBytes)) {
    problem = "worker_id must be 1-128 characters of A-Z a-z 0-9 _ . : -";
  } else if (m.types.empty()) {
    problem = "types must name at least one job type";
  } else if (std::any_of(m.types.begin(), m.types.end(), [](const std::string& t) {
               return !ValidName(t, wire::limits::kMaxTypeBytes);
             })) {
    problem = "a type is not 1-128 characters of A-Z a-z 0-9 _ . : -";
  } else if (m.capacity == 0 || m.capacity > wire::limits::kMaxCapacity) {
    problem = "capacity must be 1-10000";
  } else if (m.labels.size() > static_cast<std::size_t>(wire::limits::kMaxLabels)) {
    problem = "at most 64 labels";
  }
  if (!problem.empty()) {
    ++malformed_;
    spdlog::warn("READY refused: {}", problem);
    outbox_.push_back({from, wire::Encode(wire::WorkerMessage{wire::Disconnect{problem}})});
    return;
  }
  if (auto it = worker_ids_.find(m.worker_id);
      it != worker_ids_.end() && it->second != from.routing_id) {
    RemoveWorker(it->second, "replaced by a new connection with the same worker id", now);
  }
  std::unordered_map<std::uint64_t, Seq> leases;
  if (WorkerState* old = FindWorker(from.routing_id)) {
    // A READY again on the same connection keeps its jobs: re-register without failing them.
    Unlist(from.routing_id, *old);
    leases = std::move(old->leases);
    if (auto id = worker_ids_.find(old->id);
        id != worker_ids_.end() && id->second == from.routing_id) {
      worker_ids_.erase(id);
    }
    workers_.erase(from.routing_id);
  }
  WorkerState& w = workers_[from.routing_id];
  w.to = from;
  w.id = m.worker_id;
  w.types = m.types;
  std::sort(w.types.begin(), w.types.end());
  w.types.erase(std::unique(w.types.begin(), w.types.end()), w.types.end());
  w.capacity = m.capacity;
  w.labels = m.labels;
  w.leases = std::move(leases);
  w.last_heard_ms = now.mono_ms;
  worker_ids_[w.id] = from.routing_id;
  const std::uint64_t free_slots = w.capacity > w.leases.size() ? w.capacity - w.leases.size() : 0;
  for (const auto& type : w.types) {
    auto& tw = type_workers_[type];
    tw.routing_ids.push_back(from.routing_id);
    tw.spare += free_slots;
    dirty_types_.push_back(type);
  }
  spdlog::info("worker {} ready: types={} capacity={}", w.id, fmt::join(w.types, ","), w.capacity);
  SendToWorker(w, wire::Welcome{config_.heartbeat_ms, config_.liveness, epoch_}, now);
}

Job* Core::EndLease(WorkerState& w, const std::string& id, std::uint64_t lease,
                    std::string_view what) {
  const auto seq = ParseJobId(id);
  // The lease must be this worker's, and for this job: a reply quoting another job's lease
  // frees nothing.
  auto in_hand = w.leases.find(lease);
  const bool held = seq && in_hand != w.leases.end() && in_hand->second == *seq;
  if (held) ReleaseSlot(w, lease);
  auto current = seq ? leases_.find(*seq) : leases_.end();
  if (!held || current == leases_.end() || current->second != lease) {
    spdlog::warn("job {} worker={}: {} for lease {} ignored: that lease has ended", id, w.id, what,
                 lease);
    return nullptr;
  }
  leases_.erase(current);
  return &jobs_.at(*seq);
}

void Core::HandleDone(WorkerState& w, const wire::Done& m, Now now) {
  Job* job = EndLease(w, m.id, m.lease, "DONE");
  if (job == nullptr) return;
  job->result = m.result;
  job->error.clear();
  SetState(*job, JobState::kSucceeded, now);
  MarkDirty(*job);
}

void Core::HandleFail(WorkerState& w, const wire::Failed& m, Now now) {
  Job* job = EndLease(w, m.id, m.lease, "FAIL");
  if (job == nullptr) return;
  FailAttempt(*job, m.error.empty() ? "failed" : m.error, m.permanent, now);
}

void Core::HandleProgress(WorkerState& w, const wire::ProgressReport& m) {
  const auto seq = ParseJobId(m.id);
  auto lease = seq ? leases_.find(*seq) : leases_.end();
  if (lease == leases_.end() || lease->second != m.lease || !w.leases.contains(m.lease)) {
    spdlog::debug("job {} worker={}: PROGRESS for an ended lease ignored", m.id, w.id);
    return;
  }
  Job& job = jobs_.at(*seq);
  if (m.percent || m.message) {
    wire::Progress progress;
    if (m.percent) progress.percent = std::min<std::uint32_t>(*m.percent, 100);
    if (m.message) progress.message = *m.message;
    job.progress = std::move(progress);
  }
  if (m.checkpoint) job.checkpoint = *m.checkpoint;
  MarkDirty(job);
}

// ---- job state ----

std::optional<Job> Core::Lookup(const wire::Envelope& from, wire::ClientCommand command,
                                std::uint64_t rid, const std::string& id) {
  const auto seq = ParseJobId(id);
  if (seq) {
    if (auto it = jobs_.find(*seq); it != jobs_.end()) {
      if (!PendingInsertBatch(*seq)) return it->second;  // else: not accepted yet
    } else {
      auto stored = reader_.Get(*seq);
      if (!stored) {
        spdlog::error("cannot read job {} from the store: {}", id, stored.error().message);
        ReplyError(from, command, rid, StatusCode::kInternal,
                   "cannot read the store: " + stored.error().message);
        return std::nullopt;
      }
      if (*stored) return std::move(**stored);
    }
  }
  ReplyError(from, command, rid, StatusCode::kNotFound, "no job " + id);
  return std::nullopt;
}

Job* Core::LoadForUpdate(const wire::Envelope& from, wire::ClientCommand command, std::uint64_t rid,
                         const std::string& id) {
  auto job = Lookup(from, command, rid, id);
  if (!job) return nullptr;
  const Seq seq = job->seq;
  return &jobs_.try_emplace(seq, std::move(*job)).first->second;
}

Core::Batch* Core::PendingInsertBatch(Seq seq) {
  if (auto it = building_.dirty.find(seq); it != building_.dirty.end() && it->second)
    return &building_;
  if (in_flight_) {
    if (auto it = in_flight_->dirty.find(seq); it != in_flight_->dirty.end() && it->second)
      return &*in_flight_;
  }
  return nullptr;
}

void Core::SetState(Job& job, JobState state, Now now) {
  spdlog::info("job {} type={} attempt={} worker={}: {} -> {}", FormatJobId(job.seq), job.type,
               job.attempts, job.worker.empty() ? "-" : job.worker, wire::Name(job.state),
               wire::Name(state));
  --counts_[StateIndex(job.state)];
  ++counts_[StateIndex(state)];
  if (IsPending(job.state) && !IsPending(state)) --pending_by_type_[job.type];
  if (!IsPending(job.state) && IsPending(state)) ++pending_by_type_[job.type];
  job.state = state;
  job.updated_at = now.wall_ms;
}

void Core::MarkDirty(const Job& job, bool insert) {
  auto [it, added] = building_.dirty.emplace(job.seq, insert);
  if (!added && insert) it->second = true;
}

void Core::Enqueue(Job& job) {
  ready_.Push(job.type, job.priority, job.seq);
  dirty_types_.push_back(job.type);
}

void Core::FailAttempt(Job& job, const std::string& error, bool permanent, Now now) {
  leases_.erase(job.seq);
  job.error = error;
  if (Decide(job.attempts, job.max_attempts, permanent) == AfterFailure::kDead) {
    SetState(job, JobState::kDead, now);
  } else {
    const RetryPolicy policy{job.backoff_ms, job.max_backoff_ms, config_.jitter_percent};
    const double unit = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    job.run_at = now.wall_ms + static_cast<std::int64_t>(RetryDelayMs(policy, job.attempts, unit));
    SetState(job, JobState::kScheduled, now);
    scheduled_.push({job.run_at, job.seq, static_cast<std::uint64_t>(job.run_at)});
  }
  MarkDirty(job);
}

void Core::NotifyWatchers(const Job& job) {
  auto it = watchers_.find(job.seq);
  if (it == watchers_.end()) return;
  for (const auto& watcher : it->second) {
    wire::ClientReply reply{.command = wire::ClientCommand::kWatch, .rid = watcher.rid};
    reply.job = ToJobInfo(job, Detail::kWithResult);
    Reply(watcher.to, std::move(reply));
  }
  if (wire::IsFinal(job.state)) watchers_.erase(it);
}

// ---- dispatch ----

void Core::ReleaseSlot(WorkerState& w, std::uint64_t lease) {
  if (w.leases.erase(lease) == 0) return;
  // A worker that re-registered with a smaller capacity may still be at or over it.
  if (w.leases.size() >= w.capacity) return;
  for (const auto& type : w.types) {
    ++type_workers_[type].spare;
    dirty_types_.push_back(type);
  }
}

void Core::Unlist(const std::string& routing_id, const WorkerState& w) {
  const std::uint64_t free_slots = w.capacity > w.leases.size() ? w.capacity - w.leases.size() : 0;
  for (const auto& type : w.types) {
    auto& tw = type_workers_[type];
    std::erase(tw.routing_ids, routing_id);
    tw.spare -= free_slots;
  }
}

void Core::RemoveWorker(const std::string& routing_id, const std::string& why, Now now) {
  auto it = workers_.find(routing_id);
  if (it == workers_.end()) return;
  WorkerState& w = it->second;
  spdlog::info("worker {} removed: {} ({} jobs in hand)", w.id, why, w.leases.size());
  Unlist(routing_id, w);
  for (const auto& [lease, seq] : w.leases) {
    auto current = leases_.find(seq);
    if (current != leases_.end() && current->second == lease) {
      FailAttempt(jobs_.at(seq), "worker " + w.id + " lost: " + why, false, now);
    }
  }
  if (auto id = worker_ids_.find(w.id); id != worker_ids_.end() && id->second == routing_id) {
    worker_ids_.erase(id);
  }
  workers_.erase(it);
}

Core::WorkerState* Core::PickWorker(const std::string& type) {
  auto it = type_workers_.find(type);
  if (it == type_workers_.end() || it->second.spare == 0) return nullptr;
  TypeWorkers& tw = it->second;
  const std::size_t n = tw.routing_ids.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t index = (tw.cursor + i) % n;
    WorkerState& w = workers_.at(tw.routing_ids[index]);
    if (w.leases.size() < w.capacity) {
      tw.cursor = index + 1;
      return &w;
    }
  }
  assert(false && "spare slots counted but none found");
  return nullptr;
}

void Core::Dispatch(Now now) {
  while (!dirty_types_.empty()) {
    const std::string type = std::move(dirty_types_.back());
    dirty_types_.pop_back();
    while (ready_.Depth(type) > 0) {
      WorkerState* w = PickWorker(type);
      if (w == nullptr) break;
      const auto seq = ready_.Pop(type);
      Job& job = jobs_.at(*seq);
      assert(job.state == JobState::kQueued);
      StartAttempt(job, *w, now);
    }
  }
}

void Core::StartAttempt(Job& job, WorkerState& w, Now now) {
  const std::uint64_t lease = (epoch_ << kLeaseCounterBits) | next_lease_++;
  ++job.attempts;
  job.worker = w.id;
  job.progress.reset();
  SetState(job, JobState::kRunning, now);
  MarkDirty(job);
  leases_[job.seq] = lease;
  w.leases.emplace(lease, job.seq);
  for (const auto& type : w.types) --type_workers_[type].spare;
  // The worker enforces the timeout itself; this deadline catches a worker that does not.
  const auto grace = static_cast<std::int64_t>(config_.heartbeat_ms * config_.liveness);
  lease_deadlines_.push(
      {now.mono_ms + static_cast<std::int64_t>(job.timeout_ms) + grace, job.seq, lease});
  wire::JobDispatch dispatch;
  dispatch.id = FormatJobId(job.seq);
  dispatch.type = job.type;
  dispatch.payload = job.payload;
  dispatch.lease = lease;
  dispatch.attempt = job.attempts;
  dispatch.timeout_ms = job.timeout_ms;
  dispatch.priority = job.priority;
  dispatch.checkpoint = job.checkpoint;
  SendToWorker(w, std::move(dispatch), now);
}

// ---- time ----

void Core::OnTick(Now now) {
  while (!scheduled_.empty() && scheduled_.top().at <= now.wall_ms) {
    const Deadline due = scheduled_.top();
    scheduled_.pop();
    auto it = jobs_.find(due.seq);
    if (it == jobs_.end() || it->second.state != JobState::kScheduled ||
        static_cast<std::uint64_t>(it->second.run_at) != due.token) {
      continue;  // cancelled or rescheduled since
    }
    Job& job = it->second;
    job.run_at = 0;
    SetState(job, JobState::kQueued, now);
    MarkDirty(job);
    Enqueue(job);
  }
  while (!lease_deadlines_.empty() && lease_deadlines_.top().at <= now.mono_ms) {
    const Deadline due = lease_deadlines_.top();
    lease_deadlines_.pop();
    auto lease = leases_.find(due.seq);
    if (lease == leases_.end() || lease->second != due.token) continue;  // ended already
    Job& job = jobs_.at(due.seq);
    if (auto id = worker_ids_.find(job.worker); id != worker_ids_.end()) {
      if (WorkerState* w = FindWorker(id->second)) {
        SendToWorker(*w, wire::CancelJob{FormatJobId(job.seq), due.token, "timed out"}, now);
      }
    }
    FailAttempt(job,
                "timed out after " +
                    wire::FormatDuration(static_cast<std::int64_t>(job.timeout_ms)) +
                    " with no reply from the worker",
                false, now);
  }
  if (now.mono_ms >= next_heartbeat_scan_ms_) {
    const auto hb = static_cast<std::int64_t>(config_.heartbeat_ms);
    const std::int64_t expiry = hb * config_.liveness;
    std::vector<std::string> dead;
    for (auto& [routing_id, w] : workers_) {
      if (now.mono_ms - w.last_heard_ms > expiry) {
        dead.push_back(routing_id);
      } else if (now.mono_ms - w.last_sent_ms >= hb) {
        SendToWorker(w, wire::Heartbeat{}, now);
      }
    }
    for (const auto& routing_id : dead) {
      RemoveWorker(routing_id, "silent for " + wire::FormatDuration(expiry), now);
    }
    next_heartbeat_scan_ms_ = now.mono_ms + std::max<std::int64_t>(hb / 4, 1);
  }
  Dispatch(now);
}

std::int64_t Core::MillisUntilDue(Now now) const {
  std::int64_t due = -1;
  auto consider = [&](std::int64_t ms) {
    ms = std::max<std::int64_t>(ms, 0);
    due = due < 0 ? ms : std::min(due, ms);
  };
  if (!scheduled_.empty()) consider(scheduled_.top().at - now.wall_ms);
  if (!lease_deadlines_.empty()) consider(lease_deadlines_.top().at - now.mono_ms);
  if (!workers_.empty()) consider(next_heartbeat_scan_ms_ - now.mono_ms);
  return due;
}

// ---- group commit ----

std::optional<WriteBatch> Core::TakeBatch() {
  if (in_flight_) return std::nullopt;
  if (building_.dirty.empty()) {
    for (auto& deferred : building_.replies) Reply(deferred.to, std::move(deferred.reply));
    building_.replies.clear();
    return std::nullopt;
  }
  WriteBatch batch;
  batch.writes.reserve(building_.dirty.size());
  for (const auto& [seq, insert] : building_.dirty) {
    const Job& job = jobs_.at(seq);
    batch.writes.push_back({insert, insert ? job : UpdateRow(job)});
  }
  in_flight_ = std::move(building_);
  building_ = Batch{};
  return batch;
}

void Core::OnBatchDone(const Status& result, Now now) {
  assert(in_flight_);
  Batch done = std::move(*in_flight_);
  in_flight_.reset();
  if (!result) {
    spdlog::error("commit failed, {} new jobs refused: {}", done.to_enqueue.size(),
                  result.error().message);
    for (const Seq seq : done.to_enqueue) {
      auto it = jobs_.find(seq);
      if (it == jobs_.end()) continue;
      const Job& job = it->second;
      --counts_[StateIndex(job.state)];
      if (IsPending(job.state)) --pending_by_type_[job.type];
      if (!job.key.empty()) keys_.erase(job.key);
      building_.dirty.erase(seq);
      watchers_.erase(seq);
      jobs_.erase(it);
    }
    for (auto& deferred : done.replies) {
      deferred.reply.status = StatusCode::kStorageError;
      deferred.reply.message = "the broker could not commit the job: " + result.error().message;
      deferred.reply.id.reset();
      deferred.reply.existing.reset();
      Reply(deferred.to, std::move(deferred.reply));
    }
    for (const auto& [seq, insert] : done.dirty) {
      if (!insert && jobs_.contains(seq)) MarkDirty(jobs_.at(seq));
    }
    return;
  }
  for (auto& deferred : done.replies) Reply(deferred.to, std::move(deferred.reply));
  for (const Seq seq : done.to_enqueue) {
    auto it = jobs_.find(seq);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    if (job.state == JobState::kQueued) Enqueue(job);
    if (job.state == JobState::kScheduled) {
      scheduled_.push({job.run_at, seq, static_cast<std::uint64_t>(job.run_at)});
    }
  }
  for (const auto& [seq, insert] : done.dirty) {
    auto it = jobs_.find(seq);
    if (it == jobs_.end()) continue;
    // Watchers hear only what is on disk; a newer change is reported when its batch commits.
    if (!building_.dirty.contains(seq)) NotifyWatchers(it->second);
    // A finished job whose final state is on disk leaves memory; the store answers for it.
    if (wire::IsFinal(it->second.state) && !building_.dirty.contains(seq)) jobs_.erase(it);
  }
  Dispatch(now);
}

// ---- helpers ----

void Core::Reply(const wire::Envelope& to, wire::ClientReply reply) {
  outbox_.push_back({to, wire::Encode(reply)});
}

void Core::ReplyError(const wire::Envelope& to, wire::ClientCommand command, std::uint64_t rid,
                      StatusCode status, std::string message) {
  wire::ClientReply reply{.command = command, .rid = rid, .status = status};
  reply.message = std::move(message);
  Reply(to, std::move(reply));
}

void Core::SendToWorker(WorkerState& w, const wire::WorkerMessage& message, Now now) {
  w.last_sent_ms = now.mono_ms;
  outbox_.push_back({w.to, wire::Encode(message)});
}

Core::WorkerState* Core::FindWorker(const std::string& routing_id) {
  auto it = workers_.find(routing_id);
  return it == workers_.end() ? nullptr : &it->second;
}

std::uint64_t Core::PendingOfType(const std::string& type) const {
  auto it = pending_by_type_.find(type);
  return it == pending_by_type_.end() ? 0 : it->second;
}

const Job* Core::Find(Seq seq) const {
  auto it = jobs_.find(seq);
  return it == jobs_.end() ? nullptr : &it->second;
}

std::uint64_t Core::CountIn(JobState state) const { return counts_[StateIndex(state)]; }

wire::ClusterInfo Core::Cluster(Now now) const {
  wire::ClusterInfo info;
  info.role = config_.role;
  info.epoch = epoch_;
  info.workers_total = static_cast<std::uint32_t>(workers_.size());
  for (const auto& [routing_id, w] : workers_) {
    if (!w.leases.empty()) ++info.workers_active;
    info.capacity_total += w.capacity;
    info.capacity_in_use += w.leases.size();
    wire::WorkerInfo wi;
    wi.id = w.id;
    wi.types = w.types;
    wi.capacity = w.capacity;
    wi.in_use = static_cast<std::uint32_t>(w.leases.size());
    wi.labels = w.labels;
    wi.last_seen_ms =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, now.mono_ms - w.last_heard_ms));
    info.workers.push_back(std::move(wi));
  }
  std::sort(info.workers.begin(), info.workers.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& entry : wire::kJobStates) {
    info.jobs[std::string(entry.name)] = counts_[StateIndex(entry.code)];
  }
  for (const auto& d : ready_.Depths()) info.queues.push_back({d.type, d.priority, d.depth});
  info.malformed = malformed_;
  if (pair_info_) info.pair = pair_info_(now);
  return info;
}

}  // namespace claw::broker
