// The broker's decisions, with no sockets, threads or clocks: messages and time go in, messages
// to send and rows to commit come out. broker/server.cpp is the thin I/O shell around it.
//
// Durability works by group commit. Every change to a job marks it dirty in the batch being
// built; the shell takes that batch (TakeBatch) when the store writer is idle, commits it on the
// writer thread and reports back (OnBatchDone). What must wait for the disk waits for the batch
// that carries it: an ACCEPTED reply and the first dispatch of a new job, and every WATCH update.
// Everything else (dispatch, completions) goes on in memory meanwhile, so commits never block
// dispatch. At most one batch is in flight; the next one fills while it commits.
// A batch that nothing waits for (no reply, no new job, no watched job) is held back for up to
// commit_delay_ms, so that a busy broker commits such changes in few, large batches.
//
// Job lifecycle (schema/PROTOCOL.md draws it):
//   submit -> queued -> running -> succeeded          (a delayed submit starts scheduled)
//                ^         |-> scheduled (failed attempt, backoff) -> queued
//                |         |-> dead (permanent failure or attempts used up)
//   retry -------+---- dead / cancelled   cancel: queued|scheduled|waiting|running -> cancelled
//   submit with `after` -> waiting -> queued (or scheduled) once its dependencies have ended,
//                                  -> cancelled when one failed under all_succeeded
//
// Dependencies are resolved in memory: `unmet_` counts what each waiting job still waits for
// and `dependents_` lists who waits for whom. A job that ends queues its seq in `settled_`, and
// the next Dispatch releases (or cancels) the jobs waiting on it. Finished jobs past their
// retention are purged by `remove` writes, which the standby applies like any other write.
//
// Threads: one thread owns a Core. Time: `Now` carries a monotonic clock for leases and
// heartbeats and the wall clock for what is persisted or shown (run_at, timestamps).
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/circuit_breaker.hpp"
#include "broker/cluster_config.hpp"
#include "broker/health.hpp"
#include "broker/job.hpp"
#include "broker/job_store.hpp"
#include "broker/ready_queues.hpp"
#include "broker/retry_policy.hpp"
#include "broker/strategy.hpp"
#include "schema/transport.hpp"

namespace claw::broker {

struct Now {
  std::int64_t mono_ms = 0;
  std::int64_t wall_ms = 0;
};

struct CoreConfig {
  std::string role = "standalone";
  std::uint64_t heartbeat_ms = wire::defaults::kHeartbeatMs;
  std::uint32_t liveness = wire::defaults::kLiveness;
  std::uint64_t max_pending = wire::defaults::kMaxPendingJobs;
  std::uint64_t max_pending_per_type = wire::defaults::kMaxPendingPerType;  // 0: no limit
  std::uint64_t max_payload_bytes = wire::defaults::kMaxPayloadBytes;
  std::uint64_t job_timeout_ms = wire::defaults::kJobTimeoutMs;
  std::uint32_t max_attempts = wire::defaults::kMaxAttempts;
  std::uint64_t backoff_ms = wire::defaults::kBackoffMs;
  std::uint64_t max_backoff_ms = wire::defaults::kMaxBackoffMs;
  std::uint32_t jitter_percent = wire::defaults::kBackoffJitterPercent;
  // Finished jobs are purged this long after they end; 0 keeps them forever.
  std::uint64_t retention_ms = wire::defaults::kRetentionMs;
  // Changes that no reply and no watcher waits for are committed at most this late, so that a
  // busy broker commits them in few batches (and a job's dispatch and completion in one write).
  // A crash within it loses no accepted job: the jobs concerned run again.
  std::uint64_t commit_delay_ms = wire::defaults::kCommitDelayMs;
  SchedulingConfig scheduling;  // which worker gets a job (broker/strategy.hpp)
  // Per worker. Only failures that may be the worker's fault count: a retryable FAIL and a
  // lease that timed out; a permanent FAIL (bad input) does not.
  BreakerConfig breaker;
  // Health checks: a worker that leaves unhealthy_threshold checks unanswered in a row gets no
  // new jobs until it answers healthy_threshold in a row.
  HealthConfig health;
  // What happens to the jobs a worker is running when it is drained, its breaker opens or it
  // is lost: with migrate_in_progress they are queued again at once, checkpoint kept.
  MigrationConfig migration;
  // The cluster section: its name, and its nodes (a worker node is the worker with its id).
  ClusterConfig cluster;
  bool operator==(const CoreConfig&) const = default;
};

// A message for the shell to send.
struct Outgoing {
  wire::Envelope to;
  wire::Frames frames;
};

class Core {
 public:
  // `reader` serves reads of jobs no longer held in memory; it must outlive the Core.
  Core(CoreConfig config, JobStore& reader, std::uint64_t epoch, std::uint64_t seed);

