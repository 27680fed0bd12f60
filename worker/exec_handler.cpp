// RunCommand: fork /bin/sh -c COMMAND with four pipes (stdin, stdout, stderr, progress), then
// supervise it from one poll() loop that writes the payload, reads the outputs, forwards progress
// and enforces the timeout, cancellation and the result size limit.
//
// A job with inputs gets them as files (InputsFiles) that live exactly as long as the run.
//
// Everything the child needs (argv, environment, signal state) is prepared before fork(); the
// child only makes async-signal-safe calls before execve, since other threads of the worker may
// hold locks at the moment of the fork. Every fd is opened close-on-exec, so concurrent jobs never
// leak pipes into each other's children; dup2 gives the child its own copies (0-3) without it.
//
// The group is signalled only while its leader is still unreaped, so the group id cannot have been
// reused by an unrelated process.
#include "worker/exec_handler.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "schema/duration.hpp"
#include "schema/protocol_constants.hpp"
#include "worker/log.hpp"
#include "worker/progress_line.hpp"
#include "worker/unique_fd.hpp"

extern char** environ;

namespace claw::worker {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kStderrTailBytes = 4096;
constexpr std::size_t kReadChunk = 64 * 1024;
// A progress or checkpoint line longer than this is dropped.
constexpr std::size_t kMaxProgressLine = 4u << 20;
// How often cancellation is looked at while nothing else happens.
constexpr milliseconds kCancelCheck{50};
// After the shell exits, how long its pipes may stay open (held by something it started).
constexpr milliseconds kDrainGrace{500};
// After SIGKILL, how long to wait for the kernel to finish the processes before giving up.
constexpr milliseconds kKillWait{5000};
// Longer timeouts are treated as this (about ten years).
constexpr milliseconds kLongestTimeout{3650LL * 24 * 3600 * 1000};
// How long killed leftovers of the group may take to die before they are left unreaped.
constexpr milliseconds kReapWait{1000};
// Pipe fds are moved at or above this, so dup2 onto 0-3 in the child never clobbers one.
constexpr int kLowestPipeFd = 10;
// Where the child finds the progress pipe: a single digit, since dash only redirects to fds 0-9
// (`echo "progress 50" >&$CLAW_PROGRESS_FD`).
constexpr int kChildProgressFd = 3;

constexpr std::array<std::string_view, 9> kOwnVariables = {
    "CLAW_JOB_ID",     "CLAW_JOB_TYPE",    "CLAW_ATTEMPT",
    "CLAW_TIMEOUT_MS", "CLAW_PROGRESS_FD", "CLAW_CHECKPOINT_FILE",
    "CLAW_INPUTS",     "CLAW_INPUTS_DIR",  "CLAW_CHECKPOINT_INTERVAL_MS"};

std::string Errno(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

UniqueFd MoveHigh(int fd) {
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, kLowestPipeFd);
  ::close(fd);
  return UniqueFd(high);
}

Result<Pipe> MakePipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) return Fail(Errno("pipe"));
  Pipe pipe{MoveHigh(fds[0]), MoveHigh(fds[1])};
  if (!pipe.read.valid() || !pipe.write.valid()) return Fail(Errno("fcntl"));
  return pipe;
}

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A file holding the job's checkpoint for the command to read; deleted when this goes away.
class CheckpointFile {
 public:
  CheckpointFile() = default;
  CheckpointFile(const CheckpointFile&) = delete;
  CheckpointFile& operator=(const CheckpointFile&) = delete;
  ~CheckpointFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  Status Write(const std::string& data) {
    const char* dir = std::getenv("TMPDIR");
    std::string path =
        std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/claw-checkpoint-XXXXXX";
    UniqueFd fd(::mkostemp(path.data(), O_CLOEXEC));
    if (!fd.valid()) return Fail(Errno("cannot create " + path));
    path_ = path;
    std::size_t written = 0;
    while (written < data.size()) {
      const auto n = ::write(fd.get(), data.data() + written, data.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail(Errno("cannot write " + path_));
      written += static_cast<std::size_t>(n);
    }
    return {};
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Where the command finds its job's inputs: a temporary directory holding inputs.jsonl and
// by-id/<id>.result or by-id/<id>.error per input; removed with its contents when this goes away.
class InputsFiles {
 public:
  InputsFiles() = default;
  InputsFiles(const InputsFiles&) = delete;
  InputsFiles& operator=(const InputsFiles&) = delete;
  ~InputsFiles() {
    if (root_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  Status Write(const std::vector<wire::Input>& inputs) {
    const char* tmp = std::getenv("TMPDIR");
    std::string root =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/claw-inputs-XXXXXX";
    if (::mkdtemp(root.data()) == nullptr) return Fail(Errno("cannot create " + root));
    root_ = root;
    if (::mkdir(dir().c_str(), 0700) != 0) return Fail(Errno("cannot create " + dir()));
    std::string lines;
    for (const wire::Input& input : inputs) {
      const nlohmann::json line = {
          {"id", input.id},
          {"state", input.state},
          {"result", input.result ? nlohmann::json(*input.result) : nlohmann::json(nullptr)},
          {"error", input.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(input.error)}};
      lines += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\n';
      const std::string name = dir() + "/" + SafeName(input.id);
      const bool succeeded = input.state == wire::Name(wire::JobState::kSucceeded);
      auto written = succeeded ? WriteFile(name + ".result", input.result.value_or(""))
                               : WriteFile(name + ".error", input.error);
      if (!written) return written;
    }
    return WriteFile(file(), lines);
  }

  std::string file() const { return root_ + "/inputs.jsonl"; }
  std::string dir() const { return root_ + "/by-id"; }

 private:
  // Ids are printable, but a file name must not leave the directory.
  static std::string SafeName(std::string id) {
    for (char& c : id) {
      const bool plain = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ||
                         c == ':' || c == '.';
      if (!plain) c = '_';
    }
    if (id.empty() || id.front() == '.') id.insert(0, "_");
    return id;
  }

  static Status WriteFile(const std::string& path, std::string_view data) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return Fail(Errno("cannot create " + path));
    std::size_t written = 0;
    while (written < data.size()) {
      const auto n = ::write(fd.get(), data.data() + written, data.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail(Errno("cannot write " + path));
      written += static_cast<std::size_t>(n);
    }
    return {};
  }

  std::string root_;
};

// Thread-directed SIGPIPE (from writing to a closed stdin pipe) is blocked while a command runs,
// so the write fails with EPIPE instead of killing the worker; a pending one is consumed after.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    if (sigismember(&previous_, SIGPIPE) == 1) return;
    const timespec zero{};
    while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }

 private:
  sigset_t set_{};
  sigset_t previous_{};
};

std::vector<std::string> ChildEnvironment(const JobContext& context,
                                          const std::string& checkpoint_path,
                                          const InputsFiles* inputs) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::string_view name = text.substr(0, text.find('='));
    if (std::find(kOwnVariables.begin(), kOwnVariables.end(), name) != kOwnVariables.end()) {
      continue;
    }
    env.emplace_back(text);
  }
  env.push_back("CLAW_JOB_ID=" + context.id());
  env.push_back("CLAW_JOB_TYPE=" + context.type());
  env.push_back("CLAW_ATTEMPT=" + std::to_string(context.attempt()));
  env.push_back("CLAW_TIMEOUT_MS=" + std::to_string(context.timeout_ms()));
  env.push_back("CLAW_PROGRESS_FD=" + std::to_string(kChildProgressFd));
  if (!checkpoint_path.empty()) env.push_back("CLAW_CHECKPOINT_FILE=" + checkpoint_path);
  if (context.checkpoint_interval_ms() != 0) {
    env.push_back("CLAW_CHECKPOINT_INTERVAL_MS=" +
                  std::to_string(context.checkpoint_interval_ms()));
  }
  if (inputs != nullptr) {
    env.push_back("CLAW_INPUTS=" + inputs->file());
    env.push_back("CLAW_INPUTS_DIR=" + inputs->dir());
  }
  return env;
}

// A descriptor that becomes readable when the process exits, or -1 on kernels without pidfds.
// (Called through syscall(): glibc 2.36 declares pidfd_open without C linkage for C++.)
int PidFd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Whether the process has exited, without reaping it.
bool HasExited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

// Whether a process other than a zombie is still in the group. Zombies count as gone: an orphan
// the init process never reaps is dead all the same.
bool GroupHasLiveMembers(pid_t pgid) {
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return false;
  std::error_code error;
  std::filesystem::directory_iterator it("/proc", error);
  if (error) return true;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return true;
    const std::string name = it->path().filename().string();
    const auto is_digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_digit)) continue;
    std::ifstream file(it->path() / "stat");
    std::string stat;
    if (!std::getline(file, stat)) continue;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;
    const std::string_view rest = std::string_view(stat).substr(close + 2);
    const char state = rest.front();
    const auto ppid_end = rest.find(' ', 2);
    if (ppid_end == std::string_view::npos) continue;
    const std::string_view pgrp_text = rest.substr(ppid_end + 1, rest.find(' ', ppid_end + 1));
    long pgrp = 0;
    std::from_chars(pgrp_text.data(), pgrp_text.data() + pgrp_text.size(), pgrp);
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

