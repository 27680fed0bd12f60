#include "broker/core.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cmath>

#include "broker/dag.hpp"
#include "schema/duration.hpp"
#include "schema/names.hpp"

namespace claw::broker {
namespace {

using wire::JobState;
using wire::StatusCode;

constexpr int kLeaseCounterBits = 40;
// How many queued jobs of a type dispatch looks at for one a free worker may take.
constexpr std::size_t kPlacementScan = 256;
// A held-back batch this large is committed at once, whatever its age: it bounds the batch.
constexpr std::size_t kMaxHeldBackWrites = 4096;

std::size_t StateIndex(JobState s) { return static_cast<std::size_t>(s); }

bool IsPending(JobState s) { return !wire::IsFinal(s); }

// How often the purge looks for finished jobs past their retention.
std::int64_t PurgeIntervalMs(std::uint64_t retention_ms) {
  return std::clamp<std::int64_t>(static_cast<std::int64_t>(retention_ms / 10), 100, 60'000);
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

// The types a READY announces: each a name.
Status CheckTypes(const std::vector<std::string>& types) {
  for (const auto& type : types) {
    if (Status name = wire::CheckName("each type", type, wire::limits::kMaxTypeBytes); !name) {
      return name;
    }
  }
  return {};
}

}  // namespace

Core::Core(CoreConfig config, JobStore& reader, std::uint64_t epoch, std::uint64_t seed)
    : config_(std::move(config)),
      reader_(reader),
      epoch_(epoch),
      rng_(seed),
      scheduler_(config_.scheduling) {
  for (std::size_t i = 0; i < config_.cluster.nodes.size(); ++i) {
    if (config_.cluster.nodes[i].role == NodeRole::kWorker)
      worker_nodes_.emplace(config_.cluster.nodes[i].id, i);
  }
}

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
  std::uint64_t unfinished = 0;
  for (const JobState state : wire::kUnfinishedStates) unfinished += counts_[StateIndex(state)];
  jobs_.reserve(unfinished);
  std::uint64_t recovered = 0;
  std::uint64_t requeued = 0;
  std::vector<Seq> waiting;
  Status loaded_all = reader_.ForEachUnfinished([&](Job&& loaded) {
    ++recovered;
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
      case JobState::kWaiting:
        waiting.push_back(seq);  // once every unfinished job is in memory
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
        assert(false && "ForEachUnfinished handed over a finished job");
    }
  });
  if (!loaded_all) return loaded_all;
  for (const Seq seq : waiting) {
    Job& job = jobs_.at(seq);
    const Dependencies dependencies = CheckDependencies(job);
    if (dependencies.failed) {
      job.error =
          "dependency " + FormatJobId(*dependencies.failed) + " ended " + dependencies.failed_state;
      SetState(job, JobState::kCancelled, now);
      MarkDirty(job);
    } else if (dependencies.unmet > 0) {
      Await(job, dependencies.unmet);
    } else {
      Release(job, now);
    }
  }
  spdlog::info(
      "recovered {} unfinished jobs ({} were running and went back to the queue); "
      "epoch {}",
      recovered, requeued, epoch_);
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
          HandleStatus(from, r, now);
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
        } else if constexpr (std::is_same_v<T, wire::GroupSubmitRequest>) {
          HandleGroupSubmit(from, r, now);
        } else if constexpr (std::is_same_v<T, wire::GroupStatusRequest>) {
          HandleGroupStatus(from, r);
        } else if constexpr (std::is_same_v<T, wire::DrainRequest>) {
          HandleDrain(from, r, now);
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

void Core::HandleSubmit(const wire::Envelope& from, wire::SubmitRequest& r, Now now) {
  const auto cmd = wire::ClientCommand::kSubmit;
  wire::JobSpec spec = std::move(r.job);
  if (auto refusal = CheckSpec(spec)) return Refuse(from, cmd, r.rid, *refusal);
  if (auto refusal = CheckKey("key", r.key)) return Refuse(from, cmd, r.rid, *refusal);
  if (r.key) {
    if (auto it = keys_.find(*r.key); it != keys_.end()) {
      wire::ClientReply reply{.command = cmd, .rid = r.rid, .status = StatusCode::kAccepted};
      reply.id = FormatJobId(it->second);
      reply.existing = true;
      if (Batch* batch = PendingInsertBatch(it->second)) {
        batch->replies.push_back(Defer(from, reply));
      } else {
        Reply(from, std::move(reply));
      }
      return;
    }
  }
  const auto policy = spec.after_policy.value_or(wire::DependencyPolicy::kAllSucceeded);
  std::vector<Seq> after;
  for (const auto& id : spec.after) {
    auto dependency = ResolveDependency(id, policy);
    if (!dependency) return Refuse(from, cmd, r.rid, dependency.error());
    after.push_back(*dependency);
  }
  if (auto refusal = AdmitTotal(1)) return Refuse(from, cmd, r.rid, *refusal);
  if (auto refusal = AdmitType(spec.type, 1)) return Refuse(from, cmd, r.rid, *refusal);

  const Seq seq = next_seq_++;
  Job& job = CreateJob(seq, std::move(spec), now);
  job.key = r.key.value_or("");
  if (!after.empty()) {
    wire::JobLinks& links = job.links.edit();
    links.after = std::move(after);
    links.after_policy = policy;
  }
  Accept(job);
  if (r.batch_ack) {
    building_.replies.push_back({.to = from, .command = cmd, .rid = r.rid, .batched = seq});
    return;
  }
  wire::ClientReply reply{.command = cmd, .rid = r.rid, .status = StatusCode::kAccepted};
  reply.id = FormatJobId(seq);
  building_.replies.push_back(Defer(from, reply));
}

void Core::HandleGroupSubmit(const wire::Envelope& from, wire::GroupSubmitRequest& r, Now now) {
  const auto cmd = wire::ClientCommand::kGroupSubmit;
  const std::size_t n = r.jobs.size();
  if (n == 0 || n > static_cast<std::size_t>(wire::limits::kMaxGroupJobs)) {
    return ReplyError(from, cmd, r.rid, StatusCode::kBadRequest,
                      "a group has 1-" + std::to_string(wire::limits::kMaxGroupJobs) + " jobs");
  }
  if (auto refusal = CheckKey("key", r.key)) return Refuse(from, cmd, r.rid, *refusal);
  if (r.key) {
    if (auto it = keys_.find(*r.key); it != keys_.end()) {
      const auto jobs = GroupJobs(it->second);
      if (!jobs || jobs->empty() || jobs->front().links.value().group != it->second) {
        return ReplyError(from, cmd, r.rid, StatusCode::kConflict,
                          "key '" + *r.key + "' names job " + FormatJobId(it->second) +
                              ", which does not start a group");
      }
      wire::ClientReply reply{.command = cmd, .rid = r.rid, .status = StatusCode::kAccepted};
      reply.id = FormatGroupId(it->second);
      reply.existing = true;
      reply.ids.emplace();
      for (const Job& job : *jobs) {
        if (job.links.value().follow_up) {
          reply.follow_up_id = FormatJobId(job.seq);
        } else {
          reply.ids->push_back(FormatJobId(job.seq));
        }
      }
      if (Batch* batch = PendingInsertBatch(it->second)) {
        batch->replies.push_back(Defer(from, reply));
      } else {
        Reply(from, std::move(reply));
      }
      return;
    }
  }
  // Check everything before creating anything: the group is accepted whole or not at all.
  std::map<std::string, std::uint64_t> new_by_type;
  std::vector<std::vector<Seq>> external(n);       // existing jobs each member waits for
  std::vector<std::vector<std::size_t>> local(n);  // members each member waits for
  for (std::size_t i = 0; i < n; ++i) {
    const wire::JobSpec& spec = r.jobs[i];
    const std::string member = "job #" + std::to_string(i) + ": ";
    if (auto refusal = CheckSpec(spec)) {
      refusal->message = member + refusal->message;
      return Refuse(from, cmd, r.rid, *refusal);
    }
    const auto policy = spec.after_policy.value_or(wire::DependencyPolicy::kAllSucceeded);
    for (const auto& id : spec.after) {
      if (id.starts_with('#')) {
        const auto index = ParseMemberRef(id);
        if (!index || *index >= n) {
          return ReplyError(
              from, cmd, r.rid, StatusCode::kBadRequest,
              member + "after: '" + id + "' is not a member (#0-#" + std::to_string(n - 1) + ")");
        }
        local[i].push_back(*index);
        continue;
      }
      auto dependency = ResolveDependency(id, policy);
      if (!dependency) {
        Refusal refusal = dependency.error();
        refusal.message = member + refusal.message;
        return Refuse(from, cmd, r.rid, refusal);
      }
      external[i].push_back(*dependency);
    }
    ++new_by_type[spec.type];
  }
  if (auto cycle = FindCycle(local)) {
    std::string path;
    for (const std::size_t node : *cycle)
      path += (path.empty() ? "#" : " -> #") + std::to_string(node);
    return ReplyError(from, cmd, r.rid, StatusCode::kBadRequest,
                      "the members' after lists form a cycle: " + path);
  }
  if (r.follow_up) {
    if (auto refusal = CheckSpec(*r.follow_up)) {
      refusal->message = "follow_up: " + refusal->message;
      return Refuse(from, cmd, r.rid, *refusal);
    }
    ++new_by_type[r.follow_up->type];
  }
  std::uint64_t total = 0;
  for (const auto& [type, count] : new_by_type) {
    if (auto refusal = AdmitType(type, count)) return Refuse(from, cmd, r.rid, *refusal);
    total += count;
  }
  if (auto refusal = AdmitTotal(total)) return Refuse(from, cmd, r.rid, *refusal);

  const Seq group = next_seq_;
  next_seq_ += n + (r.follow_up ? 1 : 0);
  wire::ClientReply reply{.command = cmd, .rid = r.rid, .status = StatusCode::kAccepted};
  reply.id = FormatGroupId(group);
  reply.ids.emplace();
  std::vector<Job*> created;
  for (std::size_t i = 0; i < n; ++i) {
    const auto policy = r.jobs[i].after_policy.value_or(wire::DependencyPolicy::kAllSucceeded);
    Job& job = CreateJob(group + i, std::move(r.jobs[i]), now);
    wire::JobLinks& links = job.links.edit();
    links.group = group;
    links.after = std::move(external[i]);
    for (const std::size_t index : local[i]) links.after.push_back(group + index);
    std::sort(links.after.begin(), links.after.end());
    links.after.erase(std::unique(links.after.begin(), links.after.end()), links.after.end());
    links.after_policy = policy;
    created.push_back(&job);
    reply.ids->push_back(FormatJobId(job.seq));
  }
  // The group's key is its first member's.
  if (r.key) created.front()->key = *r.key;
  if (r.follow_up) {
    Job& job = CreateJob(group + n, std::move(*r.follow_up), now);
    wire::JobLinks& links = job.links.edit();
    links.group = group;
    links.follow_up = true;
    for (std::size_t i = 0; i < n; ++i) links.after.push_back(group + i);
    links.after_policy = r.follow_up_policy.value_or(wire::DependencyPolicy::kAllSettled);
    created.push_back(&job);
    reply.follow_up_id = FormatJobId(job.seq);
  }
  // Every job exists before any is accepted: members may wait for later members.
  for (Job* job : created) Accept(*job);
  building_.replies.push_back(Defer(from, reply));
  spdlog::info("group {}: {} jobs{}", FormatGroupId(group), n,
               r.follow_up ? " and a follow-up" : "");
}

void Core::HandleGroupStatus(const wire::Envelope& from, const wire::GroupStatusRequest& r) {
  const auto cmd = wire::ClientCommand::kGroupStatus;
  const auto group = ParseGroupId(r.id);
  if (!group) return ReplyError(from, cmd, r.rid, StatusCode::kNotFound, "no group " + r.id);
  auto jobs = GroupJobs(*group);
  if (!jobs) {
    return ReplyError(from, cmd, r.rid, StatusCode::kInternal,
                      "cannot read the store: " + jobs.error().message);
  }
  if (jobs->empty() || PendingInsertBatch(*group)) {
    return ReplyError(from, cmd, r.rid, StatusCode::kNotFound, "no group " + r.id);
  }
  wire::GroupInfo info;
  info.id = r.id;
  for (const auto& entry : wire::kJobStates) info.counts[std::string(entry.name)] = 0;
  if (r.members) info.members.emplace();
  for (const Job& job : *jobs) {
    if (job.links.value().follow_up) {
      info.follow_up = ToJobInfo(job, Detail::kWithResult);
      continue;
    }
    ++info.total;
    ++info.counts[std::string(wire::Name(job.state))];
    if (wire::IsFinal(job.state)) ++info.settled;
    if (info.members) info.members->push_back(ToJobInfo(job, Detail::kWithResult));
  }
  wire::ClientReply reply{.command = cmd, .rid = r.rid};
  reply.group = std::move(info);
  Reply(from, std::move(reply));
}

std::optional<Core::Refusal> Core::CheckKey(std::string_view name,
                                            const std::optional<std::string>& key) {
  if (!key || (!key->empty() && key->size() <= wire::limits::kMaxKeyBytes)) return std::nullopt;
  return Refusal{
      StatusCode::kBadRequest,
      std::string(name) + " must be 1-" + std::to_string(wire::limits::kMaxKeyBytes) + " bytes"};
}

std::optional<Core::Refusal> Core::CheckSpec(const wire::JobSpec& spec) const {
  if (Status names = wire::CheckJobNames(spec); !names) {
    return Refusal{StatusCode::kBadRequest, names.error().message};
  }
  if (spec.payload.size() > config_.max_payload_bytes) {
    return Refusal{StatusCode::kTooLarge, "payload of " + std::to_string(spec.payload.size()) +
                                              " bytes is over the limit of " +
                                              std::to_string(config_.max_payload_bytes)};
  }
  if (spec.priority && *spec.priority > static_cast<std::uint32_t>(wire::kPriorityMax)) {
    return Refusal{StatusCode::kBadRequest, "priority must be 0-9"};
  }
  if (spec.max_attempts && *spec.max_attempts == 0) {
    return Refusal{StatusCode::kBadRequest, "max_attempts must be >= 1"};
  }
  if (spec.timeout_ms && *spec.timeout_ms == 0) {
    return Refusal{StatusCode::kBadRequest, "timeout_ms must be > 0"};
  }
  if (auto refusal = CheckKey("hash_key", spec.hash_key)) return refusal;
  if (spec.required.size() > static_cast<std::size_t>(wire::limits::kMaxLabels)) {
    return Refusal{StatusCode::kBadRequest, "at most 64 required labels"};
  }
  for (const auto& [key, value] : spec.required) {
    if (Status checked = wire::CheckLabel(key, value); !checked) {
      return Refusal{StatusCode::kBadRequest,
                     "required label '" + key + "': " + checked.error().message};
    }
  }
  if (spec.after.size() > static_cast<std::size_t>(wire::limits::kMaxAfter)) {
    return Refusal{StatusCode::kBadRequest,
                   "after lists at most " + std::to_string(wire::limits::kMaxAfter) + " jobs"};
  }
  return std::nullopt;
}

std::expected<Seq, Core::Refusal> Core::ResolveDependency(const std::string& id,
                                                          wire::DependencyPolicy policy) {
  const auto seq = ParseJobId(id);
  if (!seq) {
    return std::unexpected(
        Refusal{StatusCode::kBadRequest,
                "after: '" + id + "' is not a job id" +
                    (id.starts_with('#') ? " (#N names a member of the same GROUP_SUBMIT)" : "")});
  }
  const auto state = StateOf(*seq);
  if (!state) return std::unexpected(Refusal{StatusCode::kBadRequest, "after: no job " + id});
  if (policy == wire::DependencyPolicy::kAllSucceeded &&
      (*state == JobState::kDead || *state == JobState::kCancelled)) {
    return std::unexpected(Refusal{StatusCode::kConflict,
                                   "after: job " + id + " is " + std::string(wire::Name(*state)) +
                                       " and the policy is all_succeeded; retry it first"});
  }
  return *seq;
}

std::optional<Core::Refusal> Core::AdmitTotal(std::uint64_t n) const {
  std::uint64_t pending = 0;
  for (const JobState state : wire::kUnfinishedStates) pending += CountIn(state);
  if (pending + n <= config_.max_pending) return std::nullopt;
  return Refusal{StatusCode::kQueueFull, "the broker holds " + std::to_string(pending) +
                                             " pending jobs and its limit is " +
                                             std::to_string(config_.max_pending) + "; retry later"};
}

std::optional<Core::Refusal> Core::AdmitType(const std::string& type, std::uint64_t n) const {
  if (config_.max_pending_per_type == 0 ||
      PendingOfType(type) + n <= config_.max_pending_per_type) {
    return std::nullopt;
  }
  return Refusal{StatusCode::kQueueFull,
                 "type '" + type + "' holds " + std::to_string(PendingOfType(type)) +
                     " pending jobs and its limit is " +
                     std::to_string(config_.max_pending_per_type) + "; retry later"};
}

Job& Core::CreateJob(Seq seq, wire::JobSpec&& spec, Now now) {
  Job& job = jobs_[seq];
  job.seq = seq;
  job.type = std::move(spec.type);
  job.payload = std::move(spec.payload);
  job.priority = spec.priority.value_or(config_.scheduling.default_priority);
  if (spec.hash_key || !spec.required.empty() || spec.zone || spec.locality || spec.max_rtt_ms) {
    wire::JobLinks& links = job.links.edit();
    links.hash_key = std::move(spec.hash_key).value_or("");
    links.required = std::move(spec.required);
    links.zone = std::move(spec.zone).value_or("");
    links.locality = spec.locality;
    links.max_rtt_ms = spec.max_rtt_ms.value_or(0);
  }
  job.state = JobState::kQueued;
  job.timeout_ms = spec.timeout_ms.value_or(config_.job_timeout_ms);
  job.max_attempts = spec.max_attempts.value_or(config_.max_attempts);
  job.backoff_ms = spec.backoff_ms.value_or(config_.backoff_ms);
  job.max_backoff_ms = spec.max_backoff_ms.value_or(config_.max_backoff_ms);
  job.created_at = now.wall_ms;
  job.updated_at = now.wall_ms;
  // A delayed job waits, scheduled, for the later of its run_at and now + delay_ms.
  const std::int64_t not_before =
      std::max(static_cast<std::int64_t>(spec.run_at.value_or(0)),
               spec.delay_ms ? now.wall_ms + static_cast<std::int64_t>(*spec.delay_ms) : 0);
  if (not_before > now.wall_ms) {
    job.state = JobState::kScheduled;
    job.run_at = not_before;
  }
  return job;
}

void Core::Accept(Job& job) {
  const Dependencies dependencies = CheckDependencies(job);
  // Dependencies that had already failed were refused before the job was created.
  assert(!dependencies.failed);
  if (dependencies.unmet > 0) job.state = JobState::kWaiting;
  ++counts_[StateIndex(job.state)];
  ++pending_by_type_[job.type];
  if (!job.key.empty()) keys_.emplace(job.key, job.seq);
  if (dependencies.unmet > 0) Await(job, dependencies.unmet);
  MarkDirty(job, /*insert=*/true);
  building_.to_enqueue.push_back(job.seq);
  spdlog::info("job {} type={} attempt=0 worker=-: submitted ({}, priority {})",
               FormatJobId(job.seq), job.type, wire::Name(job.state), job.priority);
}

void Core::Refuse(const wire::Envelope& to, wire::ClientCommand command, std::uint64_t rid,
                  const Refusal& refusal) {
  ReplyError(to, command, rid, refusal.status, refusal.message);
}

void Core::HandleStatus(const wire::Envelope& from, const wire::StatusRequest& r, Now now) {
  auto job = Lookup(from, wire::ClientCommand::kStatus, r.rid, r.id);
  if (!job) return;
  wire::ClientReply reply{.command = wire::ClientCommand::kStatus, .rid = r.rid};
  reply.job = ToJobInfo(*job, Detail::kFull);
  if (job->state == JobState::kQueued) reply.job->waiting_reason = WaitingReason(*job, now);
  Reply(from, std::move(reply));
}

void Core::HandleList(const wire::Envelope& from, const wire::ListRequest& r) {
  ListFilter filter;
  filter.state = r.state;
  filter.type = r.type;
  filter.limit = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      r.limit.value_or(wire::defaults::kListLimit), wire::defaults::kListLimitMax));
  auto stored = reader_.ListFinished(filter);
  if (!stored) {
    return ReplyError(from, wire::ClientCommand::kList, r.rid, StatusCode::kInternal,
                      "cannot read the store: " + stored.error().message);
  }
  auto matches = [&](const Job& job) {
    return (!filter.state || job.state == *filter.state) &&
           (!filter.type || job.type == *filter.type);
  };
  // Memory holds every unfinished job and the newest version of every job it has; the store has
  // the finished rest.
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
  } else if (job->state == JobState::kWaiting) {
    unmet_.erase(job->seq);
  } else if (job->state == JobState::kRunning) {
    // The worker keeps the slot until it reports that the handler stopped.
    const std::uint64_t lease = leases_[job->seq];
    if (WorkerState* w = WorkerOf(*job)) {
      RevokeLease(*w, job->seq, lease, "cancelled by a client", now);
    } else {
      leases_.erase(job->seq);
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
  const Dependencies dependencies = CheckDependencies(*current);
  if (dependencies.failed) {
    return ReplyError(from, cmd, r.rid, StatusCode::kConflict,
                      "job " + r.id + " waits for " + FormatJobId(*dependencies.failed) +
                          ", which is " + dependencies.failed_state + "; retry that first");
  }
  Job* job = LoadForUpdate(from, cmd, r.rid, r.id);
  if (job == nullptr) return;
  job->attempts = 0;
  job->result.reset();
  job->run_at = 0;
  if (dependencies.unmet > 0) {
    SetState(*job, JobState::kWaiting, now);
    Await(*job, dependencies.unmet);
  } else {
    SetState(*job, JobState::kQueued, now);
    Enqueue(*job);
  }
  MarkDirty(*job);
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
    if (building_.dirty.contains(job->seq)) building_.watched = true;
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
        } else if constexpr (std::is_same_v<T, wire::Started>) {
          HandleStarted(*w, m, now);
        } else if constexpr (std::is_same_v<T, wire::Returned>) {
          HandleReturned(*w, m, now);
        } else if constexpr (std::is_same_v<T, wire::Disconnect>) {
          RemoveWorker(from.routing_id, "disconnected: " + m.reason, now);
        } else if constexpr (std::is_same_v<T, wire::Heartbeat>) {
          if (m.check) {
            const HealthChange change = OnReply(config_.health, w->health, *m.check, now.mono_ms);
            if (change == HealthChange::kBecameHealthy) {
              spdlog::info("worker {}: healthy again", w->id);
              dirty_types_.insert(dirty_types_.end(), w->types.begin(), w->types.end());
            }
          }
        }
      },
      message);
}