  // Loads the unfinished jobs. Jobs that were running when the broker stopped go back to the
  // queue (their attempt counted; dead if it was the last one).
  Status Recover(Now now);

  void OnInbound(const wire::Envelope& from, wire::Inbound message, Now now);
  // A message that could not be decoded: answered when it can be, always counted.
  void OnMalformed(const wire::Envelope& from, const wire::DecodeError& error, Now now);
  // A send failed because the peer is gone.
  void OnUnreachable(const wire::Envelope& to, Now now);
  // Does whatever is due: scheduled jobs, lease deadlines, heartbeats.
  void OnTick(Now now);

  // The batch to commit next, or nullopt when nothing is dirty, a batch is already in flight,
  // or the batch holds only changes nobody waits for (dispatches, completions of unwatched
  // jobs) and is younger than commit_delay_ms: those go in one commit instead of many.
  std::optional<WriteBatch> TakeBatch(Now now);
  // As TakeBatch, but nothing is held back (stopping, tests).
  std::optional<WriteBatch> TakeAll();
  // The in-flight batch was committed (or failed: its new jobs are refused with STORAGE_ERROR
  // and its updates are written again with the next batch).
  void OnBatchDone(const Status& result, Now now);
  bool batch_in_flight() const { return in_flight_.has_value(); }

  // Milliseconds until the next thing is due (heartbeat, deadline, scheduled job, a held-back
  // batch).
  std::int64_t MillisUntilDue(Now now) const;

  std::vector<Outgoing>& outbox() { return outbox_; }

  // Where CLUSTER replies get the broker pair's state from (none for a standalone broker).
  void set_pair_info(std::function<std::optional<wire::PairInfo>(Now)> source) {
    pair_info_ = std::move(source);
  }

  // For tests and the cluster view.
  std::uint64_t epoch() const { return epoch_; }
  // Finished jobs purged (retention) since start.
  std::uint64_t purged() const { return purged_; }
  const Job* Find(Seq seq) const;
  std::uint64_t CountIn(wire::JobState state) const;
  wire::ClusterInfo Cluster(Now now) const;
  std::uint64_t malformed() const { return malformed_; }

 private:
  struct Watcher {
    wire::Envelope to;
    std::uint64_t rid = 0;
  };
  struct WorkerState {
    wire::Envelope to;
    std::string id;
    std::vector<std::string> types;
    std::uint32_t capacity = 1;
    std::uint32_t prefetch = 0;  // jobs it may hold beyond capacity, waiting to start
    wire::Labels labels;
    std::unordered_map<std::uint64_t, Seq> leases;  // jobs in hand: lease -> job
    // Of `leases`, those a worker with prefetch has not said STARTED for: lease -> recalled.
    std::unordered_map<std::uint64_t, bool> unstarted;
    std::optional<std::int64_t> overloaded_since_ms;  // adaptive (RebalanceDue)
    std::int64_t last_heard_ms = 0;
    std::int64_t last_sent_ms = 0;
    std::int64_t last_started_ms = 0;  // its last STARTED: a held job's clock restarts there
    BreakerState breaker;
    HealthState health;
    bool draining = false;  // DRAIN: out of its types' lists, no new jobs
    std::uint64_t FreeSlots() const { return broker::FreeSlots(capacity, prefetch, leases.size()); }
  };
  struct TypeWorkers {
    // Workers serving this type, in the order they were listed; entries of workers_, whose
    // addresses hold until they are erased (Unlist comes first).
    std::vector<WorkerState*> workers;
    std::uint64_t spare = 0;  // free slots over those workers
  };
  struct Deadline {
    std::int64_t at = 0;  // mono ms for leases, wall ms for scheduled jobs
    Seq seq = 0;
    std::uint64_t token = 0;  // lease, or run_at for scheduled jobs
    bool to_start = false;    // a held job (prefetch): its worker must have started one by then
    bool operator>(const Deadline& o) const { return at > o.at; }
  };
  using DeadlineHeap = std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>>;
  // A reply that waits for its batch's commit, encoded at once (a ClientReply is 2 KiB, its
  // frames a few dozen bytes). If the commit fails, a STORAGE_ERROR for the same command and rid
  // goes instead. The ACCEPTED of a new job whose SUBMIT asked for batch_ack is not encoded:
  // `batched` holds its job, and the commit sends one reply per client for all of them.
  struct DeferredReply {
    wire::Envelope to;
    wire::ClientCommand command = wire::ClientCommand::kSubmit;
    std::uint64_t rid = 0;
    wire::Frames frames;
    std::optional<Seq> batched;
  };
  struct Batch {
    std::map<Seq, bool> dirty;           // seq -> needs insert
    std::vector<DeferredReply> replies;  // ACCEPTED replies, sent once the batch is durable
    std::vector<Seq> to_enqueue;         // new jobs, queued (or timed, if delayed) once durable
    std::vector<ExpiredJob> removals;    // finished jobs to purge
    bool watched = false;                // a dirty job has a watcher, who hears at the commit
    std::optional<std::int64_t> lazy_since_ms;  // mono ms TakeBatch first held it back
  };
  // Why a request is refused.
  struct Refusal {
    wire::StatusCode status = wire::StatusCode::kBadRequest;
    std::string message;
  };
  // Where a job's dependencies stand.
  struct Dependencies {
    std::uint32_t unmet = 0;    // not ended yet
    std::optional<Seq> failed;  // one that ended without success, under all_succeeded
    std::string failed_state;   // its state ("purged" if it no longer exists)
  };

