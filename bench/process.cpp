// ChildProcess and /proc readings: see the header.
#include "bench/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace claw::bench {
namespace {

using Clock = std::chrono::steady_clock;

// How often a wait for a child's exit looks again.
constexpr std::chrono::milliseconds kReapPoll{2};

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv) {
  if (argv.empty()) return Fail("no program to start");
  // Everything the child needs is prepared before fork: between fork and exec a multi-threaded
  // parent's child may only make async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_in < 0) return Fail(std::string("cannot open /dev/null: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(null_in);
    return Fail(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // The child must not outlive a benchmark that crashed or was killed.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_in, 0);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(null_in);
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), exit_code_(other.exit_code_) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && Running()) Kill();
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && Running()) Kill();
}

bool ChildProcess::Running() {
  if (pid_ <= 0 || exit_code_) return false;
  int status = 0;
  const pid_t got = ::waitpid(pid_, &status, WNOHANG);
  if (got == pid_) {
    exit_code_ = DecodeStatus(status);
    return false;
  }
  if (got < 0) {
    exit_code_ = -1;
    return false;
  }
  return true;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, signal);
}

bool ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Running()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kReapPoll);
  }
  return true;
}

bool ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return true;
  Signal(SIGTERM);
  if (Wait(grace)) return true;
  Kill();
  return false;
}

void ChildProcess::Kill() {
  if (!Running()) return;
  Signal(SIGKILL);
  int status = 0;
  // SIGKILL cannot be caught: the blocking reap returns once the kernel has torn it down.
  if (::waitpid(pid_, &status, 0) == pid_) {
    exit_code_ = DecodeStatus(status);
  } else {
    exit_code_ = -1;
  }
}

void StopAll(std::vector<ChildProcess>& children, std::chrono::milliseconds grace) {
  for (auto& child : children) {
    if (child.Running()) child.Signal(SIGTERM);
  }
  const auto deadline = Clock::now() + grace;
  for (auto& child : children) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!child.Wait(std::max(left, std::chrono::milliseconds(0)))) child.Kill();
  }
}

Result<double> CpuSeconds(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream in(path);
  std::string text;
  if (!in || !std::getline(in, text)) return Fail("cannot read " + path);
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the
  // last ')'. Field 3 (state) comes first there; utime and stime are fields 14 and 15.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return Fail("unexpected format of " + path);
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return Fail("sysconf(_SC_CLK_TCK) failed");
  return static_cast<double>(utime + stime) / static_cast<double>(ticks);
}

Status ResetPeakRss(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/clear_refs";
  std::ofstream out(path);
  if (!out) return Fail("cannot open " + path);
  out << "5";
  out.flush();
  if (!out) return Fail("cannot write 5 to " + path);
  return {};
}

Result<double> StatusMiB(pid_t pid, const std::string& field) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::ifstream in(path);
  if (!in) return Fail("cannot read " + path);
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(in, line)) {
    if (!line.starts_with(prefix)) continue;
    std::istringstream value(line.substr(prefix.size()));
    double kib = 0;
    if (!(value >> kib)) break;
    return kib / 1024.0;
  }
  return Fail("no " + field + " in " + path);
}

Result<std::string> SelfExecutable() {
  char buffer[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return Fail(std::string("cannot read /proc/self/exe: ") + std::strerror(errno));
  return std::string(buffer, static_cast<std::size_t>(n));
}

}  // namespace claw::bench