std::string WithTail(std::string text, std::string tail) {
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  if (tail.empty()) return text;
  return text + ": " + tail;
}

std::string SignalName(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(signal);
}

// Splits the progress channel into lines and reports each to the job.
class ProgressReader {
 public:
  explicit ProgressReader(JobContext& context) : context_(context) {}

  void Feed(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto newline = bytes.find('\n');
      const std::string_view piece = bytes.substr(0, newline);
      if (!skipping_) {
        if (buffer_.size() + piece.size() > kMaxProgressLine) {
          Logger()->warn("job {}: progress line over {} bytes dropped", context_.id(),
                         kMaxProgressLine);
          buffer_.clear();
          skipping_ = true;
        } else {
          buffer_.append(piece);
        }
      }
      if (newline == std::string_view::npos) return;
      if (!skipping_) Handle(buffer_);
      buffer_.clear();
      skipping_ = false;
      bytes.remove_prefix(newline + 1);
    }
  }

  // A last line without '\n' still counts.
  void Finish() {
    if (!skipping_ && !buffer_.empty()) Handle(buffer_);
    buffer_.clear();
  }

 private:
  void Handle(std::string_view line) {
    if (line.empty()) return;
    auto parsed = ParseProgressLine(line);
    if (!parsed) {
      Logger()->warn("job {}: ignored progress line '{}': {}", context_.id(), line.substr(0, 200),
                     parsed.error().message);
      return;
    }
    if (auto* progress = std::get_if<ProgressLine>(&*parsed)) {
      context_.ReportProgress(progress->percent, std::move(progress->message));
    } else {
      context_.SaveCheckpoint(std::move(std::get<CheckpointLine>(*parsed).data));
    }
  }

  JobContext& context_;
  std::string buffer_;
  bool skipping_ = false;
};