  // Client requests.
  void HandleSubmit(const wire::Envelope& from, wire::SubmitRequest& r, Now now);
  void HandleStatus(const wire::Envelope& from, const wire::StatusRequest& r, Now now);
  void HandleList(const wire::Envelope& from, const wire::ListRequest& r);
  void HandleCancel(const wire::Envelope& from, const wire::CancelRequest& r, Now now);
  void HandleRetry(const wire::Envelope& from, const wire::RetryRequest& r, Now now);
  void HandleWatch(const wire::Envelope& from, const wire::WatchRequest& r);
  void HandleGroupSubmit(const wire::Envelope& from, wire::GroupSubmitRequest& r, Now now);
  void HandleGroupStatus(const wire::Envelope& from, const wire::GroupStatusRequest& r);
  void HandleDrain(const wire::Envelope& from, const wire::DrainRequest& r, Now now);
  // Worker messages.
  void HandleWorker(const wire::Envelope& from, wire::WorkerMessage message, Now now);
  void HandleReady(const wire::Envelope& from, const wire::Ready& m, Now now);
  void HandleDone(WorkerState& w, const wire::Done& m, Now now);
  void HandleFail(WorkerState& w, const wire::Failed& m, Now now);
  void HandleProgress(WorkerState& w, const wire::ProgressReport& m);
  void HandleStarted(WorkerState& w, const wire::Started& m, Now now);
  void HandleReturned(WorkerState& w, const wire::Returned& m, Now now);
  // Frees the slot `lease` held on `w`; the job if the lease was still its current one (it has
  // ended now), else nullptr (a late or foreign reply, logged and ignored).
  Job* EndLease(WorkerState& w, const std::string& id, std::uint64_t lease, std::string_view what);
  // The seq of the job `id` names if `w` holds `lease` for it.
  std::optional<Seq> HeldSeq(const WorkerState& w, const std::string& id,
                             std::uint64_t lease) const;
  // That job, if `lease` is also its current lease; nullptr for a late or foreign report.
  Job* CurrentJob(const WorkerState& w, const std::string& id, std::uint64_t lease);
  // Job `seq`, if `lease` is its current lease.
  Job* LeasedJob(Seq seq, std::uint64_t lease);

  void Reply(const wire::Envelope& to, wire::ClientReply reply);
  // Sends the replies that waited for a commit: the batched ACCEPTEDs folded per client.
  void SendDeferred(std::vector<DeferredReply>& replies);
  static DeferredReply Defer(const wire::Envelope& to, const wire::ClientReply& reply);
  void ReplyError(const wire::Envelope& to, wire::ClientCommand command, std::uint64_t rid,
                  wire::StatusCode status, std::string message);
  void SendToWorker(WorkerState& w, const wire::WorkerMessage& message, Now now);

