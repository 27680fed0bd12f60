#include "driver.hpp"

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <sstream>
#include <thread>
#include <utility>

namespace claw::peers {

namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kReadyTimeoutNs = 30 * kNsPerSecond;
constexpr std::int64_t kNoProgressTimeoutNs = 60 * kNsPerSecond;
constexpr std::int64_t kWorkerStopTimeoutNs = 10 * kNsPerSecond;
// Workers have connected; this lets each reach its blocking take before the clock starts.
constexpr auto kSettle = std::chrono::milliseconds(200);
// After the N-th completion, how long the workers keep counting before they stop: a completion
// beyond N in this window is a job handed out twice. It bounds the check (no peer says "nothing
// more is coming"), so a duplicate that arrives later goes unseen; the clock has stopped already.
constexpr auto kDuplicateWindow = std::chrono::milliseconds(100);

}  // namespace

// Lives in a MAP_SHARED mapping created before the workers are forked; latency samples follow it.
struct WorkerLink::Shared {
  std::atomic<std::uint32_t> ready{0};
  std::atomic<std::uint32_t> failed{0};
  std::atomic<std::uint32_t> done{0};  // a futex word: the driver sleeps on it
  std::atomic<std::uint32_t> target{0};
  std::atomic<std::uint64_t> next_sample{0};
  std::uint64_t sample_capacity = 0;

  std::int64_t* Samples() { return reinterpret_cast<std::int64_t*>(this + 1); }
};

namespace {

long Futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr, 0);
}

}  // namespace

std::int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNsPerSecond + ts.tv_nsec;
}

void StampPayload(std::vector<std::byte>& payload) {
  const std::int64_t now = NowNs();
  std::memcpy(payload.data(), &now, sizeof now);
}

std::int64_t StampOf(std::span<const std::byte> payload) {
  std::int64_t stamp = -1;
  if (payload.size() >= sizeof stamp) std::memcpy(&stamp, payload.data(), sizeof stamp);
  return stamp;
}

void WorkerLink::Ready() { shared_->ready.fetch_add(1); }

void WorkerLink::Done(std::int64_t receipt_ns, std::int64_t stamp_ns) {
  const std::uint64_t slot = shared_->next_sample.fetch_add(1);
  if (slot < shared_->sample_capacity) shared_->Samples()[slot] = receipt_ns - stamp_ns;
  const std::uint32_t done = shared_->done.fetch_add(1) + 1;
  // Only the completion the driver waits for wakes it: one futex call per run in W2, per job in W3.
  if (done >= shared_->target.load()) Futex(&shared_->done, FUTEX_WAKE, INT_MAX, nullptr);
}

void WorkerLink::Failed() {
  shared_->failed.store(1);
  Futex(&shared_->done, FUTEX_WAKE, INT_MAX, nullptr);
}

namespace {

// The shared block and its samples, unmapped when the driver is done.
class SharedMapping {
 public:
  static Result<SharedMapping> Create(std::uint64_t samples) {
    const std::size_t bytes = sizeof(WorkerLink::Shared) + samples * sizeof(std::int64_t);
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return Fail(std::string("mmap: ") + std::strerror(errno));
    auto* shared = new (memory) WorkerLink::Shared;
    shared->sample_capacity = samples;
    return SharedMapping(shared, bytes);
  }
  SharedMapping(SharedMapping&& other) noexcept
      : shared_(std::exchange(other.shared_, nullptr)), bytes_(other.bytes_) {}
  SharedMapping& operator=(SharedMapping&&) = delete;
  ~SharedMapping() {
    if (shared_ != nullptr) munmap(shared_, bytes_);
  }
  WorkerLink::Shared* get() const { return shared_; }

 private:
  SharedMapping(WorkerLink::Shared* shared, std::size_t bytes) : shared_(shared), bytes_(bytes) {}
  WorkerLink::Shared* shared_;
  std::size_t bytes_;
};

// The worker processes of one run; ended by PID (SIGTERM, SIGKILL after a deadline).
class WorkerProcesses {
 public:
  WorkerProcesses() = default;
  WorkerProcesses(const WorkerProcesses&) = delete;
  WorkerProcesses& operator=(const WorkerProcesses&) = delete;
  ~WorkerProcesses() { Stop(); }

  Status Start(const Peer& peer, const Options& options, WorkerLink::Shared* shared) {
    const pid_t parent = getpid();
    for (std::uint32_t i = 0; i < options.workers; ++i) {
      std::fflush(nullptr);
      const pid_t pid = fork();
      if (pid < 0) return Fail(std::string("fork: ") + std::strerror(errno));
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        WorkerLink link(shared);
        const Status status = peer.run_worker(options, link);
        std::cerr << peer.name << " worker " << getpid() << ": "
                  << (status ? "stopped" : status.error()) << "\n";
        link.Failed();
        _exit(1);
      }
      pids_.push_back(pid);
    }
    return {};
  }

