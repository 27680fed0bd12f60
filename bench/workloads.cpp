// The workloads: see the header, and WORKLOADS.md for what each one measures.
#include "bench/workloads.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <memory>
#include <thread>

#include "bench/broker_process.hpp"
#include "bench/client.hpp"
#include "bench/measure.hpp"
#include "bench/process.hpp"
#include "broker/sqlite_store.hpp"
#include "schema/protocol_constants.hpp"

namespace claw::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Deadlines: generous, since they only turn a hang into a clear failure.
constexpr milliseconds kConnectDeadline{10000};
constexpr milliseconds kWorkersDeadline{30000};
constexpr milliseconds kStallTimeout{60000};
constexpr milliseconds kClusterTimeout{5000};
constexpr milliseconds kLatencyJobTimeout{30000};
constexpr milliseconds kRestartDeadline{300000};
constexpr milliseconds kRestartSubmitTimeout{120000};
constexpr milliseconds kRestartPingTimeout{1000};
constexpr milliseconds kWorkerStopGrace{10000};
constexpr milliseconds kConnectRetry{5};
// Between two tries to SUBMIT to a restarting broker that is not listening yet.
constexpr milliseconds kRestartRetry{1};
// How often the completion monitor asks CLUSTER.
constexpr milliseconds kCompletionPoll{5};
// Room above the jobs a run submits, within the broker's pending limit.
constexpr std::uint64_t kPendingHeadroom = 1000;

// Where the workers ran their handler, in the figures and their notes.
void NoteHandlers(Figures& f, const Environment& env) {
  f.handlers = env.pool_handlers ? "pool" : "inline";
  f.notes.push_back(env.pool_handlers
                        ? "workers: no-op handler on a pool thread (one thread hop each way)"
                        : "workers: no-op handler inline on the worker's loop thread");
}

const char* const kClockE2E =
    "clock: first submit to the N-th completion, seen by polling CLUSTER every 5 ms on a second "
    "DEALER (so up to ~5 ms late)";

std::string JobType(const std::string& workload, const std::string& stage = "") {
  std::string type = "bench.";
  for (char c : workload) type += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return stage.empty() ? type : type + "." + stage;
}

double Seconds(std::uint64_t from_ns, std::uint64_t to_ns) {
  return to_ns > from_ns ? static_cast<double>(to_ns - from_ns) / 1e9 : 0.0;
}