// Watches one running command from fork to reaping.
class Supervisor {
 public:
  Supervisor(const ExecOptions& options, JobContext& context, pid_t pid, UniqueFd stdin_fd,
             UniqueFd stdout_fd, UniqueFd stderr_fd, UniqueFd progress_fd)
      : options_(options),
        context_(context),
        pid_(pid),
        stdin_(std::move(stdin_fd)),
        stdout_(std::move(stdout_fd)),
        stderr_(std::move(stderr_fd)),
        progress_(std::move(progress_fd)),
        pidfd_(PidFd(pid)),
        progress_reader_(context) {
    for (const UniqueFd* fd : {&stdin_, &stdout_, &stderr_, &progress_}) SetNonBlocking(fd->get());
    if (context_.payload().empty()) stdin_.Reset();
  }

  Outcome Run() {
    const auto start = Clock::now();
    // Clamped so that an absurd timeout cannot overflow the clock arithmetic.
    const auto timeout = std::min<std::uint64_t>(context_.timeout_ms(), kLongestTimeout.count());
    const auto deadline = timeout > 0 ? start + milliseconds(timeout) : Clock::time_point::max();
    while (true) {
      const auto now = Clock::now();
      if (ending_ == Ending::kNone) {
        if (context_.cancelled()) {
          Terminate(Ending::kCancelled, now);
        } else if (now >= deadline) {
          Terminate(Ending::kTimedOut, now);
        }
      }
      if (term_sent_ && !kill_sent_ && now >= *term_sent_ + options_.kill_grace) {
        ::kill(-pid_, SIGKILL);
        kill_sent_ = now;
      }
      if (!exited_at_ && HasExited(pid_)) exited_at_ = now;
      if (exited_at_) {
        if (ending_ != Ending::kNone) {
          if (!GroupHasLiveMembers(pid_)) break;
        } else if (!OutputsOpen() || now >= *exited_at_ + kDrainGrace) {
          break;
        }
      }
      if (kill_sent_ && now >= *kill_sent_ + kKillWait) {
        Logger()->error("job {}: command still running {}ms after SIGKILL; giving up on it",
                        context_.id(), kKillWait.count());
        break;
      }
      Wait(NextWake(now, deadline));
    }
    // Leftovers of the group die with it; the unreaped leader keeps the group id ours.
    ::kill(-pid_, SIGKILL);
    int status = 0;
    const bool reaped = ::waitpid(pid_, &status, exited_at_ ? 0 : WNOHANG) == pid_;
    ReapLeftovers();
    DrainAvailable();
    progress_reader_.Finish();
    return MakeOutcome(reaped, status);
  }

