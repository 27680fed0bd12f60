// Broker and ScratchDir: see the header.
#include "bench/broker_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/client.hpp"

namespace claw::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A port that may clash with another program between our probe and the broker's bind: the
// start is tried again on a new port.
constexpr int kStartAttempts = 3;
// One PING's wait while the broker starts.
constexpr milliseconds kPingTimeout{200};
// Between two tries to send PING while the connection does not exist yet.
constexpr milliseconds kConnectRetry{5};

// A TCP port on 127.0.0.1 that is free now (the kernel picks it for a bind to port 0).
Result<int> FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  ::close(fd);
  if (!ok) return Fail(std::string("cannot find a free port: ") + std::strerror(error));
  return static_cast<int>(ntohs(address.sin_port));
}

}  // namespace

Result<std::unique_ptr<ScratchDir>> ScratchDir::Create(const std::string& root,
                                                       const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return Fail("cannot create " + root + ": " + ec.message());
  const std::string path = (std::filesystem::path(root) / name).string();
  if (!std::filesystem::create_directory(path, ec)) {
    return Fail("cannot create " + path + (ec ? ": " + ec.message() : ": it already exists"));
  }
  return std::unique_ptr<ScratchDir>(new ScratchDir(root, path));
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  // Succeeds only when nothing else is left in the root.
  std::filesystem::remove(root_, ec);
}

Result<FileSystemKind> FileSystemOf(const std::string& path) {
  struct statfs info {};
  if (::statfs(path.c_str(), &info) != 0) {
    return Fail("statfs " + path + ": " + std::strerror(errno));
  }
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0xEF53:
      return FileSystemKind{"ext2/3/4", false};
    case 0x58465342:
      return FileSystemKind{"xfs", false};
    case 0x9123683E:
      return FileSystemKind{"btrfs", false};
    case 0x794C7630:
      return FileSystemKind{"overlayfs", false};
    case 0x01021994:
      return FileSystemKind{"tmpfs", true};
    case 0x858458F6:
      return FileSystemKind{"ramfs", true};
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(info.f_type));
      return FileSystemKind{std::string("type ") + hex, false};
    }
  }
}

Result<std::unique_ptr<Broker>> Broker::Start(zmq::context_t& context, BrokerOptions options) {
  if (::access(options.binary.c_str(), X_OK) != 0) {
    return Fail("cannot run the broker " + options.binary + " (build claw-broker or pass " +
                "--broker-bin)");
  }
  std::unique_ptr<Broker> broker(new Broker(context, std::move(options)));
  if (broker->options_.max_pending != 0) {
    broker->config_path_ = broker->options_.data_dir + "/bench-broker.yaml";
    std::ofstream config(broker->config_path_);
    config << "# Written by claw-bench: room for the workload's jobs.\n"
           << "distribution:\n  taskQueue:\n    maxPending: " << broker->options_.max_pending
           << "\n";
    config.flush();
    if (!config) return Fail("cannot write " + broker->config_path_);
  }
  std::string last_error;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    auto port = FreePort();
    if (!port) return std::unexpected(port.error());
    broker->endpoint_ = "tcp://127.0.0.1:" + std::to_string(*port);
    if (auto spawned = broker->Respawn(); !spawned) return std::unexpected(spawned.error());
    auto ready = broker->WaitReady(broker->options_.start_deadline);
    if (ready) return broker;
    last_error = ready.error().message;
    broker->process_.Kill();
  }
  return Fail("the broker did not start: " + last_error);
}

Broker::~Broker() {
  if (process_.Running()) process_.Stop(options_.stop_grace);
}

std::vector<std::string> Broker::Argv() const {
  std::vector<std::string> argv = {
      options_.binary,     "--bind",      endpoint_, "--data", options_.data_dir, "--durability",
      options_.durability, "--log-level", "warn"};
  if (!config_path_.empty()) {
    argv.push_back("--config");
    argv.push_back(config_path_);
  }
  return argv;
}

Status Broker::Respawn() {
  auto child = ChildProcess::Start(Argv());
  if (!child) return std::unexpected(child.error());
  process_ = std::move(*child);
  return {};
}

void Broker::KillHard() { process_.Kill(); }

Status Broker::WaitReady(milliseconds deadline) {
  const auto until = Clock::now() + deadline;
  auto client = BenchClient::Connect(context_, endpoint_);
  if (!client) return std::unexpected(client.error());
  std::string last_error = "no answer";
  // Bounded by the deadline; each pass waits at most kPingTimeout.
  while (Clock::now() < until) {
    if (!process_.Running()) {
      return Fail("the broker exited with code " +
                  std::to_string(process_.exit_code().value_or(-1)) +
                  " while starting (its messages are above)");
    }
    auto reply = client->Call(wire::PingRequest{}, kPingTimeout);
    if (reply && reply->status == wire::StatusCode::kOk) return {};
    if (reply) {
      last_error = "PING answered " + std::string(wire::Name(reply->status));
    } else {
      last_error = reply.error().message;
      std::this_thread::sleep_for(kConnectRetry);
    }
  }
  return Fail("the broker at " + endpoint_ + " did not answer PING within " +
              std::to_string(deadline.count()) + " ms: " + last_error);
}

Status Broker::Stop() {
  if (!process_.Running()) {
    return Fail("the broker had already exited (code " +
                std::to_string(process_.exit_code().value_or(-1)) + ")");
  }
  if (!process_.Stop(options_.stop_grace)) {
    return Fail("the broker did not stop within " + std::to_string(options_.stop_grace.count()) +
                " ms of SIGTERM and was killed");
  }
  if (process_.exit_code() != 0) {
    return Fail("the broker exited with code " + std::to_string(process_.exit_code().value_or(-1)));
  }
  return {};
}

}  // namespace claw::bench
