// Real child processes for the integration tests: started with argv (no shell), output to files
// or pipes, ended by PID. Waiting is always for an event with a deadline, never a fixed sleep.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "schema/protocol_constants.hpp"

namespace claw::testing {

// A process that runs in the background until the test ends it.
class Process {
 public:
  // Starts argv[0] with its stdout and stderr appended to `log_path`.
  static Process Start(const std::vector<std::string>& argv, const std::string& log_path,
                       const std::map<std::string, std::string>& env = {});
  Process() = default;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Ends the process with SIGKILL if it is still running.
  ~Process();

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int signal);
  // Waits for the process to exit; its exit code, or 128+signal, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct RunResult {
  int code = -1;  // exit code, 128+signal, or -1 if it timed out (and was killed)
  std::string out;
  std::string err;
  // Whether a claw-client (or a script following exit_codes.client) ended so.
  bool Is(wire::ClientExit exit) const { return code == static_cast<int>(exit); }
};

// Runs a command to completion, feeding `input` on stdin.
RunResult Run(const std::vector<std::string>& argv, const std::string& input = "",
              std::chrono::milliseconds timeout = std::chrono::seconds(60),
              const std::map<std::string, std::string>& env = {});

// Polls `condition` every 20 ms until it holds or `deadline` passes; true if it held.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds deadline = std::chrono::seconds(30));

std::string ReadFile(const std::string& path);

}  // namespace claw::testing