 private:
  enum class Ending { kNone, kCancelled, kTimedOut, kTooLarge };

  // Members of the group that were re-parented to this process (it is a child subreaper, or
  // init) are reaped once the SIGKILL has done its work. Others are not ours: waitpid says ECHILD.
  void ReapLeftovers() const {
    const auto deadline = Clock::now() + kReapWait;
    while (true) {
      const pid_t reaped = ::waitpid(-pid_, nullptr, WNOHANG);
      if (reaped > 0) continue;
      if (reaped < 0 || Clock::now() >= deadline) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  bool OutputsOpen() const { return stdout_.valid() || stderr_.valid() || progress_.valid(); }

  void Terminate(Ending ending, Clock::time_point now) {
    ending_ = ending;
    ::kill(-pid_, SIGTERM);
    term_sent_ = now;
  }

  Clock::time_point NextWake(Clock::time_point now, Clock::time_point deadline) const {
    Clock::time_point wake = now + kCancelCheck;
    if (ending_ == Ending::kNone) wake = std::min(wake, deadline);
    if (term_sent_ && !kill_sent_) wake = std::min(wake, *term_sent_ + options_.kill_grace);
    if (exited_at_ && ending_ == Ending::kNone) wake = std::min(wake, *exited_at_ + kDrainGrace);
    return wake;
  }

  void Wait(Clock::time_point wake) {
    std::array<pollfd, 5> fds{};
    std::size_t count = 0;
    const auto add = [&](const UniqueFd& fd, short events) {
      if (fd.valid()) fds[count++] = pollfd{fd.get(), events, 0};
    };
    add(stdin_, POLLOUT);
    add(stdout_, POLLIN);
    add(stderr_, POLLIN);
    add(progress_, POLLIN);
    if (!exited_at_) add(pidfd_, POLLIN);
    const auto timeout = std::chrono::ceil<milliseconds>(wake - Clock::now()).count();
    if (::poll(fds.data(), count, static_cast<int>(std::max<std::int64_t>(timeout, 0))) <= 0) {
      return;
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == stdin_.get()) {
        WriteStdin();
      } else if (fds[i].fd != pidfd_.get()) {
        ReadFrom(fds[i].fd);
      }
    }
  }

  void WriteStdin() {
    const std::string& payload = context_.payload();
    const std::size_t chunk = std::min(payload.size() - written_, kReadChunk);
    const auto n = ::write(stdin_.get(), payload.data() + written_, chunk);
    if (n < 0) {
      // EPIPE: the command does not read all of its input, which is its business.
      if (errno != EAGAIN && errno != EINTR) stdin_.Reset();
      return;
    }
    written_ += static_cast<std::size_t>(n);
    if (written_ == payload.size()) stdin_.Reset();
  }

  // Reads one chunk from an output pipe; false when there was nothing to read.
  bool ReadFrom(int fd) {
    std::array<char, kReadChunk> buffer;
    const auto n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    UniqueFd& owner = fd == stdout_.get() ? stdout_ : fd == stderr_.get() ? stderr_ : progress_;
    if (n <= 0) {
      owner.Reset();
      return false;
    }
    const std::string_view data(buffer.data(), static_cast<std::size_t>(n));
    if (&owner == &stdout_) {
      KeepResult(data);
    } else if (&owner == &stderr_) {
      [[maybe_unused]] const auto passed = ::write(STDERR_FILENO, data.data(), data.size());
      stderr_tail_.append(data);
      if (stderr_tail_.size() > kStderrTailBytes) {
        stderr_tail_.erase(0, stderr_tail_.size() - kStderrTailBytes);
      }
    } else {
      progress_reader_.Feed(data);
    }
    return true;
  }

  void KeepResult(std::string_view data) {
    if (ending_ != Ending::kNone) return;
    if (result_.size() + data.size() > options_.max_result_bytes) {
      Terminate(Ending::kTooLarge, Clock::now());
      result_.clear();
      return;
    }
    result_.append(data);
  }

  // What is left in the pipes once the command is gone, without waiting for more. Bounded: a
  // writer that escaped the group could keep a pipe busy forever.
  void DrainAvailable() {
    constexpr int kMaxChunks = 1024;
    for (UniqueFd* fd : {&stdout_, &stderr_, &progress_}) {
      for (int i = 0; i < kMaxChunks && fd->valid() && ReadFrom(fd->get()); ++i) {
      }
    }
  }

  Outcome MakeOutcome(bool reaped, int status) {
    switch (ending_) {
      case Ending::kCancelled:
        return Outcome::Failure("cancelled");
      case Ending::kTimedOut:
        return Outcome::Failure("timed out after " + wire::FormatDuration(static_cast<std::int64_t>(
                                                         context_.timeout_ms())));
      case Ending::kTooLarge:
        return Outcome::Failure("result too large: over " +
                                std::to_string(options_.max_result_bytes) + " bytes");
      case Ending::kNone:
        break;
    }
    if (!reaped) return Outcome::Failure(WithTail("command could not be reaped", stderr_tail_));
    if (WIFSIGNALED(status)) {
      return Outcome::Failure(WithTail("killed by " + SignalName(WTERMSIG(status)), stderr_tail_));
    }
    const int code = WEXITSTATUS(status);
    if (code == static_cast<int>(wire::HandlerExit::kSuccess)) {
      return Outcome::Success(std::move(result_));
    }
    const bool permanent = code == static_cast<int>(wire::HandlerExit::kPermanentFailure);
    return Outcome::Failure(WithTail("exit code " + std::to_string(code), stderr_tail_), permanent);
  }

  const ExecOptions& options_;
  JobContext& context_;
  const pid_t pid_;
  UniqueFd stdin_;
  UniqueFd stdout_;
  UniqueFd stderr_;
  UniqueFd progress_;
  // Readable when the shell exits; when the kernel has no pidfd_open, kCancelCheck bounds the
  // delay instead.
  UniqueFd pidfd_;
  ProgressReader progress_reader_;
  std::size_t written_ = 0;
  std::string result_;
  std::string stderr_tail_;
  Ending ending_ = Ending::kNone;
  std::optional<Clock::time_point> term_sent_;
  std::optional<Clock::time_point> kill_sent_;
  std::optional<Clock::time_point> exited_at_;
};

}  // namespace