  // A copy of the job a request names, from memory or else from the store. When there is none
  // or the store cannot be read, the request is answered (NOT_FOUND or INTERNAL) and nullopt
  // returned.
  std::optional<Job> Lookup(const wire::Envelope& from, wire::ClientCommand command,
                            std::uint64_t rid, const std::string& id);
  // The same, but the job in memory (a finished one is loaded back) so that it can change.
  Job* LoadForUpdate(const wire::Envelope& from, wire::ClientCommand command, std::uint64_t rid,
                     const std::string& id);
  // New jobs: checks, admission, creation.
  std::optional<Refusal> CheckSpec(const wire::JobSpec& spec) const;
  // An idempotency or routing key, when there is one: 1 to max_key_bytes bytes.
  static std::optional<Refusal> CheckKey(std::string_view name,
                                         const std::optional<std::string>& key);
  // The seq of an existing job named in `after`; refuses an unknown id and, under all_succeeded,
  // a dependency that already failed.
  std::expected<Seq, Refusal> ResolveDependency(const std::string& id,
                                                wire::DependencyPolicy policy);
  // QUEUE_FULL if `n` new jobs would go over the broker-wide limit of pending jobs, or `n` of
  // `type` over the per-type limit.
  std::optional<Refusal> AdmitTotal(std::uint64_t n) const;
  std::optional<Refusal> AdmitType(const std::string& type, std::uint64_t n) const;
  // A job built from `spec` (its bytes move), in memory only (queued or scheduled, not counted).
  Job& CreateJob(Seq seq, wire::JobSpec&& spec, Now now);
  // Counts a created job and puts its insert in the building batch; a job whose dependencies
  // have not all ended starts waiting.
  void Accept(Job& job);
  void Refuse(const wire::Envelope& to, wire::ClientCommand command, std::uint64_t rid,
              const Refusal& refusal);

  // Dependencies.
  Dependencies CheckDependencies(const Job& job);
  // The state of a job in memory or in the store; nullopt when it does not exist (purged).
  std::optional<wire::JobState> StateOf(Seq seq);
  // Makes `job` wait for its unmet dependencies.
  void Await(Job& job, std::uint32_t unmet);
  // A waiting job whose dependencies have all ended: queued, or scheduled if it has a run_at.
  void Release(Job& job, Now now);
  // Releases or cancels the jobs waiting on those that ended since the last call.
  void SettleDependents(Now now);
  // Each dependency's outcome, for the JOB message.
  std::vector<wire::Input> InputsOf(const Job& job);

  // Every job of a group, members then follow-up, from memory where it is newer.
  Result<std::vector<Job>> GroupJobs(Seq group);
  // Purges a batch of finished jobs past their retention.
  void Purge(Now now);