double PerSecond(std::uint64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

std::uint64_t Count(const wire::ClusterInfo& cluster, wire::JobState state) {
  auto it = cluster.jobs.find(std::string(wire::Name(state)));
  return it == cluster.jobs.end() ? 0 : it->second;
}

// A client that has reached the broker (PING answered).
Result<BenchClient> ConnectReady(zmq::context_t& context, const std::string& endpoint) {
  auto client = BenchClient::Connect(context, endpoint);
  if (!client) return std::unexpected(client.error());
  const auto deadline = Clock::now() + kConnectDeadline;
  std::string last_error;
  while (Clock::now() < deadline) {
    auto reply = client->Call(wire::PingRequest{}, milliseconds(1000));
    if (reply && reply->status == wire::StatusCode::kOk) return std::move(*client);
    last_error = reply ? std::string(wire::Name(reply->status)) : reply.error().message;
    std::this_thread::sleep_for(kConnectRetry);
  }
  return Fail("could not reach the broker at " + endpoint + ": " + last_error);
}

// A broker on a fresh directory; the broker stops before the directory is removed.
struct BrokerRun {
  std::unique_ptr<ScratchDir> dir;
  std::unique_ptr<Broker> broker;
};

// The broker's CPU time and peak memory over a stretch of a run.
class BrokerMeter {
 public:
  static Result<BrokerMeter> Begin(pid_t pid) {
    auto cpu = CpuSeconds(pid);
    if (!cpu) return std::unexpected(cpu.error());
    if (auto reset = ResetPeakRss(pid); !reset) return std::unexpected(reset.error());
    return BrokerMeter(pid, *cpu);
  }
  Status End() {
    auto cpu = CpuSeconds(pid_);
    if (!cpu) return std::unexpected(cpu.error());
    auto peak = StatusMiB(pid_, "VmHWM");
    if (!peak) return std::unexpected(peak.error());
    cpu_s = *cpu - cpu_start_;
    peak_rss_mib = *peak;
    return {};
  }
  double cpu_s = 0;
  double peak_rss_mib = 0;

 private:
  BrokerMeter(pid_t pid, double cpu_start) : pid_(pid), cpu_start_(cpu_start) {}
  pid_t pid_;
  double cpu_start_;
};

// Producers sharing N jobs, one DEALER and one thread each, all connected before the clock.
class ProducerGroup {
 public:
  struct Totals {
    std::uint64_t first_submit_ns = 0;
    std::uint64_t last_accepted_ns = 0;
    std::uint64_t accepted = 0;
  };

  Status Connect(zmq::context_t& context, const std::string& endpoint, std::uint32_t producers) {
    for (std::uint32_t i = 0; i < producers; ++i) {
      auto client = ConnectReady(context, endpoint);
      if (!client) return std::unexpected(client.error());
      clients_.push_back(std::move(*client));
    }
    return {};
  }

  void Go(const SubmitPlan& plan) {
    const std::uint64_t count = clients_.size();
    results_.resize(count);
    for (std::uint64_t i = 0; i < count; ++i) {
      SubmitPlan share = plan;
      share.count = plan.count / count + (i < plan.count % count ? 1 : 0);
      threads_.emplace_back([this, i, share] {
        results_[i] = clients_[i].SubmitMany(share);
        if (!results_[i]) failed_.store(true);
      });
    }
  }

  bool failed() const { return failed_.load(); }

  // Waits for every producer (each is bounded by its stall timeout) and checks the replies:
  // every job ACCEPTED once, every id distinct.
  Result<Totals> Join(std::uint64_t expected) {
    for (auto& t : threads_) t.join();
    threads_.clear();
    Totals totals;
    std::vector<std::string> ids;
    ids.reserve(expected);
    for (auto& result : results_) {
      if (!result) return std::unexpected(result.error());
      if (result->ids.empty()) continue;
      if (totals.first_submit_ns == 0 || result->first_submit_ns < totals.first_submit_ns) {
        totals.first_submit_ns = result->first_submit_ns;
      }
      totals.last_accepted_ns = std::max(totals.last_accepted_ns, result->last_accepted_ns);
      totals.accepted += result->ids.size();
      std::move(result->ids.begin(), result->ids.end(), std::back_inserter(ids));
      result->ids.clear();
    }
    if (totals.accepted != expected) {
      return Fail(std::to_string(totals.accepted) + " jobs ACCEPTED, expected " +
                  std::to_string(expected));
    }
    std::sort(ids.begin(), ids.end());
    if (auto dup = std::adjacent_find(ids.begin(), ids.end()); dup != ids.end()) {
      return Fail("job id " + *dup + " was given to two SUBMITs");
    }
    return totals;
  }

  ~ProducerGroup() {
    for (auto& t : threads_) t.join();
  }

 private:
  std::vector<BenchClient> clients_;
  std::vector<Result<SubmitRun>> results_;
  std::vector<std::thread> threads_;
  std::atomic<bool> failed_ = false;
};

struct Throughput {
  std::uint64_t jobs = 0;
  double seconds = 0;
  double jobs_per_s = 0;
  double cpu_s = 0;
  double peak_rss_mib = 0;
};

// Submits `n` jobs of `type` through the shape's producers and window; no worker takes them.
Result<Throughput> SubmitOn(zmq::context_t& context, Broker& broker, const Shape& shape,
                            const std::string& type, std::uint64_t n) {
  ProducerGroup group;
  if (auto ok = group.Connect(context, broker.endpoint(), shape.producers); !ok) {
    return std::unexpected(ok.error());
  }
  auto meter = BrokerMeter::Begin(broker.pid());
  if (!meter) return std::unexpected(meter.error());
  group.Go({.type = type,
            .count = n,
            .window = shape.window,
            .payload_size = shape.payload_size,
            .stall_timeout = kStallTimeout});
  auto totals = group.Join(n);
  if (!totals) return std::unexpected(totals.error());
  if (auto ok = meter->End(); !ok) return std::unexpected(ok.error());
  Throughput t{.jobs = n, .cpu_s = meter->cpu_s, .peak_rss_mib = meter->peak_rss_mib};
  t.seconds = Seconds(totals->first_submit_ns, totals->last_accepted_ns);
  t.jobs_per_s = PerSecond(n, t.seconds);
  return t;
}

// Worker processes: this program in worker mode, each with `credit` slots for `type`.
Result<std::vector<ChildProcess>> StartWorkers(const Environment& env, const std::string& endpoint,
                                               std::uint32_t count, std::uint32_t credit,
                                               const std::string& type, bool stamp_result) {
  std::vector<ChildProcess> workers;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::vector<std::string> argv = {env.self_exe, "--worker-mode",
                                     "--broker",   endpoint,
                                     "--capacity", std::to_string(credit),
                                     "--id",       "bench-" + std::to_string(i + 1),
                                     "--type",     type};
    if (stamp_result) argv.push_back("--stamp-result");
    if (env.pool_handlers) argv.push_back("--pool-handlers");
    auto child = ChildProcess::Start(argv);
    if (!child) {
      StopAll(workers, kWorkerStopGrace);
      return std::unexpected(child.error());
    }
    workers.push_back(std::move(*child));
  }
  return workers;
}

