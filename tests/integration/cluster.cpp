#include "tests/integration/cluster.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace claw::testing {
namespace {

// A port nobody listens on now (the kernel's choice for an ephemeral bind).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

std::string BinPath(const std::string& name) { return std::string(CLAW_BIN_DIR) + "/" + name; }

Cluster::Cluster(std::vector<std::string> broker_args)
    : broker_args_(std::move(broker_args)),
      endpoint_("tcp://127.0.0.1:" + std::to_string(FreePort())) {}

void Cluster::StartBroker() {
  std::vector<std::string> argv = {BinPath("claw-broker"), "--bind", endpoint_, "--data",
                                   dir_.File("data")};
  argv.insert(argv.end(), broker_args_.begin(), broker_args_.end());
  broker_ = Process::Start(argv, dir_.File("broker.log"));
  const bool up = WaitFor([&] {
    return Client({"--request-timeout", "500ms", "ping"}).code == 0 || !broker_.Running();
  });
  REQUIRE_MESSAGE(up, "broker did not answer PING; log:\n" << broker_log());
  REQUIRE_MESSAGE(broker_.Running(), "broker exited; log:\n" << broker_log());
}

void Cluster::KillBroker(int signal) {
  broker_.Signal(signal);
  REQUIRE(broker_.Wait(std::chrono::seconds(30)).has_value());
}

Process& Cluster::StartWorker(const std::string& id, const std::string& type,
                              const std::string& exec, std::vector<std::string> extra) {
  std::vector<std::string> argv = {
      BinPath("claw-worker"), "--broker", endpoint_, "--id", id, "--type", type, "--exec", exec};
  argv.insert(argv.end(), extra.begin(), extra.end());
  workers_.erase(id);
  return workers_.emplace(id, Process::Start(argv, dir_.File("worker-" + id + ".log")))
      .first->second;
}

RunResult Cluster::Client(std::vector<std::string> args, const std::string& input) {
  std::vector<std::string> argv = {BinPath("claw-client"), "--broker", endpoint_};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, input);
}

nlohmann::json Cluster::Json(std::vector<std::string> args) {
  args.insert(args.begin(), "--json");
  auto result = Client(args);
  REQUIRE_MESSAGE(result.code == 0, "claw-client failed: " << result.err);
  try {
    return nlohmann::json::parse(result.out);
  } catch (const nlohmann::json::exception& e) {
    FAIL("claw-client printed no JSON: " << result.out);
  }
  return {};
}

std::string Cluster::Submit(std::vector<std::string> args) {
  args.insert(args.begin(), "submit");
  auto result = Client(args);
  REQUIRE_MESSAGE(result.code == 0, "submit failed: " << result.err);
  std::string id = result.out;
  while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
  REQUIRE(id.find('\n') == std::string::npos);
  return id;
}

std::string Cluster::State(const std::string& id) {
  auto result = Client({"--json", "status", id});
  if (result.code != 0) return "";
  try {
    return nlohmann::json::parse(result.out).at("state").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return "";
  }
}

bool Cluster::WaitState(const std::string& id, const std::string& state,
                        std::chrono::milliseconds deadline) {
  return WaitFor([&] { return State(id) == state; }, deadline);
}

}  // namespace claw::testing
