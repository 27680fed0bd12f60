// A Claw cluster made of the real programs on 127.0.0.1: one broker on a free port with its data
// in a temporary directory, workers started on demand, and claw-client runs. Every process is
// ended by PID when the test ends.
#pragma once

#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/process.hpp"
#include "tests/unit/temp_dir.hpp"

namespace claw::testing {

std::string BinPath(const std::string& name);

class Cluster {
 public:
  // `broker_args` are added to every broker start (e.g. a short --heartbeat).
  explicit Cluster(std::vector<std::string> broker_args = {});
  // Two brokers, a primary (index 0) and a backup (index 1), each other's peer. Clients and
  // workers are given both endpoints.
  static std::unique_ptr<Cluster> Pair(std::vector<std::string> broker_args = {});

  // Starts a broker and waits until it answers PING.
  void StartBroker(std::size_t index = 0);
  void KillBroker(int signal, std::size_t index = 0);  // and waits for it to exit
  Process& broker(std::size_t index = 0) { return brokers_.at(index).process; }
  // Runs claw-client against one broker only.
  RunResult ClientAt(std::size_t index, std::vector<std::string> args);

  // Starts `claw-worker --broker E --id ID --type TYPE --exec EXEC` plus `extra`.
  Process& StartWorker(const std::string& id, const std::string& type, const std::string& exec,
                       std::vector<std::string> extra = {});
  Process& worker(const std::string& id) { return workers_.at(id); }

  // Runs claw-client against this broker.
  RunResult Client(std::vector<std::string> args, const std::string& input = "");
  // Runs claw-client --json and parses its stdout (fails the test if it cannot).
  nlohmann::json Json(std::vector<std::string> args);
  // `claw-client submit` and the id it printed.
  std::string Submit(std::vector<std::string> args);
  // `claw-client group submit` and the group id it printed.
  std::string GroupSubmit(std::vector<std::string> args);
  // `claw-client --json group status ID`.
  nlohmann::json Group(const std::string& id);
  std::string State(const std::string& id);
  // Waits until the job is in `state`.
  bool WaitState(const std::string& id, const std::string& state,
                 std::chrono::milliseconds deadline = std::chrono::seconds(60));

  // Every broker's endpoint, comma-separated.
  const std::string& endpoint() const { return endpoint_; }
  std::string Path(const std::string& name) const { return dir_.File(name); }
  std::string broker_log(std::size_t index = 0) const {
    return ReadFile(dir_.File("broker-" + std::to_string(index) + ".log"));
  }

 private:
  struct Broker {
    std::string bind;
    std::vector<std::string> args;  // besides --bind and --data
    Process process;
  };

  TempDir dir_;
  std::vector<Broker> brokers_;
  std::string endpoint_;
  std::map<std::string, Process> workers_;
};

}  // namespace claw::testing