// Ends worker processes by PID on every path out of a scope.
class WorkersStopper {
 public:
  explicit WorkersStopper(std::vector<ChildProcess>& workers) : workers_(workers) {}
  WorkersStopper(const WorkersStopper&) = delete;
  WorkersStopper& operator=(const WorkersStopper&) = delete;
  ~WorkersStopper() { StopAll(workers_, kWorkerStopGrace); }

 private:
  std::vector<ChildProcess>& workers_;
};

// Waits until CLUSTER counts `count` workers, all of them idle.
Status WaitForWorkers(BenchClient& monitor, std::vector<ChildProcess>& workers,
                      std::uint32_t count) {
  const auto deadline = Clock::now() + kWorkersDeadline;
  std::uint32_t seen = 0;
  while (Clock::now() < deadline) {
    for (auto& w : workers) {
      if (!w.Running()) {
        return Fail("worker process " + std::to_string(w.pid()) + " exited with code " +
                    std::to_string(w.exit_code().value_or(-1)) + " before the run");
      }
    }
    auto cluster = monitor.Cluster(kClusterTimeout);
    if (!cluster) return std::unexpected(cluster.error());
    seen = cluster->workers_total;
    if (seen == count && cluster->capacity_in_use == 0) return {};
    std::this_thread::sleep_for(kCompletionPoll);
  }
  return Fail("only " + std::to_string(seen) + " of " + std::to_string(count) +
              " workers connected within " + std::to_string(kWorkersDeadline.count()) + " ms");
}

// W2's measurement on a running broker: workers connected and idle first, then `n` jobs of
// `type` from the producers; the clock stops at the n-th completion.
Result<Throughput> EndToEndOn(zmq::context_t& context, const Environment& env, Broker& broker,
                              const Shape& shape, const std::string& type) {
  auto monitor = ConnectReady(context, broker.endpoint());
  if (!monitor) return std::unexpected(monitor.error());
  auto workers =
      StartWorkers(env, broker.endpoint(), shape.workers, shape.credit, type, /*stamp=*/false);
  if (!workers) return std::unexpected(workers.error());
  const WorkersStopper stop_workers(*workers);

  if (auto ok = WaitForWorkers(*monitor, *workers, shape.workers); !ok) {
    return std::unexpected(ok.error());
  }
  auto before = monitor->Cluster(kClusterTimeout);
  if (!before) return std::unexpected(before.error());
  const std::uint64_t base_succeeded = Count(*before, wire::JobState::kSucceeded);
  const std::uint64_t base_dead = Count(*before, wire::JobState::kDead);

  ProducerGroup group;
  if (auto ok = group.Connect(context, broker.endpoint(), shape.producers); !ok) {
    return std::unexpected(ok.error());
  }
  auto meter = BrokerMeter::Begin(broker.pid());
  if (!meter) return std::unexpected(meter.error());
  group.Go({.type = type,
            .count = shape.n,
            .window = shape.window,
            .payload_size = shape.payload_size,
            .stall_timeout = kStallTimeout});

  // Bounded: the loop ends at the n-th completion, on a producer's failure, or when completions
  // stall for kStallTimeout.
  std::uint64_t done = 0;
  std::uint64_t end_ns = 0;
  auto last_progress = Clock::now();
  auto next_poll = Clock::now();
  std::string monitor_error;
  while (true) {
    auto cluster = monitor->Cluster(kClusterTimeout);
    if (!cluster) {
      monitor_error = cluster.error().message;
      break;
    }
    const std::uint64_t succeeded = Count(*cluster, wire::JobState::kSucceeded) - base_succeeded;
    if (succeeded >= shape.n) {
      end_ns = MonoNanos();
      done = succeeded;
      break;
    }
    if (succeeded > done) {
      done = succeeded;
      last_progress = Clock::now();
    }
    if (group.failed()) break;
    if (Clock::now() - last_progress > kStallTimeout) {
      monitor_error = "completions stalled at " + std::to_string(done) + " of " +
                      std::to_string(shape.n) + " for " + std::to_string(kStallTimeout.count()) +
                      " ms";
      break;
    }
    next_poll += kCompletionPoll;
    std::this_thread::sleep_until(next_poll);
  }
  auto totals = group.Join(shape.n);
  if (!totals) return std::unexpected(totals.error());
  if (!monitor_error.empty()) return Fail(monitor_error);
  if (auto ok = meter->End(); !ok) return std::unexpected(ok.error());

  auto after = monitor->Cluster(kClusterTimeout);
  if (!after) return std::unexpected(after.error());
  const std::uint64_t completed = Count(*after, wire::JobState::kSucceeded) - base_succeeded;
  const std::uint64_t dead = Count(*after, wire::JobState::kDead) - base_dead;
  if (completed != shape.n || dead != 0) {
    return Fail(std::to_string(completed) + " jobs succeeded and " + std::to_string(dead) +
                " died, expected " + std::to_string(shape.n) + " and 0");
  }
  Throughput t{.jobs = shape.n, .cpu_s = meter->cpu_s, .peak_rss_mib = meter->peak_rss_mib};
  t.seconds = Seconds(totals->first_submit_ns, end_ns);
  t.jobs_per_s = PerSecond(shape.n, t.seconds);
  return t;
}