Outcome RunCommand(const ExecOptions& options, JobContext& context) {
  CheckpointFile checkpoint;
  if (context.checkpoint()) {
    if (auto written = checkpoint.Write(*context.checkpoint()); !written) {
      return Outcome::Failure("cannot pass the checkpoint: " + written.error().message);
    }
  }
  InputsFiles inputs;
  if (!context.inputs().empty()) {
    if (auto written = inputs.Write(context.inputs()); !written) {
      return Outcome::Failure("cannot pass the inputs: " + written.error().message);
    }
  }
  auto in = MakePipe();
  auto out = MakePipe();
  auto err = MakePipe();
  auto progress = MakePipe();
  for (const auto* pipe : {&in, &out, &err, &progress}) {
    if (!*pipe) return Outcome::Failure("cannot start the command: " + pipe->error().message);
  }

  // Everything the child touches is built here, before fork.
  std::vector<std::string> env =
      ChildEnvironment(context, checkpoint.path(), context.inputs().empty() ? nullptr : &inputs);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (auto& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string shell = "/bin/sh";
  std::string dash_c = "-c";
  std::string command = options.command;
  std::array<char*, 4> argv = {shell.data(), dash_c.data(), command.data(), nullptr};
  sigset_t no_signals;
  sigemptyset(&no_signals);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  constexpr std::string_view kExecFailed = "claw-worker: cannot run /bin/sh\n";
  const int child_in = in->read.get();
  const int child_out = out->write.get();
  const int child_err = err->write.get();
  const int child_progress = progress->write.get();

  SigpipeBlock sigpipe_block;
  const pid_t worker_pid = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Outcome::Failure(Errno("cannot start the command: fork"));
  if (pid == 0) {
    ::setpgid(0, 0);
    // If the worker is killed (kill -9 included), the command dies with it instead of running
    // on unsupervised; the signal survives execve, so `exec prog` is covered too.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != worker_pid) ::_exit(127);
    ::sigprocmask(SIG_SETMASK, &no_signals, nullptr);
    ::sigaction(SIGPIPE, &default_action, nullptr);
    if (::dup2(child_in, STDIN_FILENO) < 0 || ::dup2(child_out, STDOUT_FILENO) < 0 ||
        ::dup2(child_err, STDERR_FILENO) < 0 || ::dup2(child_progress, kChildProgressFd) < 0) {
      ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    [[maybe_unused]] const auto n = ::write(STDERR_FILENO, kExecFailed.data(), kExecFailed.size());
    ::_exit(127);
  }
  // Also in the parent, so the group exists before anything signals it (one of the two calls
  // wins; the other fails harmlessly).
  ::setpgid(pid, pid);
  in->read.Reset();
  out->write.Reset();
  err->write.Reset();
  progress->write.Reset();

  Supervisor supervisor(options, context, pid, std::move(in->write), std::move(out->read),
                        std::move(err->read), std::move(progress->read));
  return supervisor.Run();
}

Handler MakeExecHandler(std::string command) {
  return MakeExecHandler(ExecOptions{.command = std::move(command)});
}

Handler MakeExecHandler(ExecOptions options) {
  return
      [options = std::move(options)](JobContext& context) { return RunCommand(options, context); };
}

}  // namespace claw::worker
