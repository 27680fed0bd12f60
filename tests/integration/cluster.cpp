#include "tests/integration/cluster.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tuple>

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

std::string LocalEndpoint() { return "tcp://127.0.0.1:" + std::to_string(FreePort()); }

Cluster::Cluster(std::vector<std::string> broker_args) {
  brokers_.push_back({LocalEndpoint(), std::move(broker_args), {}});
  endpoint_ = brokers_[0].bind;
}

std::unique_ptr<Cluster> Cluster::Pair(std::vector<std::string> broker_args) {
  auto cluster = std::make_unique<Cluster>(broker_args);
  const std::string peer_a = LocalEndpoint();
  const std::string peer_b = LocalEndpoint();
  cluster->brokers_.push_back({LocalEndpoint(), broker_args, {}});
  for (const auto& [index, role, bind, peer] :
       {std::tuple{0, "--primary", peer_a, peer_b}, std::tuple{1, "--backup", peer_b, peer_a}}) {
    auto& args = cluster->brokers_[index].args;
    args.insert(args.end(), {role, "--peer-bind", bind, "--peer", peer});
  }
  cluster->endpoint_ = cluster->brokers_[0].bind + "," + cluster->brokers_[1].bind;
  return cluster;
}

void Cluster::StartBroker(std::size_t index) {
  Broker& b = brokers_.at(index);
  std::vector<std::string> argv = {BinPath("claw-broker"), "--bind", b.bind, "--data",
                                   dir_.File("data-" + std::to_string(index))};
  argv.insert(argv.end(), b.args.begin(), b.args.end());
  b.process = Process::Start(argv, dir_.File("broker-" + std::to_string(index) + ".log"));
  const bool up = WaitFor([&] {
    return ClientAt(index, {"--request-timeout", "500ms", "ping"}).code == 0 ||
           !b.process.Running();
  });
  REQUIRE_MESSAGE(up, "broker did not answer PING; log:\n" << broker_log(index));
  REQUIRE_MESSAGE(b.process.Running(), "broker exited; log:\n" << broker_log(index));
}

void Cluster::KillBroker(int signal, std::size_t index) {
  Process& p = brokers_.at(index).process;
  p.Signal(signal);
  REQUIRE(p.Wait(std::chrono::seconds(30)).has_value());
}

RunResult Cluster::ClientAt(std::size_t index, std::vector<std::string> args) {
  std::vector<std::string> argv = {BinPath("claw-client"), "--broker", brokers_.at(index).bind};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
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

std::string Cluster::GroupSubmit(std::vector<std::string> args) {
  args.insert(args.begin(), {"group", "submit"});
  auto result = Client(args);
  REQUIRE_MESSAGE(result.code == 0, "group submit failed: " << result.err);
  std::string id = result.out;
  while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
  REQUIRE(id.rfind("g-", 0) == 0);
  return id;
}

nlohmann::json Cluster::Group(const std::string& id) { return Json({"group", "status", id}); }

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