void AddThroughput(Figures& f, const Throughput& t, const std::string& label) {
  f.metrics.push_back({"jobs_per_s", label, t.jobs_per_s, 0});
  f.metrics.push_back({"seconds", "seconds on the clock", t.seconds, 3});
  f.metrics.push_back({"broker_cpu_s", "broker CPU s", t.cpu_s, 2});
  f.metrics.push_back({"broker_peak_rss_mib", "broker peak RSS MiB", t.peak_rss_mib, 1});
}

}  // namespace

const Metric* Figures::Find(const std::string& key) const {
  for (const auto& m : metrics) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

Shape DefaultShape(const std::string& workload, bool smoke) {
  Shape s{.workload = workload};
  if (workload == "W1p") {
    s.n = smoke ? 2000 : 100000;
    s.window = smoke ? 100 : 1000;
  } else if (workload == "W1s") {
    s.n = smoke ? 200 : 5000;
    s.window = 1;
  } else if (workload == "W2" || workload == "W2p" || workload == "scaling") {
    s.n = smoke ? 2000 : 100000;
    s.window = smoke ? 100 : 1000;
    s.workers = 4;
    s.credit = workload == "W2p" ? 4 : 1;
  } else if (workload == "W3") {
    s.n = smoke ? 100 : 2000;
    s.warmup = smoke ? 10 : 100;
    s.workers = 1;
  } else if (workload == "store") {
    s.n = smoke ? 2000 : 100000;
    s.window = smoke ? 100 : 500;
  } else if (workload == "W4") {
    s.n = smoke ? 1000 : 100000;
    s.window = smoke ? 100 : 1000;
    s.workers = 4;
    s.backlog = smoke ? 5000 : 1000000;
  }
  if (smoke && workload == "scaling") s.n = 500;
  return s;
}

std::vector<std::uint32_t> ScalingWorkers() { return {1, 2, 4, 8, 16, 32}; }

std::string Runner::NextRunName(const std::string& workload) {
  return workload + "-" + std::to_string(::getpid()) + "-" + std::to_string(++runs_);
}

Result<Figures> Runner::Run(const Shape& shape) {
  if (shape.workload == "W1p" || shape.workload == "W1s") return SubmitOnly(shape);
  if (shape.workload == "W2" || shape.workload == "W2p" || shape.workload == "scaling") {
    return EndToEnd(shape);
  }
  if (shape.workload == "W3") return Latency(shape);
  if (shape.workload == "W4") return Backlog(shape);
  if (shape.workload == "store") return StoreOnly(shape);
  return Fail("unknown workload " + shape.workload);
}

namespace {

Result<BrokerRun> StartBroker(zmq::context_t& context, const Environment& env,
                              const std::string& name, std::uint64_t jobs) {
  BrokerRun run;
  auto dir = ScratchDir::Create(env.data_root, name);
  if (!dir) return std::unexpected(dir.error());
  run.dir = std::move(*dir);
  const std::uint64_t needed = jobs + kPendingHeadroom;
  auto broker = Broker::Start(
      context, {.binary = env.broker_bin,
                .data_dir = run.dir->path(),
                .durability = env.durability,
                .max_pending = needed > wire::defaults::kMaxPendingJobs ? needed : 0});
  if (!broker) return std::unexpected(broker.error());
  run.broker = std::move(*broker);
  return run;
}

}  // namespace

Result<Figures> Runner::SubmitOnly(const Shape& shape) {
  auto run = StartBroker(context_, env_, NextRunName(shape.workload), shape.n);
  if (!run) return std::unexpected(run.error());
  auto t = SubmitOn(context_, *run->broker, shape, JobType(shape.workload), shape.n);
  if (!t) return std::unexpected(t.error());
  if (auto stopped = run->broker->Stop(); !stopped) return std::unexpected(stopped.error());
  Figures f{.shape = shape, .durability = env_.durability};
  AddThroughput(f, *t, "ACCEPTED jobs/s");
  f.notes.push_back("clock: first submit to last ACCEPTED; every reply ACCEPTED, ids distinct");
  f.notes.push_back(
      "SUBMITs ask for batch_ack: one ACCEPTED per client per commit answers them all, as a "
      "RabbitMQ confirm with multiple does");
  return f;
}

Result<Figures> Runner::EndToEnd(const Shape& shape) {
  auto run = StartBroker(context_, env_, NextRunName(shape.workload), shape.n);
  if (!run) return std::unexpected(run.error());
  auto t = EndToEndOn(context_, env_, *run->broker, shape, JobType(shape.workload));
  if (!t) return std::unexpected(t.error());
  if (auto stopped = run->broker->Stop(); !stopped) return std::unexpected(stopped.error());
  Figures f{.shape = shape, .durability = env_.durability};
  AddThroughput(f, *t, "completed jobs/s");
  f.notes.push_back(kClockE2E);
  NoteHandlers(f, env_);
  return f;
}

Result<Figures> Runner::Latency(const Shape& shape) {
  auto run = StartBroker(context_, env_, NextRunName(shape.workload), shape.n + shape.warmup);
  if (!run) return std::unexpected(run.error());
  Broker& broker = *run->broker;
  const std::string type = JobType(shape.workload);
  auto client = ConnectReady(context_, broker.endpoint());
  if (!client) return std::unexpected(client.error());
  auto workers = StartWorkers(env_, broker.endpoint(), 1, 1, type, /*stamp=*/true);
  if (!workers) return std::unexpected(workers.error());
  const WorkersStopper stop_workers(*workers);
  if (auto ok = WaitForWorkers(*client, *workers, 1); !ok) return std::unexpected(ok.error());

  auto meter = BrokerMeter::Begin(broker.pid());
  if (!meter) return std::unexpected(meter.error());
  std::vector<double> latencies_us;
  latencies_us.reserve(shape.n);
  for (std::uint64_t i = 0; i < shape.warmup + shape.n; ++i) {
    auto watched = client->SubmitAndWatch(type, shape.payload_size, kLatencyJobTimeout);
    if (!watched) return std::unexpected(watched.error());
    const auto& job = watched->job;
    if (job.state != wire::JobState::kSucceeded || !job.result) {
      return Fail("job " + job.id + " ended " + std::string(wire::Name(job.state)) + ": " +
                  job.error);
    }
    const auto receipt = ReadStamp(*job.result);
    if (!receipt || job.result->size() != kStampBytes) {
      return Fail("job " + job.id + " has no 8-byte receipt time stamp as its result");
    }
    if (*receipt < watched->submit_stamp_ns) {
      return Fail("job " + job.id + " was received before it was submitted (clock mismatch)");
    }
    if (i >= shape.warmup) {
      latencies_us.push_back(static_cast<double>(*receipt - watched->submit_stamp_ns) / 1000.0);
    }
  }
  if (latencies_us.size() != shape.n) {
    return Fail(std::to_string(latencies_us.size()) + " latency samples, expected " +
                std::to_string(shape.n));
  }
  if (auto ok = meter->End(); !ok) return std::unexpected(ok.error());
  StopAll(*workers, kWorkerStopGrace);
  if (auto stopped = broker.Stop(); !stopped) return std::unexpected(stopped.error());

  Figures f{.shape = shape, .durability = env_.durability};
  f.metrics.push_back({"p50_us", "latency p50 us", Percentile(latencies_us, 50), 0});
  f.metrics.push_back({"p99_us", "latency p99 us", Percentile(latencies_us, 99), 0});
  f.metrics.push_back({"max_us", "latency max us", Percentile(latencies_us, 100), 0});
  f.metrics.push_back({"samples", "latency samples", static_cast<double>(latencies_us.size()), 0});
  f.metrics.push_back({"broker_cpu_s", "broker CPU s", meter->cpu_s, 2});
  f.metrics.push_back({"broker_peak_rss_mib", "broker peak RSS MiB", meter->peak_rss_mib, 1});
  f.notes.push_back(
      "latency: the worker's handler reads CLOCK_MONOTONIC when it is handed the job, minus the "
      "payload's submit stamp; one job in the system at a time (SUBMIT, ACCEPTED, WATCH to the "
      "end), " +
      std::to_string(shape.warmup) + " warm-up jobs not counted");
  NoteHandlers(f, env_);
  return f;
}

// The broker's store alone, in this process: W1p's rows, as the broker's loop would build them,
// committed through SqliteJobStore::Apply in batches of `window`, as the store writer commits.
Result<Figures> Runner::StoreOnly(const Shape& shape) {
  auto dir = ScratchDir::Create(env_.data_root, NextRunName(shape.workload));
  if (!dir) return std::unexpected(dir.error());
  auto store = broker::SqliteJobStore::Open((*dir)->path() + "/claw.db",
                                            broker::SqliteOptions::ForDurability(env_.durability));
  if (!store) return std::unexpected(store.error());

  const std::uint64_t first_ns = MonoNanos();
  auto first_cpu = CpuSeconds(::getpid());
  if (!first_cpu) return std::unexpected(first_cpu.error());
  broker::Seq seq = 0;
  while (seq < shape.n) {
    broker::WriteBatch batch;
    batch.writes.reserve(shape.window);
    for (std::uint32_t i = 0; i < shape.window && seq < shape.n; ++i) {
      broker::Job job;
      job.seq = ++seq;
      job.type = JobType(shape.workload);
      job.payload = MakePayload(shape.payload_size, MonoNanos());
      job.priority = wire::kPriorityNormal;
      job.timeout_ms = wire::defaults::kJobTimeoutMs;
      job.max_attempts = wire::defaults::kMaxAttempts;
      job.backoff_ms = wire::defaults::kBackoffMs;
      job.max_backoff_ms = wire::defaults::kMaxBackoffMs;
      job.created_at = job.updated_at = static_cast<std::int64_t>(seq);
      batch.writes.push_back({.insert = true, .job = std::move(job)});
    }
    if (auto applied = (*store)->Apply(batch); !applied) return std::unexpected(applied.error());
  }
  auto last_cpu = CpuSeconds(::getpid());
  if (!last_cpu) return std::unexpected(last_cpu.error());
  Throughput t{.jobs = shape.n, .cpu_s = *last_cpu - *first_cpu};
  t.seconds = Seconds(first_ns, MonoNanos());
  t.jobs_per_s = PerSecond(shape.n, t.seconds);
  auto counts = (*store)->CountByState();
  if (!counts) return std::unexpected(counts.error());
  if (const auto queued = (*counts)[wire::JobState::kQueued]; queued != shape.n) {
    return Fail("the store holds " + std::to_string(queued) + " queued rows, expected " +
                std::to_string(shape.n));
  }

  Figures f{.shape = shape, .durability = env_.durability};
  f.metrics.push_back({"jobs_per_s", "rows committed /s", t.jobs_per_s, 0});
  f.metrics.push_back({"seconds", "seconds on the clock", t.seconds, 3});
  f.metrics.push_back({"cpu_us_per_row", "CPU us per row (this process)",
                       t.cpu_s * 1e6 / static_cast<double>(shape.n), 2});
  f.notes.push_back(
      "the store alone, no broker and no ZeroMQ: SqliteJobStore::Apply of W1p's "
      "rows in batches of " +
      std::to_string(shape.window) + " (one transaction and commit each), on one thread");
  return f;
}

Result<Figures> Runner::Backlog(const Shape& shape) {
  Figures f{.shape = shape, .durability = env_.durability};
  // The empty-queue figures, on fresh brokers, measured in this same run.
  Shape w1 = shape;
  w1.workload = "W1p";
  auto empty_w1 = SubmitOnly(w1);
  if (!empty_w1) return Fail("W4, W1p on an empty queue: " + empty_w1.error().message);
  Shape w2 = shape;
  w2.workload = "W2";
  auto empty_w2 = EndToEnd(w2);
  if (!empty_w2) return Fail("W4, W2 on an empty queue: " + empty_w2.error().message);

  auto run =
      StartBroker(context_, env_, NextRunName(shape.workload), shape.backlog + 2 * shape.n + 1);
  if (!run) return std::unexpected(run.error());
  Broker& broker = *run->broker;
  auto fill = SubmitOn(context_, broker, shape, JobType("W4", "backlog"), shape.backlog);
  if (!fill) return Fail("W4, filling the backlog: " + fill.error().message);
  auto rss_backlog = StatusMiB(broker.pid(), "VmRSS");
  if (!rss_backlog) return std::unexpected(rss_backlog.error());
  auto w1_on = SubmitOn(context_, broker, shape, JobType("W4", "w1p"), shape.n);
  if (!w1_on) return Fail("W4, W1p on the backlog: " + w1_on.error().message);
  // VmHWM since the broker started: the fill and W1p (EndToEndOn resets it).
  auto peak_fill = StatusMiB(broker.pid(), "VmHWM");
  if (!peak_fill) return std::unexpected(peak_fill.error());
  auto w2_on = EndToEndOn(context_, env_, broker, shape, JobType("W4", "w2"));
  if (!w2_on) return Fail("W4, W2 on the backlog: " + w2_on.error().message);
  auto rss_after = StatusMiB(broker.pid(), "VmRSS");
  if (!rss_after) return std::unexpected(rss_after.error());

  // kill -9 and the time until the restarted broker ACCEPTs a SUBMIT. The client connects after
  // the kill, so no SUBMIT can be queued on the dead broker's connection.
  const std::uint64_t killed_ns = MonoNanos();
  broker.KillHard();
  if (auto spawned = broker.Respawn(); !spawned) return std::unexpected(spawned.error());
  auto client = BenchClient::Connect(context_, broker.endpoint());
  if (!client) return std::unexpected(client.error());
  std::uint64_t listening_ns = 0;
  std::string last_error = "no answer";
  const auto deadline = Clock::now() + kRestartDeadline;
  // Bounded by the deadline: PING cannot even be queued until the broker listens again, which it
  // does once it has recovered its jobs.
  while (Clock::now() < deadline) {
    if (!broker.Running()) return Fail("the restarted broker exited; its messages are above");
    auto reply = client->Call(wire::PingRequest{}, kRestartPingTimeout);
    if (reply && reply->status == wire::StatusCode::kOk) {
      listening_ns = MonoNanos();
      break;
    }
    last_error = reply ? std::string(wire::Name(reply->status)) : reply.error().message;
    std::this_thread::sleep_for(kRestartRetry);
  }
  if (listening_ns == 0) {
    return Fail("the restarted broker did not answer PING within " +
                std::to_string(kRestartDeadline.count()) + " ms: " + last_error);
  }
  // One SUBMIT only, so the count of queued jobs below is exact.
  auto accepted = client->Call(
      wire::SubmitRequest{.job = {.type = JobType("W4", "restart"),
                                  .payload = MakePayload(shape.payload_size, MonoNanos())}},
      kRestartSubmitTimeout);
  if (!accepted) return Fail("after the restart: " + accepted.error().message);
  if (accepted->status != wire::StatusCode::kAccepted) {
    return Fail("after the restart SUBMIT answered " + std::string(wire::Name(accepted->status)) +
                ": " + accepted->message);
  }
  const std::uint64_t accepted_ns = MonoNanos();
  auto cluster = client->Cluster(kClusterTimeout);
  if (!cluster) return std::unexpected(cluster.error());
  // Every queued job must be back, exactly. W2's jobs may be queued again too: a completion is
  // committed up to broker.commitDelay after it happens, so the last ones before the kill run
  // again (at least once, never lost).
  auto depth = [&](const std::string& type) {
    std::uint64_t sum = 0;
    for (const wire::QueueInfo& q : cluster->queues) sum += q.type == type ? q.depth : 0;
    return sum;
  };
  const std::uint64_t backlog_back = depth(JobType("W4", "backlog"));
  const std::uint64_t w1p_back = depth(JobType("W4", "w1p"));
  const std::uint64_t probe_back = depth(JobType("W4", "restart"));
  const std::uint64_t w2_again = depth(JobType("W4", "w2"));
  if (backlog_back != shape.backlog || w1p_back != shape.n || probe_back != 1 ||
      w2_again > shape.n) {
    return Fail("after kill -9 and restart the queues hold " + std::to_string(backlog_back) +
                " backlog, " + std::to_string(w1p_back) + " W1p, " + std::to_string(probe_back) +
                " probe and " + std::to_string(w2_again) + " W2 jobs; expected " +
                std::to_string(shape.backlog) + ", " + std::to_string(shape.n) +
                ", 1 and at most " + std::to_string(shape.n));
  }
  auto rss_restart = StatusMiB(broker.pid(), "VmRSS");
  if (!rss_restart) return std::unexpected(rss_restart.error());
  if (auto stopped = broker.Stop(); !stopped) return std::unexpected(stopped.error());

  auto metric = [](const Result<Figures>& figures, const std::string& key) {
    const Metric* m = figures->Find(key);
    return m == nullptr ? 0.0 : m->value;
  };
  const double w1_empty = metric(empty_w1, "jobs_per_s");
  const double w2_empty = metric(empty_w2, "jobs_per_s");
  auto percent = [](double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; };
  f.metrics = {
      {"backlog", "backlog jobs (a type no worker serves)", static_cast<double>(shape.backlog), 0},
      {"backlog_fill_jobs_per_s", "backlog fill, ACCEPTED jobs/s", fill->jobs_per_s, 0},
      {"w1p_empty_jobs_per_s", "W1p empty queue, ACCEPTED jobs/s", w1_empty, 0},
      {"w1p_backlog_jobs_per_s", "W1p on the backlog, ACCEPTED jobs/s", w1_on->jobs_per_s, 0},
      {"w1p_backlog_pct", "W1p backlog / empty %", percent(w1_on->jobs_per_s, w1_empty), 1},
      {"w2_empty_jobs_per_s", "W2 empty queue, completed jobs/s", w2_empty, 0},
      {"w2_backlog_jobs_per_s", "W2 on the backlog, completed jobs/s", w2_on->jobs_per_s, 0},
      {"w2_backlog_pct", "W2 backlog / empty %", percent(w2_on->jobs_per_s, w2_empty), 1},
      {"w2_backlog_broker_cpu_s", "W2 on the backlog, broker CPU s", w2_on->cpu_s, 2},
      {"rss_backlog_mib", "broker RSS with the backlog MiB", *rss_backlog, 1},
      {"rss_after_w2_mib", "broker RSS after W1p and W2 on it MiB", *rss_after, 1},
      {"broker_peak_rss_mib", "broker peak RSS MiB", std::max(*peak_fill, w2_on->peak_rss_mib), 1},
      {"restart_to_ping_s", "kill -9 to PING answered again, s", Seconds(killed_ns, listening_ns),
       3},
      {"restart_to_accepted_s", "kill -9 to ACCEPTED again, s", Seconds(killed_ns, accepted_ns), 3},
      {"recovered_queued", "jobs queued after the restart",
       static_cast<double>(backlog_back + w1p_back + probe_back + w2_again), 0},
      {"w2_run_again", "W2 jobs queued again (completed within commitDelay of the kill)",
       static_cast<double>(w2_again), 0},
      {"rss_after_restart_mib", "broker RSS after the restart MiB", *rss_restart, 1},
  };
  f.notes.push_back("W1p and W2 run first on fresh brokers (empty queue), then on one broker " +
                    std::string("holding the backlog; W1p's jobs stay queued on top of it"));
  f.notes.push_back(kClockE2E);
  NoteHandlers(f, env_);
  f.notes.push_back(
      "restart: SIGKILL, start on the same data directory, PING every ms until answered (recovery "
      "and bind included), then one SUBMIT until ACCEPTED");
  return f;
}

Figures MedianOf(const std::vector<Figures>& rounds) {
  Figures merged = rounds.front();
  merged.rounds = static_cast<int>(rounds.size());
  for (auto& metric : merged.metrics) {
    std::vector<double> values;
    for (const auto& round : rounds) {
      if (const Metric* m = round.Find(metric.key)) values.push_back(m->value);
    }
    metric.value = Median(values);
  }
  return merged;
}

}  // namespace claw::bench