  // An error when a worker has exited already (it never should before Stop).
  Status CheckAlive() {
    for (pid_t pid : pids_) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        std::erase(pids_, pid);
        return Fail("worker process " + std::to_string(pid) + " exited early");
      }
    }
    return {};
  }

  void Stop() {
    for (pid_t pid : pids_) kill(pid, SIGTERM);
    const std::int64_t deadline = NowNs() + kWorkerStopTimeoutNs;
    for (pid_t pid : pids_) {
      while (waitpid(pid, nullptr, WNOHANG) == 0) {
        if (NowNs() > deadline) {
          kill(pid, SIGKILL);
          waitpid(pid, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
};

// CPU seconds and peak RSS of the server process over the measured stretch.
class ServerMeter {
 public:
  explicit ServerMeter(int pid) : pid_(pid) {}

  void Begin() {
    if (pid_ <= 0) return;
    std::ofstream(Path("clear_refs")) << "5";
    cpu_begin_s_ = CpuSeconds();
  }
  void End() {
    if (pid_ <= 0) return;
    cpu_s_ = CpuSeconds() - cpu_begin_s_;
    std::ifstream status(Path("status"));
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with("VmHWM:")) peak_rss_mib_ = std::stod(line.substr(6)) / 1024.0;
    }
  }
  bool measured() const { return pid_ > 0; }
  double cpu_s() const { return cpu_s_; }
  double peak_rss_mib() const { return peak_rss_mib_; }

 private:
  std::string Path(const char* name) const { return "/proc/" + std::to_string(pid_) + "/" + name; }
  // utime + stime of every thread, fields 14 and 15 of /proc/PID/stat.
  double CpuSeconds() const {
    std::ifstream stat(Path("stat"));
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i >= 14) ticks += std::stod(field);
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  int pid_;
  double cpu_begin_s_ = 0;
  double cpu_s_ = 0;
  double peak_rss_mib_ = 0;
};

// Sleeps until `target` completions are counted; fails when none arrives for 60 s, a worker
// reports a failure or a worker process is gone.
Status WaitDone(WorkerLink::Shared* shared, std::uint32_t target, WorkerProcesses& workers) {
  std::uint32_t seen = shared->done.load();
  std::int64_t last_progress = NowNs();
  for (;;) {
    const std::uint32_t done = shared->done.load();
    if (done >= target) return {};
    if (shared->failed.load() != 0) return Fail("a worker failed (see its message above)");
    if (done != seen) {
      seen = done;
      last_progress = NowNs();
    }
    if (NowNs() - last_progress > kNoProgressTimeoutNs) {
      return Fail("no completion for 60 s: " + std::to_string(done) + " of " +
                  std::to_string(target));
    }
    const timespec timeout{.tv_sec = 0, .tv_nsec = 100'000'000};
    if (Futex(&shared->done, FUTEX_WAIT, done, &timeout) != 0 && errno == ETIMEDOUT) {
      if (auto alive = workers.CheckAlive(); !alive) return alive;
    }
  }
}

Status WaitReady(WorkerLink::Shared* shared, std::uint32_t workers, WorkerProcesses& processes) {
  const std::int64_t deadline = NowNs() + kReadyTimeoutNs;
  while (shared->ready.load() < workers) {
    if (shared->failed.load() != 0) return Fail("a worker failed to connect");
    if (auto alive = processes.CheckAlive(); !alive) return alive;
    if (NowNs() > deadline) return Fail("workers not connected after 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(kSettle);
  return {};
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size() - 1));
  return values[rank];
}

using Figures = std::vector<std::pair<std::string, double>>;

void AddServer(Figures& figures, const ServerMeter& meter) {
  if (!meter.measured()) return;
  figures.emplace_back("server_cpu_s", meter.cpu_s());
  figures.emplace_back("server_peak_rss_mib", meter.peak_rss_mib());
}

Figures Throughput(std::uint64_t n, std::int64_t begin_ns, std::int64_t end_ns) {
  const double seconds = static_cast<double>(end_ns - begin_ns) / kNsPerSecond;
  return {{"jobs_per_s", static_cast<double>(n) / seconds}, {"seconds", seconds}};
}

// W1p, W1s: no workers; first submit to last acknowledgement.
Result<Figures> SubmitOnly(const Peer& peer, const Options& options) {
  auto producer = peer.connect_producer(options);
  if (!producer) return std::unexpected(producer.error());
  ServerMeter meter(options.server_pid);
  meter.Begin();
  const std::int64_t begin = NowNs();
  if (auto ok = (*producer)->Submit(options.n, options.window); !ok) {
    return std::unexpected(ok.error());
  }
  const std::int64_t end = NowNs();
  meter.End();
  Figures figures = Throughput(options.n, begin, end);
  AddServer(figures, meter);
  return figures;
}

// What W2, W2p and W3 share: the shared block, the worker processes connected and idle, and
// the producer's connection. Members end in reverse order: producer, workers, then the block.
struct Rig {
  SharedMapping mapping;
  WorkerProcesses workers;
  std::unique_ptr<Producer> producer;
  WorkerLink::Shared* shared() const { return mapping.get(); }
};

Result<std::unique_ptr<Rig>> StartRig(const Peer& peer, const Options& options,
                                      std::uint64_t samples) {
  auto mapping = SharedMapping::Create(samples);
  if (!mapping) return std::unexpected(mapping.error());
  auto rig = std::make_unique<Rig>(std::move(*mapping));
  if (auto ok = rig->workers.Start(peer, options, rig->shared()); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = WaitReady(rig->shared(), options.workers, rig->workers); !ok) {
    return std::unexpected(ok.error());
  }
  auto producer = peer.connect_producer(options);
  if (!producer) return std::unexpected(producer.error());
  rig->producer = std::move(*producer);
  return rig;
}

// W2, W2p: workers connected and idle first; first submit to the N-th completion.
Result<Figures> EndToEnd(const Peer& peer, const Options& options) {
  auto rig = StartRig(peer, options, 0);
  if (!rig) return std::unexpected(rig.error());
  WorkerLink::Shared* shared = (*rig)->shared();
  shared->target.store(static_cast<std::uint32_t>(options.n));
  ServerMeter meter(options.server_pid);
  meter.Begin();
  const std::int64_t begin = NowNs();
  if (auto ok = (*rig)->producer->Submit(options.n, options.window); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = WaitDone(shared, static_cast<std::uint32_t>(options.n), (*rig)->workers); !ok) {
    return std::unexpected(ok.error());
  }
  const std::int64_t end = NowNs();
  meter.End();
  std::this_thread::sleep_for(kDuplicateWindow);
  (*rig)->workers.Stop();
  if (shared->done.load() != options.n) {
    return Fail(std::to_string(shared->done.load()) + " completions for " +
                std::to_string(options.n) + " jobs");
  }
  Figures figures = Throughput(options.n, begin, end);
  AddServer(figures, meter);
  return figures;
}

// W3: one worker, one job in the system at a time; latency at the worker's receipt.
Result<Figures> Latency(const Peer& peer, const Options& options) {
  const std::uint64_t total = options.warmup + options.n;
  auto rig = StartRig(peer, options, total);
  if (!rig) return std::unexpected(rig.error());
  WorkerLink::Shared* shared = (*rig)->shared();
  ServerMeter meter(options.server_pid);
  for (std::uint64_t i = 0; i < total; ++i) {
    if (i == options.warmup) meter.Begin();
    shared->target.store(static_cast<std::uint32_t>(i + 1));
    if (auto ok = (*rig)->producer->Submit(1, 1); !ok) return std::unexpected(ok.error());
    if (auto ok = WaitDone(shared, static_cast<std::uint32_t>(i + 1), (*rig)->workers); !ok) {
      return std::unexpected(ok.error());
    }
  }
  meter.End();
  (*rig)->workers.Stop();
  std::vector<double> latencies_us;
  for (std::uint64_t i = options.warmup; i < total; ++i) {
    latencies_us.push_back(static_cast<double>(shared->Samples()[i]) / 1000.0);
  }
  Figures figures{{"p50_us", Percentile(latencies_us, 50)},
                  {"p99_us", Percentile(latencies_us, 99)},
                  {"max_us", Percentile(latencies_us, 100)},
                  {"samples", static_cast<double>(latencies_us.size())}};
  AddServer(figures, meter);
  return figures;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string JsonLine(const Peer& peer, const Options& o, const Figures& figures) {
  std::ostringstream line;
  line << "{\"peer\":" << JsonString(peer.name) << ",\"label\":" << JsonString(o.label)
       << ",\"workload\":" << JsonString(o.workload) << ",\"n\":" << o.n
       << ",\"window\":" << o.window << ",\"workers\":" << o.workers << ",\"credit\":" << o.credit
       << ",\"payload_size\":" << o.payload_size << ",\"warmup\":" << o.warmup;
  for (const auto& [key, value] : figures) {
    char number[64];
    std::snprintf(number, sizeof number, "%.6g", value);
    line << "," << JsonString(key) << ":" << number;
  }
  line << "}";
  return line.str();
}

constexpr const char* kUsage = R"(usage: %s --port P --workload W1p|W1s|W2|W2p|W3 [options]
  --host H            server address (default 127.0.0.1)
  --n N               jobs measured (W3: latency samples); defaults: W1p, W2, W2p 100000,
                      W1s 5000, W3 2000
  --window W          unacknowledged submits (default 1000; W1s and W3 always 1)
  --workers W         worker processes for W2, W2p (default 4; W3 has 1)
  --credit C          jobs each worker holds at once (W2 1, W2p 4, W3 1)
  --warmup K          W3 jobs before the measured ones (default 100)
  --payload-size B    payload bytes, at least 8 (default 128)
  --server-pid PID    the server process, for its CPU seconds and peak RSS
  --label TEXT        the server's configuration, copied into the JSON
  --queue-type T      RabbitMQ: classic (durable) or quorum (default classic)
Prints one JSON object on stdout; exits 1 on any error.
)";

// Applies WORKLOADS.md's shape for the workload, then the flags given.
Result<Options> Parse(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return Fail("help");
    if (!flag.starts_with("--") || i + 1 >= argc) return Fail("bad argument: " + flag);
    flags[flag.substr(2)] = argv[++i];
  }
  Options o;
  auto take = [&](const char* name, auto& field) -> Status {
    const auto it = flags.find(name);
    if (it == flags.end()) return {};
    try {
      if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::string>) {
        field = it->second;
      } else {
        field = static_cast<std::decay_t<decltype(field)>>(std::stoull(it->second));
      }
    } catch (const std::exception&) {
      return Fail(std::string("--") + name + ": not a number: " + it->second);
    }
    flags.erase(it);
    return {};
  };
  if (auto ok = take("workload", o.workload); !ok) return std::unexpected(ok.error());
  if (o.workload == "W1p") {
    o.n = 100'000;
    o.window = 1000;
  } else if (o.workload == "W1s") {
    o.n = 5'000;
  } else if (o.workload == "W2" || o.workload == "W2p") {
    o.n = 100'000;
    o.window = 1000;
    o.workers = 4;
    o.credit = o.workload == "W2p" ? 4 : 1;
  } else if (o.workload == "W3") {
    o.n = 2'000;
    o.workers = 1;
    o.warmup = 100;
  } else {
    return Fail("--workload must be W1p, W1s, W2, W2p or W3");
  }
  o.queue_type = "classic";
  for (Status ok :
       {take("host", o.host), take("port", o.port), take("n", o.n), take("window", o.window),
        take("workers", o.workers), take("credit", o.credit), take("warmup", o.warmup),
        take("payload-size", o.payload_size), take("server-pid", o.server_pid),
        take("label", o.label), take("queue-type", o.queue_type)}) {
    if (!ok) return std::unexpected(ok.error());
  }
  if (!flags.empty()) return Fail("unknown flag --" + flags.begin()->first);
  if (o.workload == "W1s" || o.workload == "W3") o.window = 1;
  if (o.workload == "W3") o.workers = 1;
  if (o.port <= 0) return Fail("--port is required");
  if (o.payload_size < 8) return Fail("--payload-size must be at least 8");
  if (o.n == 0 || o.n > UINT32_MAX / 2 || o.window == 0 || o.credit == 0) {
    return Fail("--n, --window and --credit must be positive (n below 2^31)");
  }
  if ((o.workload == "W2" || o.workload == "W2p") && o.workers == 0) {
    return Fail("--workers must be positive");
  }
  return o;
}

}  // namespace

int Main(int argc, char** argv, const Peer& peer) {
  auto options = Parse(argc, argv);
  if (!options) {
    if (options.error() != "help") std::cerr << argv[0] << ": " << options.error() << "\n";
    std::fprintf(stderr, kUsage, argv[0]);
    return options.error() == "help" ? 0 : 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (peer.prepare) {
    if (auto ok = peer.prepare(*options); !ok) {
      std::cerr << peer.name << " " << options->workload << ": " << ok.error() << "\n";
      return 1;
    }
  }
  const std::string& w = options->workload;
  const Result<Figures> figures = w == "W1p" || w == "W1s" ? SubmitOnly(peer, *options)
                                  : w == "W3"              ? Latency(peer, *options)
                                                           : EndToEnd(peer, *options);
  if (!figures) {
    std::cerr << peer.name << " " << w << ": " << figures.error() << "\n";
    return 1;
  }
  std::cout << JsonLine(peer, *options, *figures) << std::endl;
  return 0;
}

}  // namespace claw::peers
