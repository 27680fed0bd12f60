// A real claw-broker process for one benchmark run, and the scratch data directory it uses.
//
// The broker listens on 127.0.0.1 at a free port, keeps its data in a fresh directory on the
// real disk, logs at warn (logging every state change would cost time) and is ended by its PID.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "bench/process.hpp"
#include "schema/result.hpp"

namespace claw::bench {

// A directory created for one run and removed, with everything in it, when this goes away.
class ScratchDir {
 public:
  // Creates `root`/`name` (and `root` if needed); fails when it already exists.
  static Result<std::unique_ptr<ScratchDir>> Create(const std::string& root,
                                                    const std::string& name);
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  // Removes the directory, and `root` too when that is left empty.
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  ScratchDir(std::string root, std::string path) : root_(std::move(root)), path_(std::move(path)) {}
  std::string root_;
  std::string path_;
};

// The file system a path lives on ("ext4", "tmpfs", ...) and whether it is memory-backed.
struct FileSystemKind {
  std::string name;
  bool in_memory = false;
};
Result<FileSystemKind> FileSystemOf(const std::string& path);

struct BrokerOptions {
  std::string binary;
  std::string data_dir;
  std::string durability = "full";
  // The broker's limit of pending jobs; 0 keeps the broker's default.
  std::uint64_t max_pending = 0;
  std::chrono::milliseconds start_deadline{30000};
  std::chrono::milliseconds stop_grace{30000};
};

class Broker {
 public:
  // Starts the broker and waits until it answers PING.
  static Result<std::unique_ptr<Broker>> Start(zmq::context_t& context, BrokerOptions options);
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;
  // Stops it (SIGTERM, then SIGKILL after the grace) if it still runs.
  ~Broker();

  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return process_.pid(); }
  bool Running() { return process_.Running(); }

  // kill -9, and reap it.
  void KillHard();
  // Starts the binary again on the same data directory and endpoint, without waiting for it.
  Status Respawn();
  // Waits until the broker answers PING; fails early when the process exits.
  Status WaitReady(std::chrono::milliseconds deadline);
  // SIGTERM, then SIGKILL after the grace; fails when SIGKILL was needed or it exited non-zero.
  Status Stop();

 private:
  Broker(zmq::context_t& context, BrokerOptions options)
      : context_(context), options_(std::move(options)) {}
  std::vector<std::string> Argv() const;

  zmq::context_t& context_;
  BrokerOptions options_;
  std::string endpoint_;
  std::string config_path_;
  ChildProcess process_;
};

}  // namespace claw::bench
