// Child processes for the benchmark (the broker and the worker processes) and what the kernel
// says about them: CPU time and resident memory from /proc.
//
// A child is started with argv (no shell), dies with the benchmark (PR_SET_PDEATHSIG), and is
// ended by its PID: SIGTERM, then SIGKILL once a deadline passes. Every wait has a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "schema/result.hpp"

namespace claw::bench {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with stdin from /dev/null and stdout, stderr inherited.
  static Result<ChildProcess> Start(const std::vector<std::string>& argv);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills (SIGKILL) and reaps a child that is still running.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // False once the child has exited (and it has been reaped).
  bool Running();
  // The exit code (or 128 + signal) once the child has exited.
  std::optional<int> exit_code() const { return exit_code_; }
  void Signal(int signal);
  // Waits up to `timeout` for the child to exit; true when it has.
  bool Wait(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL when it has not exited within `grace`. True when it exited on SIGTERM.
  bool Stop(std::chrono::milliseconds grace);
  // SIGKILL and reap.
  void Kill();

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Ends every running process in `children`: SIGTERM to all, then each gets until `grace` from
// now before SIGKILL.
void StopAll(std::vector<ChildProcess>& children, std::chrono::milliseconds grace);

// utime + stime of a process, in seconds, from /proc/PID/stat.
Result<double> CpuSeconds(pid_t pid);
// Resets the peak resident set size (VmHWM) by writing "5" to /proc/PID/clear_refs.
Status ResetPeakRss(pid_t pid);
// A "kB" line of /proc/PID/status ("VmHWM", "VmRSS"), in MiB.
Result<double> StatusMiB(pid_t pid, const std::string& field);

// The path of the running executable (/proc/self/exe).
Result<std::string> SelfExecutable();

}  // namespace claw::bench