  // The batch that will make the job's insert durable, or nullptr if it already is.
  Batch* PendingInsertBatch(Seq seq);
  void NotifyWatchers(const Job& job);
  void SetState(Job& job, wire::JobState state, Now now);
  void MarkDirty(const Job& job, bool insert = false);
  void Enqueue(Job& job);
  // Queues a job whose lease has ended again at once, its checkpoint kept. With `give_back` (not
  // the job's fault, or it never started) the attempt does not count and the job goes ahead of
  // its priority's queue, having waited its turn; otherwise it goes to the back, since it may be
  // what ended its worker.
  void Requeue(Job& job, bool give_back, Now now);
  // Ends a lease the broker takes back without an outcome: the worker is told to stop (CANCEL
  // `reason`), and a half-open breaker's trial is freed.
  void RevokeLease(WorkerState& w, Seq seq, std::uint64_t lease, const std::string& reason,
                   Now now);
  // An attempt that did not count: never below zero.
  static void GiveBackAttempt(Job& job);
  // A running attempt ended without success.
  void FailAttempt(Job& job, const std::string& error, bool permanent, Now now);
  // Ends a lease: the slot it held is free again.
  void ReleaseSlot(WorkerState& w, std::uint64_t lease);
  void RemoveWorker(const std::string& routing_id, const std::string& why, Now now);
  // Takes a worker out of its types' lists and spare-slot counts.
  void Unlist(WorkerState& w);
  void Dispatch(Now now);
  // adaptive: recalls jobs that overloaded workers hold but have not started, for less loaded
  // workers to take (Scheduler::RebalanceTarget).
  void Rebalance(Now now);
  // The lease deadline: the worker enforces the timeout itself, this catches one that does not.
  // A lease's time: the job's timeout plus the heartbeat grace.
  std::int64_t LeaseSpanMs(const Job& job) const;
  // With `to_start`, the deadline by which the worker holding the job must have started one.
  void ArmLeaseDeadline(const Job& job, std::uint64_t lease, bool to_start, Now now);
  // adaptive: the worker that should take `job` from `source` (Scheduler::RebalanceTarget), with
  // `planned` jobs counted as already in hand; nullptr for none.
  WorkerState* RebalanceTarget(const Job& job, const WorkerState& source,
                               const std::unordered_map<const WorkerState*, std::uint32_t>& planned,
                               Now now);
  // What `job` asks of its worker.
  PlacementRequest PlacementOf(const Job& job) const;
  // Fills candidates_ and candidate_workers_ with every worker serving `job`'s type.
  // With `describe`, every view carries its worker's labels and zone (for WaitingReason), not only
  // those of a job whose placement looks at them.
  void BuildCandidates(const Job& job, const PlacementRequest& request, Now now,
                       bool describe = false);
  // The worker the strategy gives `job` to, or nullptr when none may take it now.
  WorkerState* PickWorker(const Job& job, Now now);
  // Why a queued job waits (no worker may take it now), or "" when a worker could.
  std::string WaitingReason(const Job& job, Now now);
  // Breaker bookkeeping for an attempt that ended on `w`.
  void RecordOutcome(WorkerState& w, bool success, Now now);
  // Health checks: answers, timeouts, and sending the checks that are due.
  void CheckHealth(WorkerState& w, Now now);
  // Puts the jobs `w` is running back in the queue at once (the worker is told to stop them),
  // their attempt given back and their checkpoint kept. Returns how many.
  std::uint64_t MigrateJobs(WorkerState& w, const std::string& why, Now now);
  // Puts a worker in its types' lists (new, or back after Unlist).
  void List(WorkerState& w);
  void StartAttempt(Job& job, WorkerState& w, Now now);

  WorkerState* FindWorker(const std::string& routing_id);
  // The worker that holds (or last held) `job`'s lease, if it is still connected.
  WorkerState* WorkerOf(const Job& job);
  std::uint64_t PendingOfType(const std::string& type) const;

  CoreConfig config_;
  JobStore& reader_;
  std::uint64_t epoch_;
  std::mt19937_64 rng_;

  std::unordered_map<Seq, Job> jobs_;  // unfinished jobs, and finished ones not yet evicted
  std::unordered_map<Seq, std::uint64_t> leases_;  // running job -> its current lease
  std::unordered_map<std::string, Seq> keys_;
  Seq next_seq_ = 1;
  std::uint64_t next_lease_ = 1;
  std::array<std::uint64_t, wire::kJobStates.size()> counts_{};
  std::unordered_map<std::string, std::uint64_t> pending_by_type_;

  ReadyQueues ready_;
  std::vector<std::string> dirty_types_;  // types that may be dispatchable now
  DeadlineHeap lease_deadlines_;
  DeadlineHeap scheduled_;

  std::unordered_map<std::string, WorkerState> workers_;     // by routing id
  std::unordered_map<std::string, std::string> worker_ids_;  // worker id -> routing id
  std::unordered_map<std::string, TypeWorkers> type_workers_;
  std::unordered_map<std::string, std::size_t>
      worker_nodes_;  // id -> index in config_.cluster.nodes
  Scheduler scheduler_;
  std::vector<CandidateView> candidates_;        // PickWorker's scratch: views, and
  std::vector<WorkerState*> candidate_workers_;  // the workers they show
  std::int64_t next_heartbeat_scan_ms_ = 0;
  std::uint64_t next_check_ = 1;

  std::unordered_map<Seq, std::vector<Watcher>> watchers_;

  std::unordered_map<Seq, std::uint32_t> unmet_;          // waiting job -> unmet dependencies
  std::unordered_map<Seq, std::vector<Seq>> dependents_;  // job -> jobs waiting on it
  std::vector<Seq> settled_;                              // ended jobs with dependents
  std::int64_t next_purge_ms_ = 0;                        // wall clock
  std::uint64_t purged_ = 0;

  Batch building_;
  std::optional<Batch> in_flight_;
  std::vector<Outgoing> outbox_;
  std::uint64_t malformed_ = 0;
  std::function<std::optional<wire::PairInfo>(Now)> pair_info_;
};

}  // namespace claw::broker