void Core::HandleReady(const wire::Envelope& from, const wire::Ready& m, Now now) {
  std::string problem;
  if (Status name = wire::CheckName("worker_id", m.worker_id, wire::limits::kMaxWorkerIdBytes);
      !name) {
    problem = name.error().message;
  } else if (m.types.empty()) {
    problem = "types must name at least one job type";
  } else if (Status types = CheckTypes(m.types); !types) {
    problem = types.error().message;
  } else if (m.capacity == 0 || m.capacity > wire::limits::kMaxCapacity) {
    problem = "capacity must be 1-10000";
  } else if (m.prefetch > wire::limits::kMaxCapacity) {
    problem = "prefetch must be 0-10000";
  } else if (m.labels.size() > static_cast<std::size_t>(wire::limits::kMaxLabels)) {
    problem = "at most 64 labels";
  } else {
    for (const auto& [key, value] : m.labels) {
      if (Status checked = wire::CheckLabel(key, value); !checked) {
        problem = "label '" + key + "': " + checked.error().message;
        break;
      }
    }
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
  std::unordered_map<std::uint64_t, bool> unstarted;
  std::int64_t last_started_ms = 0;
  if (WorkerState* old = FindWorker(from.routing_id)) {
    // A READY again on the same connection keeps its jobs: re-register without failing them.
    if (!old->draining) Unlist(*old);
    leases = std::move(old->leases);
    unstarted = std::move(old->unstarted);
    last_started_ms = old->last_started_ms;
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
  w.prefetch = m.prefetch;
  w.labels = m.labels;
  if (auto it = worker_nodes_.find(w.id); it != worker_nodes_.end()) {
    // A declared node: its capacity bounds the worker's, its zone is the default zone label.
    const NodeConfig& node = config_.cluster.nodes[it->second];
    if (node.capacity != 0 && node.capacity < w.capacity) {
      // The worker would run whatever it holds up to its own capacity: no prefetch then.
      spdlog::info(
          "worker {}: capacity {} lowered to {} and prefetch {} to 0, as cluster.nodes "
          "declares it",
          w.id, w.capacity, node.capacity, w.prefetch);
      w.capacity = node.capacity;
      w.prefetch = 0;
    }
    if (!node.zone.empty() &&
        w.labels.size() < static_cast<std::size_t>(wire::limits::kMaxLabels)) {
      w.labels.emplace("zone", node.zone);
    }
  }
  w.leases = std::move(leases);
  w.unstarted = std::move(unstarted);
  w.last_started_ms = last_started_ms;
  w.last_heard_ms = now.mono_ms;
  w.health = NewHealthState(config_.health, now.mono_ms);
  worker_ids_[w.id] = from.routing_id;
  List(w);
  spdlog::info("worker {} ready: types={} capacity={} prefetch={}", w.id, fmt::join(w.types, ","),
               w.capacity, w.prefetch);
  wire::Welcome welcome{config_.heartbeat_ms, config_.liveness, epoch_};
  if (config_.migration.enabled) {
    welcome.checkpoint_interval_ms = config_.migration.checkpoint_interval_ms;
  }
  SendToWorker(w, welcome, now);
}

std::optional<Seq> Core::HeldSeq(const WorkerState& w, const std::string& id,
                                 std::uint64_t lease) const {
  const auto seq = ParseJobId(id);
  auto in_hand = w.leases.find(lease);
  if (!seq || in_hand == w.leases.end() || in_hand->second != *seq) return std::nullopt;
  return seq;
}

Job* Core::CurrentJob(const WorkerState& w, const std::string& id, std::uint64_t lease) {
  const auto seq = HeldSeq(w, id, lease);
  return seq ? LeasedJob(*seq, lease) : nullptr;
}

Job* Core::LeasedJob(Seq seq, std::uint64_t lease) {
  auto current = leases_.find(seq);
  return current != leases_.end() && current->second == lease ? &jobs_.at(seq) : nullptr;
}

Job* Core::EndLease(WorkerState& w, const std::string& id, std::uint64_t lease,
                    std::string_view what) {
  const auto seq = HeldSeq(w, id, lease);
  Job* job = seq ? LeasedJob(*seq, lease) : nullptr;
  // A reply quoting another job's lease frees nothing.
  if (seq) ReleaseSlot(w, lease);
  if (job == nullptr) {
    spdlog::warn("job {} worker={}: {} for lease {} ignored: that lease has ended", id, w.id, what,
                 lease);
    return nullptr;
  }
  leases_.erase(job->seq);
  return job;
}

void Core::HandleDone(WorkerState& w, const wire::Done& m, Now now) {
  Job* job = EndLease(w, m.id, m.lease, "DONE");
  if (job == nullptr) return;
  RecordOutcome(w, true, now);
  job->result = m.result;
  job->error.clear();
  SetState(*job, JobState::kSucceeded, now);
  MarkDirty(*job);
}

void Core::HandleFail(WorkerState& w, const wire::Failed& m, Now now) {
  Job* job = EndLease(w, m.id, m.lease, "FAIL");
  if (job == nullptr) return;
  if (!m.permanent) RecordOutcome(w, false, now);
  FailAttempt(*job, m.error.empty() ? "failed" : m.error, m.permanent, now);
}

void Core::HandleProgress(WorkerState& w, const wire::ProgressReport& m) {
  Job* current = CurrentJob(w, m.id, m.lease);
  if (current == nullptr) {
    spdlog::debug("job {} worker={}: PROGRESS for an ended lease ignored", m.id, w.id);
    return;
  }
  Job& job = *current;
  if (m.percent || m.message) {
    wire::Progress progress;
    if (m.percent) progress.percent = std::min<std::uint32_t>(*m.percent, 100);
    if (m.message) progress.message = *m.message;
    job.progress = std::move(progress);
  }
  if (m.checkpoint) job.checkpoint = *m.checkpoint;
  MarkDirty(job);
}

void Core::HandleStarted(WorkerState& w, const wire::Started& m, Now now) {
  Job* job = CurrentJob(w, m.id, m.lease);
  if (job == nullptr || w.unstarted.erase(m.lease) == 0) {
    spdlog::debug("job {} worker={}: STARTED for lease {} ignored", m.id, w.id, m.lease);
    return;
  }
  w.last_started_ms = now.mono_ms;
  ArmLeaseDeadline(*job, m.lease, false, now);
}

void Core::HandleReturned(WorkerState& w, const wire::Returned& m, Now now) {
  const auto unstarted = w.unstarted.find(m.lease);
  const bool started = unstarted == w.unstarted.end();
  const bool recalled = !started && unstarted->second;
  Job* job = EndLease(w, m.id, m.lease, "RETURNED");
  if (job == nullptr) return;
  OnAbandoned(config_.breaker, w.breaker, now.mono_ms);
  if (started) {
    // Only a job that never started can be given back; this attempt ran, and counts.
    FailAttempt(*job, "returned by worker " + w.id + " after it started", false, now);
    return;
  }
  if (recalled) {
    // Straight to a worker that can start it now, never back to the one it left.
    if (WorkerState* target = RebalanceTarget(*job, w, {}, now)) {
      spdlog::info("job {} worker={}: given back unstarted; moved to {}", m.id, w.id, target->id);
      GiveBackAttempt(*job);
      StartAttempt(*job, *target, now);
      return;
    }
  }
  spdlog::info("job {} worker={}: given back unstarted; queued again", m.id, w.id);
  Requeue(*job, true, now);
}

// ---- dependencies ----

std::optional<JobState> Core::StateOf(Seq seq) {
  if (auto it = jobs_.find(seq); it != jobs_.end()) return it->second.state;
  auto stored = reader_.Get(seq);
  if (!stored) {
    spdlog::error("cannot read job {} from the store: {}", FormatJobId(seq),
                  stored.error().message);
    return std::nullopt;
  }
  if (!*stored) return std::nullopt;
  return (*stored)->state;
}

Core::Dependencies Core::CheckDependencies(const Job& job) {
  Dependencies result;
  for (const Seq dependency : job.links.value().after) {
    const auto state = StateOf(dependency);
    if (state && !wire::IsFinal(*state)) {
      ++result.unmet;
    } else if (job.links.value().after_policy == wire::DependencyPolicy::kAllSucceeded &&
               state != JobState::kSucceeded && !result.failed) {
      result.failed = dependency;
      result.failed_state = state ? std::string(wire::Name(*state)) : "purged";
    }
  }
  return result;
}

void Core::Await(Job& job, std::uint32_t unmet) {
  unmet_[job.seq] = unmet;
  for (const Seq dependency : job.links.value().after) {
    auto it = jobs_.find(dependency);
    if (it != jobs_.end() && !wire::IsFinal(it->second.state)) {
      dependents_[dependency].push_back(job.seq);
    }
  }
}

void Core::Release(Job& job, Now now) {
  const bool durable = PendingInsertBatch(job.seq) == nullptr;
  if (job.run_at > now.wall_ms) {
    SetState(job, JobState::kScheduled, now);
    if (durable) scheduled_.push({job.run_at, job.seq, static_cast<std::uint64_t>(job.run_at)});
  } else {
    job.run_at = 0;
    SetState(job, JobState::kQueued, now);
    if (durable) Enqueue(job);
  }
  MarkDirty(job);
}

void Core::SettleDependents(Now now) {
  // Cancelling a dependent settles it in turn, which appends to settled_: a loop, not recursion.
  while (!settled_.empty()) {
    const Seq ended = settled_.back();
    settled_.pop_back();
    auto it = dependents_.find(ended);
    if (it == dependents_.end()) continue;
    const std::vector<Seq> waiting = std::move(it->second);
    dependents_.erase(it);
    const JobState state = jobs_.at(ended).state;
    for (const Seq seq : waiting) {
      auto unmet = unmet_.find(seq);
      if (unmet == unmet_.end()) continue;  // cancelled or released since
      Job& job = jobs_.at(seq);
      if (job.links.value().after_policy == wire::DependencyPolicy::kAllSucceeded &&
          state != JobState::kSucceeded) {
        unmet_.erase(unmet);
        job.error = "dependency " + FormatJobId(ended) + " ended " + std::string(wire::Name(state));
        SetState(job, JobState::kCancelled, now);
        MarkDirty(job);
        continue;
      }
      if (--unmet->second == 0) {
        unmet_.erase(unmet);
        Release(job, now);
      }
    }
  }
}

std::vector<wire::Input> Core::InputsOf(const Job& job) {
  std::vector<wire::Input> inputs;
  inputs.reserve(job.links.value().after.size());
  for (const Seq dependency : job.links.value().after) {
    wire::Input input;
    input.id = FormatJobId(dependency);
    std::optional<Job> stored;
    const Job* found = Find(dependency);
    if (found == nullptr) {
      auto read = reader_.Get(dependency);
      if (!read) {
        spdlog::error("cannot read job {} from the store: {}", input.id, read.error().message);
      } else if (*read) {
        stored = std::move(**read);
        found = &*stored;
      }
    }
    if (found == nullptr) {
      input.state = "purged";
    } else {
      input.state = wire::Name(found->state);
      if (found->state == JobState::kSucceeded) {
        input.result = found->result.value_or("");
      } else {
        input.error = found->error;
      }
    }
    inputs.push_back(std::move(input));
  }
  return inputs;
}

Result<std::vector<Job>> Core::GroupJobs(Seq group) {
  auto stored = reader_.ListGroup(group);
  if (!stored) return std::unexpected(stored.error());
  // A group's jobs have consecutive seqs from `group` on; memory holds the newest of them.
  std::vector<Job> jobs;
  std::size_t next_stored = 0;
  for (Seq seq = group;; ++seq) {
    const bool in_store = next_stored < stored->size() && (*stored)[next_stored].seq == seq;
    const Job* in_memory = Find(seq);
    if (in_memory != nullptr && in_memory->links.value().group == group) {
      jobs.push_back(*in_memory);
    } else if (in_store) {
      jobs.push_back(std::move((*stored)[next_stored]));
    } else {
      break;
    }
    if (in_store) ++next_stored;
  }
  return jobs;
}

void Core::Purge(Now now) {
  if (config_.retention_ms == 0 || now.wall_ms < next_purge_ms_) return;
  // One purge at a time: rows listed again before their removal commits would count twice.
  if (!building_.removals.empty() || (in_flight_ && !in_flight_->removals.empty())) return;
  const auto limit = static_cast<std::uint32_t>(wire::defaults::kPurgeBatchJobs);
  auto expired =
      reader_.ListExpired(now.wall_ms - static_cast<std::int64_t>(config_.retention_ms), limit);
  next_purge_ms_ = now.wall_ms + PurgeIntervalMs(config_.retention_ms);
  if (!expired) {
    spdlog::error("purge: cannot list finished jobs: {}", expired.error().message);
    return;
  }
  for (auto& job : *expired) {
    if (jobs_.contains(job.seq)) continue;  // changed since (retried, say)
    building_.removals.push_back(std::move(job));
  }
  // A full batch means more are due: look again at the next tick.
  if (expired->size() == limit) next_purge_ms_ = now.wall_ms;
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
  if (wire::IsFinal(state) && dependents_.contains(job.seq)) settled_.push_back(job.seq);
}

void Core::MarkDirty(const Job& job, bool insert) {
  auto [it, added] = building_.dirty.emplace(job.seq, insert);
  if (!added && insert) it->second = true;
  if (watchers_.contains(job.seq)) building_.watched = true;
}

void Core::RevokeLease(WorkerState& w, Seq seq, std::uint64_t lease, const std::string& reason,
                       Now now) {
  leases_.erase(seq);
  w.unstarted.erase(lease);
  // The worker keeps the slot until it reports that the handler stopped.
  SendToWorker(w, wire::CancelJob{FormatJobId(seq), lease, reason}, now);
  // A half-open breaker's trial that ends with no outcome frees its place for another.
  OnAbandoned(config_.breaker, w.breaker, now.mono_ms);
}

void Core::GiveBackAttempt(Job& job) {
  if (job.attempts > 0) --job.attempts;
}

void Core::Enqueue(Job& job) {
  ready_.Push(job.type, job.priority, job.seq);
  dirty_types_.push_back(job.type);
}

void Core::Requeue(Job& job, bool give_back, Now now) {
  SetState(job, JobState::kQueued, now);
  MarkDirty(job);
  if (!give_back) {
    Enqueue(job);  // its attempt counts, and it waits its turn like any other
    return;
  }
  GiveBackAttempt(job);
  ready_.PushFront(job.type, job.priority, job.seq);
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
  w.unstarted.erase(lease);
  if (w.leases.erase(lease) == 0) return;
  if (w.draining) return;  // out of its types' lists
  // A worker that re-registered with a smaller capacity may still be at or over it.
  if (w.FreeSlots() == 0) return;
  for (const auto& type : w.types) {
    ++type_workers_[type].spare;
    dirty_types_.push_back(type);
  }
}

void Core::Unlist(WorkerState& w) {
  const std::uint64_t free_slots = w.FreeSlots();
  for (const auto& type : w.types) {
    auto& tw = type_workers_[type];
    std::erase(tw.workers, &w);
    tw.spare -= free_slots;
  }
}

void Core::List(WorkerState& w) {
  const std::uint64_t free_slots = w.FreeSlots();
  for (const auto& type : w.types) {
    auto& tw = type_workers_[type];
    tw.workers.push_back(&w);
    tw.spare += free_slots;
    dirty_types_.push_back(type);
  }
}

void Core::RemoveWorker(const std::string& routing_id, const std::string& why, Now now) {
  auto it = workers_.find(routing_id);
  if (it == workers_.end()) return;
  WorkerState& w = it->second;
  spdlog::info("worker {} removed: {} ({} jobs in hand)", w.id, why, w.leases.size());
  if (!w.draining) Unlist(w);
  for (const auto& [lease, seq] : w.leases) {
    Job* current = LeasedJob(seq, lease);
    if (current == nullptr) continue;
    Job& job = *current;
    const std::string error = "worker " + w.id + " lost: " + why;
    if (w.unstarted.contains(lease)) {
      // It never started there: queued again at once, the attempt given back.
      leases_.erase(seq);
      Requeue(job, true, now);
    } else if (config_.migration.MovesRunning() &&
               Decide(job.attempts, job.max_attempts, false) == AfterFailure::kRetry) {
      // Migrated: queued again at once, to resume from its last checkpoint elsewhere. The
      // attempt counts (the job may be what killed the worker).
      leases_.erase(seq);
      job.error = error + "; moved to another worker";
      Requeue(job, false, now);
    } else {
      FailAttempt(job, error, false, now);
    }
  }
  if (auto id = worker_ids_.find(w.id); id != worker_ids_.end() && id->second == routing_id) {
    worker_ids_.erase(id);
  }
  workers_.erase(it);
}

PlacementRequest Core::PlacementOf(const Job& job) const {
  PlacementRequest request;
  request.type = job.type;
  request.required = job.links.value().required;
  request.zone = job.links.value().zone;
  request.locality = job.links.value().locality;
  request.max_rtt_ms = job.links.value().max_rtt_ms;
  if (config_.scheduling.anti_affinity && job.links.value().group != 0) {
    request.anti_affinity_key = FormatGroupId(job.links.value().group);
  }
  return request;
}

void Core::BuildCandidates(const Job& job, const PlacementRequest& request, Now now,
                           bool describe) {
  candidates_.clear();
  candidate_workers_.clear();
  auto it = type_workers_.find(job.type);
  if (it == type_workers_.end()) return;
  // Labels and zones are copied only for a job that looks at them: dispatch stays cheap.
  const bool placed =
      describe || !request.required.empty() || !request.zone.empty() || request.max_rtt_ms;
  for (WorkerState* listed : it->second.workers) {
    WorkerState& w = *listed;
    CandidateView view;
    view.id = w.id;
    view.capacity = w.capacity;
    view.prefetch = w.prefetch;
    view.in_hand = static_cast<std::uint32_t>(w.leases.size());
    view.breaker_allows = MayDispatch(config_.breaker, w.breaker, now.mono_ms);
    view.healthy = w.health.healthy;
    if (w.health.smoothed_rtt_ms) {
      view.rtt_ms = static_cast<std::uint32_t>(std::lround(*w.health.smoothed_rtt_ms));
    }
    if (placed) {
      view.labels = w.labels;
      if (auto zone = w.labels.find("zone"); zone != w.labels.end()) view.zone = zone->second;
    }
    if (!request.anti_affinity_key.empty()) {
      for (const auto& [lease, seq] : w.leases) {
        if (auto held = jobs_.find(seq);
            held != jobs_.end() && held->second.links.value().group == job.links.value().group) {
          ++view.same_key_in_hand;
        }
      }
    }
    candidates_.push_back(std::move(view));
    candidate_workers_.push_back(&w);
  }
}

Core::WorkerState* Core::PickWorker(const Job& job, Now now) {
  auto it = type_workers_.find(job.type);
  if (it == type_workers_.end() || it->second.spare == 0) return nullptr;
  PlacementRequest request = PlacementOf(job);
  BuildCandidates(job, request, now);
  const Choice choice =
      scheduler_.Pick(std::move(request), job.links.value().hash_key, candidates_);
  return choice.worker ? candidate_workers_[*choice.worker] : nullptr;
}

std::string Core::WaitingReason(const Job& job, Now now) {
  PlacementRequest request = PlacementOf(job);
  BuildCandidates(job, request, now, true);
  return scheduler_.WhyWaiting(std::move(request), candidates_);
}

void Core::HandleDrain(const wire::Envelope& from, const wire::DrainRequest& r, Now now) {
  const auto cmd = wire::ClientCommand::kDrain;
  auto id = worker_ids_.find(r.worker);
  if (id == worker_ids_.end()) {
    return ReplyError(from, cmd, r.rid, StatusCode::kNotFound, "no worker " + r.worker);
  }
  WorkerState& w = workers_.at(id->second);
  wire::ClientReply reply{.command = cmd, .rid = r.rid};
  reply.moved = 0;
  if (r.drain && !w.draining) {
    Unlist(w);
    w.draining = true;
    spdlog::info("worker {} drained ({} jobs in hand)", w.id, w.leases.size());
    if (config_.migration.MovesRunning()) {
      reply.moved = MigrateJobs(w, "worker " + w.id + " drained", now);
    }
  } else if (!r.drain && w.draining) {
    w.draining = false;
    List(w);
    spdlog::info("worker {} back in service", w.id);
  }
  Reply(from, std::move(reply));
}

std::uint64_t Core::MigrateJobs(WorkerState& w, const std::string& why, Now now) {
  std::uint64_t moved = 0;
  for (const auto& [lease, seq] : w.leases) {
    Job* job = LeasedJob(seq, lease);
    if (job == nullptr) continue;
    RevokeLease(w, seq, lease, why + ": moved to another worker", now);
    job->error = why + "; moved";
    Requeue(*job, true, now);  // not the job's fault
    ++moved;
  }
  return moved;
}

void Core::CheckHealth(WorkerState& w, Now now) {
  if (broker::OnTick(config_.health, w.health, now.mono_ms) == HealthChange::kBecameUnhealthy) {
    spdlog::warn("worker {}: unhealthy, {} health checks unanswered in a row; no new jobs", w.id,
                 config_.health.unhealthy_threshold);
  }
  if (Due(config_.health, w.health, now.mono_ms)) {
    const std::uint64_t check = next_check_++;
    OnSent(config_.health, w.health, check, now.mono_ms);
    SendToWorker(w, wire::Heartbeat{.check = check}, now);
  }
}

void Core::RecordOutcome(WorkerState& w, bool success, Now now) {
  const BreakerChange change = success ? OnSuccess(config_.breaker, w.breaker, now.mono_ms)
                                       : OnFailure(config_.breaker, w.breaker, now.mono_ms);
  if (change == BreakerChange::kOpened) {
    spdlog::warn(
        "worker {}: circuit breaker open for {} after failures in a row", w.id,
        wire::FormatDuration(static_cast<std::int64_t>(config_.breaker.recovery_timeout_ms)));
    if (config_.migration.MovesRunning()) {
      MigrateJobs(w, "worker " + w.id + " circuit breaker open", now);
    }
  } else if (change == BreakerChange::kClosed) {
    spdlog::info("worker {}: circuit breaker closed, trial jobs succeeded", w.id);
  }
}

void Core::Dispatch(Now now) {
  SettleDependents(now);
  while (!dirty_types_.empty()) {
    const std::string type = std::move(dirty_types_.back());
    dirty_types_.pop_back();
    auto workers = type_workers_.find(type);
    while (workers != type_workers_.end() && workers->second.spare > 0 && ready_.Depth(type) > 0) {
      // The first job some worker may take: a job that no free worker suits (placement, open
      // breakers) does not hold up the ones behind it. The scan is bounded.
      WorkerState* w = nullptr;
      const auto seq = ready_.FindFirst(type, kPlacementScan, [&](Seq candidate) {
        w = PickWorker(jobs_.at(candidate), now);
        return w != nullptr;
      });
      if (!seq) break;
      Job& job = jobs_.at(*seq);
      assert(job.state == JobState::kQueued);
      ready_.Remove(type, job.priority, *seq);
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
  OnDispatch(config_.breaker, w.breaker, now.mono_ms);
  // A worker with prefetch may hold the job a while before it starts: its timeout counts from
  // STARTED. Held while the worker starts none of its jobs for a whole timeout (its threads
  // are stuck), it is taken back.
  if (w.prefetch > 0) w.unstarted.emplace(lease, false);
  ArmLeaseDeadline(job, lease, w.prefetch > 0, now);
  wire::JobDispatch dispatch;
  dispatch.id = FormatJobId(job.seq);
  dispatch.type = job.type;
  dispatch.payload = job.payload;
  dispatch.lease = lease;
  dispatch.attempt = job.attempts;
  dispatch.timeout_ms = job.timeout_ms;
  dispatch.priority = job.priority;
  dispatch.checkpoint = job.checkpoint.ToOptional();
  if (!job.links.value().after.empty()) dispatch.inputs = InputsOf(job);
  SendToWorker(w, std::move(dispatch), now);
}

std::int64_t Core::LeaseSpanMs(const Job& job) const {
  const auto grace = static_cast<std::int64_t>(config_.heartbeat_ms * config_.liveness);
  return static_cast<std::int64_t>(job.timeout_ms) + grace;
}

void Core::ArmLeaseDeadline(const Job& job, std::uint64_t lease, bool to_start, Now now) {
  lease_deadlines_.push({now.mono_ms + LeaseSpanMs(job), job.seq, lease, to_start});
}

Core::WorkerState* Core::RebalanceTarget(
    const Job& job, const WorkerState& source,
    const std::unordered_map<const WorkerState*, std::uint32_t>& planned, Now now) {
  PlacementRequest request = PlacementOf(job);
  BuildCandidates(job, request, now);
  std::optional<std::size_t> from;
  for (std::size_t i = 0; i < candidates_.size(); ++i) {
    if (candidate_workers_[i] == &source) from = i;
    if (auto p = planned.find(candidate_workers_[i]); p != planned.end()) {
      candidates_[i].in_hand += p->second;
    }
  }
  const auto target = scheduler_.RebalanceTarget(std::move(request), candidates_, from);
  return target ? candidate_workers_[*target] : nullptr;
}

void Core::Rebalance(Now now) {
  // Jobs recalled in this pass for each target: they count as its own until they arrive.
  std::unordered_map<const WorkerState*, std::uint32_t> planned;
  for (auto& [routing_id, w] : workers_) {
    if (w.draining) continue;
    const bool due = RebalanceDue(config_.scheduling, w.overloaded_since_ms, w.leases.size(),
                                  w.capacity, now.mono_ms);
    if (!due || w.unstarted.empty()) continue;
    // Those that would start last go first.
    std::vector<std::uint64_t> leases;
    for (const auto& [lease, recalled] : w.unstarted) {
      if (!recalled) leases.push_back(lease);
    }
    std::sort(leases.rbegin(), leases.rend());
    std::uint32_t recalled = 0;
    for (const auto lease : leases) {
      // Every unstarted lease is a current one (those that end leave `unstarted`).
      const Seq seq = w.leases.at(lease);
      assert(leases_.at(seq) == lease);
      const WorkerState* target = RebalanceTarget(jobs_.at(seq), w, planned, now);
      if (target == nullptr) continue;
      ++planned[target];
      w.unstarted[lease] = true;
      SendToWorker(w, wire::Recall{FormatJobId(seq), lease}, now);
      ++recalled;
    }
    if (recalled > 0) {
      spdlog::info(
          "worker {}: {} jobs in hand for capacity {} for {}; recalled {} it has not started", w.id,
          w.leases.size(), w.capacity,
          wire::FormatDuration(static_cast<std::int64_t>(config_.scheduling.rebalance_interval_ms)),
          recalled);
    }
  }
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
    if (due.to_start) {
      // A job held by a worker with prefetch: one that has started has its own deadline.
      WorkerState* w = WorkerOf(job);
      if (w == nullptr || !w->unstarted.contains(due.token)) continue;
      // A worker that keeps starting jobs is working through its queue, however long: only one
      // that has started none for a whole timeout is stuck.
      const std::int64_t restarted = w->last_started_ms + LeaseSpanMs(job);
      if (restarted > due.at) {
        lease_deadlines_.push({restarted, due.seq, due.token, true});
        continue;
      }
      spdlog::warn("job {} worker={}: held while the worker started nothing for {}; queued again",
                   FormatJobId(job.seq), w->id,
                   wire::FormatDuration(static_cast<std::int64_t>(job.timeout_ms)));
      RevokeLease(*w, job.seq, due.token, "not started in time", now);
      Requeue(job, true, now);
      continue;
    }
    if (WorkerState* w = WorkerOf(job)) {
      SendToWorker(*w, wire::CancelJob{FormatJobId(job.seq), due.token, "timed out"}, now);
      RecordOutcome(*w, false, now);
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
        continue;
      }
      CheckHealth(w, now);
      if (now.mono_ms - w.last_sent_ms >= hb) SendToWorker(w, wire::Heartbeat{}, now);
      // An open breaker whose recovery time has passed takes trial jobs: look at its types.
      if (w.breaker.phase == BreakerPhase::kOpen &&
          PhaseAt(config_.breaker, w.breaker, now.mono_ms) == BreakerPhase::kHalfOpen) {
        dirty_types_.insert(dirty_types_.end(), w.types.begin(), w.types.end());
      }
    }
    for (const auto& routing_id : dead) {
      RemoveWorker(routing_id, "silent for " + wire::FormatDuration(expiry), now);
    }
    if (config_.scheduling.strategy == Strategy::kAdaptive) Rebalance(now);
    next_heartbeat_scan_ms_ = now.mono_ms + std::max<std::int64_t>(hb / 4, 1);
  }
  Purge(now);
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
  if (config_.retention_ms != 0) consider(next_purge_ms_ - now.wall_ms);
  if (!in_flight_ && building_.lazy_since_ms) {
    consider(*building_.lazy_since_ms + static_cast<std::int64_t>(config_.commit_delay_ms) -
             now.mono_ms);
  }
  return due;
}

// ---- group commit ----

std::optional<WriteBatch> Core::TakeBatch(Now now) {
  if (in_flight_) return std::nullopt;
  const bool waited_for =
      !building_.replies.empty() || !building_.to_enqueue.empty() || building_.watched;
  const bool lazy = !building_.dirty.empty() || !building_.removals.empty();
  if (!waited_for && lazy && config_.commit_delay_ms != 0 &&
      building_.dirty.size() + building_.removals.size() < kMaxHeldBackWrites) {
    if (!building_.lazy_since_ms) building_.lazy_since_ms = now.mono_ms;
    const auto held = static_cast<std::uint64_t>(now.mono_ms - *building_.lazy_since_ms);
    if (held < config_.commit_delay_ms) return std::nullopt;
  }
  return TakeAll();
}

std::optional<WriteBatch> Core::TakeAll() {
  if (in_flight_) return std::nullopt;
  if (building_.dirty.empty() && building_.removals.empty()) {
    SendDeferred(building_.replies);
    building_.replies.clear();
    return std::nullopt;
  }
  WriteBatch batch;
  batch.writes.reserve(building_.dirty.size());
  for (const auto& [seq, insert] : building_.dirty) {
    const Job& job = jobs_.at(seq);
    batch.writes.push_back({.insert = insert, .job = insert ? job : UpdateRow(job)});
  }
  for (const ExpiredJob& expired : building_.removals) {
    wire::RecordWrite write{.remove = true};
    write.job.seq = expired.seq;
    batch.writes.push_back(std::move(write));
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
      unmet_.erase(seq);
      dependents_.erase(seq);
      building_.dirty.erase(seq);
      watchers_.erase(seq);
      jobs_.erase(it);
    }
    for (const auto& deferred : done.replies) {
      wire::ClientReply reply{
          .command = deferred.command, .rid = deferred.rid, .status = StatusCode::kStorageError};
      reply.message = "the broker could not commit the job: " + result.error().message;
      Reply(deferred.to, std::move(reply));
    }
    for (const auto& [seq, insert] : done.dirty) {
      if (!insert && jobs_.contains(seq)) MarkDirty(jobs_.at(seq));
    }
    return;
  }
  SendDeferred(done.replies);
  for (const ExpiredJob& expired : done.removals) {
    --counts_[StateIndex(expired.state)];
    if (auto key = keys_.find(expired.key); key != keys_.end() && key->second == expired.seq) {
      keys_.erase(key);
    }
  }
  if (!done.removals.empty()) {
    purged_ += done.removals.size();
    spdlog::info("purged {} finished jobs past their retention of {}", done.removals.size(),
                 wire::FormatDuration(static_cast<std::int64_t>(config_.retention_ms)));
  }
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

void Core::SendDeferred(std::vector<DeferredReply>& replies) {
  // One ACCEPTED per client carries its batched jobs, in the order they were accepted, up to
  // max_batch_acks each. It takes the outbox slot of its first job, so that a client's replies
  // keep the order of its requests.
  struct Fold {
    std::size_t slot = 0;  // in outbox_
    wire::ClientReply reply;
  };
  std::vector<Fold> folded;
  std::unordered_map<std::string_view, std::size_t> open;  // routing id -> index in folded
  for (auto& deferred : replies) {
    if (!deferred.batched) {
      outbox_.push_back({deferred.to, std::move(deferred.frames)});
      continue;
    }
    auto [it, added] = open.try_emplace(deferred.to.routing_id, folded.size());
    if (added || folded[it->second].reply.rids->size() >=
                     static_cast<std::size_t>(wire::limits::kMaxBatchAcks)) {
      it->second = folded.size();
      Fold fold{.slot = outbox_.size(),
                .reply = {.command = wire::ClientCommand::kSubmit,
                          .rid = deferred.rid,
                          .status = StatusCode::kAccepted}};
      fold.reply.rids.emplace();
      fold.reply.ids.emplace();
      folded.push_back(std::move(fold));
      outbox_.push_back({deferred.to, {}});
    }
    wire::ClientReply& reply = folded[it->second].reply;
    reply.rids->push_back(deferred.rid);
    reply.ids->push_back(FormatJobId(*deferred.batched));
  }
  for (auto& [slot, reply] : folded) {
    reply.id = reply.ids->front();
    if (reply.rids->size() == 1) {
      reply.rids.reset();
      reply.ids.reset();
    }
    outbox_[slot].frames = wire::Encode(reply);
  }
}

Core::DeferredReply Core::Defer(const wire::Envelope& to, const wire::ClientReply& reply) {
  return {to, reply.command, reply.rid, wire::Encode(reply)};
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

Core::WorkerState* Core::WorkerOf(const Job& job) {
  auto id = worker_ids_.find(job.worker);
  return id == worker_ids_.end() ? nullptr : FindWorker(id->second);
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
  info.strategy = Name(config_.scheduling.strategy);
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
    wi.prefetch = w.prefetch;
    wi.waiting = static_cast<std::uint32_t>(w.unstarted.size());
    wi.labels = w.labels;
    wi.last_seen_ms =
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, now.mono_ms - w.last_heard_ms));
    wi.breaker = Name(PhaseAt(config_.breaker, w.breaker, now.mono_ms));
    wi.health = HealthName(w.health);
    if (w.health.smoothed_rtt_ms) {
      wi.rtt_ms = static_cast<std::uint64_t>(std::lround(*w.health.smoothed_rtt_ms));
    }
    wi.draining = w.draining;
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
  info.name = config_.cluster.name;
  for (const auto& node : config_.cluster.nodes) {
    wire::NodeInfo& ni = info.nodes.emplace_back();
    ni.id = node.id;
    ni.host = node.host;
    ni.role = Name(node.role);
    if (node.capacity != 0) ni.capacity = node.capacity;
    ni.zone = node.zone;
    if (node.role == NodeRole::kWorker) ni.up = worker_ids_.contains(node.id);
  }
  return info;
}

}  // namespace claw::broker
