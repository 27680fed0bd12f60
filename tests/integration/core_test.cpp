// End to end: the real claw-broker, claw-worker and claw-client on 127.0.0.1, as a user runs
// them. Each test has its own broker, port and data directory.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "schema/codec.hpp"
#include "schema/transport.hpp"
#include "tests/integration/cluster.hpp"

namespace claw::testing {
namespace {

// Short heartbeats so that a dead worker is noticed in well under a second.
const std::vector<std::string> kFastHeartbeat = {"--heartbeat", "200ms"};

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

TEST_CASE("a submitted job runs on a worker and its result comes back") {
  Cluster c;
  c.StartBroker();
  c.StartWorker("w1", "upper", "tr a-z A-Z");
  const auto id = c.Submit({"--type", "upper", "--payload", "hello claw"});
  CHECK(id.rfind("j-", 0) == 0);
  auto wait = c.Client({"wait", id, "--timeout", "60s"});
  CHECK(wait.code == 0);
  CHECK(wait.out == "HELLO CLAW");
  auto job = c.Json({"status", id});
  CHECK(job["state"] == "succeeded");
  CHECK(job["attempts"] == 1);
  CHECK(job["result"] == "HELLO CLAW");
  CHECK(job["worker"] == "w1");

  auto waited = c.Client({"submit", "--type", "upper", "--payload", "again", "--wait"});
  CHECK(waited.code == 0);
  CHECK(waited.out.find("AGAIN") != std::string::npos);
}

TEST_CASE("jobs run highest priority first and in order within a priority") {
  Cluster c;
  c.StartBroker();
  const auto low = c.Submit({"--type", "p", "--priority", "low"});
  const auto normal1 = c.Submit({"--type", "p"});
  const auto critical = c.Submit({"--type", "p", "--priority", "critical"});
  const auto normal2 = c.Submit({"--type", "p", "--priority", "5"});
  const auto order_file = c.Path("order.txt");
  c.StartWorker("w1", "p", "echo $CLAW_JOB_ID >> " + order_file, {"--capacity", "1"});
  for (const auto& id : {low, normal1, critical, normal2}) {
    CHECK(c.Client({"wait", id, "--timeout", "60s"}).code == 0);
  }
  CHECK(ReadFile(order_file) == critical + "\n" + normal1 + "\n" + normal2 + "\n" + low + "\n");
}

TEST_CASE("a failing job is retried with backoff, then dead, and retry brings it back") {
  Cluster c;
  c.StartBroker();
  const auto fixed = c.Path("fixed");
  c.StartWorker("w1", "flaky",
                "if [ -f " + fixed + " ]; then echo repaired; else echo broken >&2; exit 3; fi");
  const auto id = c.Submit({"--type", "flaky", "--max-attempts", "3", "--backoff", "200ms"});
  auto wait = c.Client({"wait", id, "--timeout", "60s"});
  CHECK(wait.Is(wire::ClientExit::kJobDead));
  auto job = c.Json({"status", id});
  CHECK(job["state"] == "dead");
  CHECK(job["attempts"] == 3);
  CHECK(job["error"].get<std::string>().find("broken") != std::string::npos);
  // Two waits, 200 ms then 400 ms (plus jitter), separate the three attempts.
  CHECK(job["updated_at"].get<std::int64_t>() - job["created_at"].get<std::int64_t>() >= 600);

  std::ofstream(fixed) << "";
  auto retry = c.Client({"retry", id});
  CHECK(retry.code == 0);
  auto again = c.Client({"wait", id, "--timeout", "60s"});
  CHECK(again.code == 0);
  CHECK(Trim(again.out) == "repaired");
  CHECK(c.Json({"status", id})["attempts"] == 1);
}

TEST_CASE("exit code 100 is a permanent failure: dead after one attempt") {
  Cluster c;
  c.StartBroker();
  c.StartWorker("w1", "bad", "echo 'cannot parse' >&2; exit 100");
  const auto id = c.Submit({"--type", "bad", "--max-attempts", "5"});
  CHECK(c.Client({"wait", id, "--timeout", "60s"}).Is(wire::ClientExit::kJobDead));
  auto job = c.Json({"status", id});
  CHECK(job["state"] == "dead");
  CHECK(job["attempts"] == 1);
}

TEST_CASE("kill -9 of a worker mid-job: the job completes on another worker") {
  Cluster c(kFastHeartbeat);
  c.StartBroker();
  auto& doomed = c.StartWorker("doomed", "long", "exec sleep 30");
  const auto id = c.Submit({"--type", "long", "--backoff", "100ms"});
  REQUIRE(c.WaitState(id, "running"));
  CHECK(c.Json({"status", id})["worker"] == "doomed");
  doomed.Signal(SIGKILL);
  REQUIRE(doomed.Wait(std::chrono::seconds(10)).has_value());
  c.StartWorker("rescuer", "long", "echo rescued");
  auto wait = c.Client({"wait", id, "--timeout", "60s"});
  CHECK(wait.code == 0);
  CHECK(Trim(wait.out) == "rescued");
  auto job = c.Json({"status", id});
  CHECK(job["worker"] == "rescuer");
  CHECK(job["attempts"] == 2);
}

TEST_CASE("kill -9 of the broker after N ACCEPTED replies: after a restart all N complete") {
  constexpr int kJobs = 40;
  Cluster c(kFastHeartbeat);
  c.StartBroker();
  // A worker is already busy with some of them when the broker dies.
  c.StartWorker("w1", "durable", "sleep 0.2; cat", {"--capacity", "2"});
  std::set<std::string> accepted;
  for (int i = 0; i < kJobs; ++i) {
    accepted.insert(c.Submit({"--type", "durable", "--payload", "job " + std::to_string(i)}));
  }
  REQUIRE(accepted.size() == kJobs);
  c.KillBroker(SIGKILL);
  c.StartBroker();
  // The worker reconnects to the new broker by itself.
  const bool all_done = WaitFor([&] { return c.Json({"cluster"})["jobs"]["succeeded"] == kJobs; },
                                std::chrono::seconds(90));
  CHECK_MESSAGE(all_done, c.broker_log());
  auto list = c.Json({"list", "--state", "succeeded", "--limit", "1000"});
  std::set<std::string> succeeded;
  for (const auto& job : list) succeeded.insert(job["id"].get<std::string>());
  CHECK(succeeded == accepted);
  auto cluster = c.Json({"cluster"});
  CHECK(cluster["jobs"]["queued"] == 0);
  CHECK(cluster["jobs"]["running"] == 0);
  CHECK(cluster["jobs"]["dead"] == 0);
  CHECK(cluster["epoch"] == 2);
}

TEST_CASE("the same idempotency key twice gives one job") {
  Cluster c;
  c.StartBroker();
  const auto first = c.Submit({"--type", "once", "--key", "invoice-2026-11"});
  const auto second = c.Submit({"--type", "once", "--key", "invoice-2026-11"});
  CHECK(first == second);
  CHECK(c.Json({"list", "--type", "once"}).size() == 1);
}

TEST_CASE("a burst of malformed frames leaves the broker serving") {
  Cluster c;
  c.StartBroker();
  zmq::context_t context;
  zmq::socket_t attacker(context, zmq::socket_type::dealer);
  attacker.set(zmq::sockopt::linger, 0);
  attacker.connect(c.endpoint());
  const std::vector<std::vector<std::string>> garbage = {
      {"GET / HTTP/1.1"},
      {"CLAWC1"},
      {"CLAWC1", "\x01"},
      {"CLAWC1", "\x01", "\xc1"},                                  // never-used msgpack byte
      {"CLAWC1", "\x01", "\x93\x01\x02\x03"},                      // an array, not a map
      {"CLAWC1", "\x01", std::string("\xdd\xff\xff\xff\xff", 5)},  // huge array header
      {"CLAWC1", "\x7f", "\x80"},                                  // unknown command
      {"CLAWC2", "\x01", "\x80"},                                  // unknown version
      {"CLAWW1", "\x05", "\x81\xa2id\x01"},                        // DONE with the wrong types
      {"CLAWW1", "\x03", "\x80"},                                  // JOB is the broker's to send
      {"CLAWC1", "\x01", "\x81\xa3rid\xa1x", "extra"},
  };
  for (int round = 0; round < 100; ++round) {
    for (const auto& frames : garbage) {
      for (std::size_t i = 0; i < frames.size(); ++i) {
        attacker.send(zmq::buffer(frames[i]),
                      i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  }
  // A message over the size limit makes ZeroMQ drop that connection, nothing more.
  zmq::socket_t big(context, zmq::socket_type::dealer);
  big.set(zmq::sockopt::linger, 0);
  big.connect(c.endpoint());
  std::string huge(8 << 20, 'x');
  big.send(zmq::buffer(std::string("CLAWC1")), zmq::send_flags::sndmore);
  big.send(zmq::buffer(std::string("\x01")), zmq::send_flags::sndmore);
  big.send(zmq::buffer(huge), zmq::send_flags::none);

  const bool counted = WaitFor([&] { return c.Json({"cluster"})["malformed"].get<int>() >= 1000; });
  CHECK(counted);
  CHECK(c.broker(0).Running());
  c.StartWorker("w1", "after", "cat");
  auto done = c.Client({"submit", "--type", "after", "--payload", "still here", "--wait"});
  CHECK(done.code == 0);
  CHECK(done.out == "still here");
  CHECK(c.Json({"cluster"})["jobs"]["succeeded"] == 1);
}

TEST_CASE("batch_ack: pipelined SUBMITs are answered by batched ACCEPTEDs, each rid once") {
  Cluster c;
  c.StartBroker();
  zmq::context_t context;
  auto dealer = wire::ConnectDealer(context, c.endpoint(), 1 << 20);
  REQUIRE(dealer.has_value());
  // IMMEDIATE: nothing is queued before the connection exists, so PING until it answers.
  const bool connected = WaitFor([&] {
    if (!wire::Send(*dealer, wire::Encode(wire::ClientRequest{wire::PingRequest{.rid = 1}}))) {
      return false;
    }
    return wire::Receive(*dealer, std::chrono::milliseconds(500)).has_value();
  });
  REQUIRE(connected);
  constexpr std::uint64_t kJobs = 300;
  for (std::uint64_t rid = 100; rid < 100 + kJobs; ++rid) {
    wire::SubmitRequest submit{.rid = rid, .job = {.type = "folded"}, .batch_ack = true};
    REQUIRE(wire::Send(*dealer, wire::Encode(wire::ClientRequest{submit})));
  }
  std::map<std::uint64_t, std::string> ids;  // rid -> job id
  std::size_t replies = 0;
  bool duplicate = false;
  // Bounded: each pass waits at most 30 s for a reply, and every reply answers at least one rid.
  while (ids.size() < kJobs && !duplicate) {
    auto frames = wire::Receive(*dealer, std::chrono::seconds(30));
    REQUIRE(frames.has_value());
    auto reply = wire::DecodeClientReply(wire::Views(*frames));
    REQUIRE(reply.has_value());
    if (reply->command != wire::ClientCommand::kSubmit) continue;  // a late PING answer
    REQUIRE(reply->status == wire::StatusCode::kAccepted);
    ++replies;
    std::vector<std::uint64_t> rids = reply->rids.value_or(std::vector{reply->rid});
    std::vector<std::string> answered = reply->ids.value_or(std::vector{reply->id.value_or("")});
    REQUIRE(rids.size() == answered.size());
    CHECK(rids.front() == reply->rid);
    for (std::size_t i = 0; i < rids.size(); ++i) {
      duplicate = duplicate || !ids.emplace(rids[i], answered[i]).second;
    }
  }
  CHECK_FALSE(duplicate);
  REQUIRE(ids.size() == kJobs);
  CHECK(ids.begin()->first == 100);
  CHECK(ids.rbegin()->first == 100 + kJobs - 1);
  std::set<std::string> distinct;
  for (const auto& [rid, id] : ids) distinct.insert(id);
  CHECK(distinct.size() == kJobs);
  // The broker reads what has arrived before it starts a commit, and a commit (a hand-off to the
  // writer thread, a transaction, an fsync) takes far longer than sending a SUBMIT.
  CHECK(replies < kJobs);
  CHECK(c.Json({"cluster"})["jobs"]["queued"] == kJobs);
  CHECK(c.State(ids.at(100)) == "queued");
}

TEST_CASE("cancel: a queued job never runs, a running job's worker stops it") {
  Cluster c;
  c.StartBroker();
  const auto queued = c.Submit({"--type", "work", "--payload", "fast"});
  CHECK(c.Client({"cancel", queued}).code == 0);
  CHECK(c.State(queued) == "cancelled");

  c.StartWorker("w1", "work", "read x; if [ \"$x\" = slow ]; then sleep 30; fi; echo ok",
                {"--capacity", "1"});
  const auto slow = c.Submit({"--type", "work", "--payload", "slow"});
  REQUIRE(c.WaitState(slow, "running"));
  CHECK(c.Client({"cancel", slow}).code == 0);
  CHECK(c.State(slow) == "cancelled");
  CHECK(c.Client({"wait", slow, "--timeout", "10s"}).Is(wire::ClientExit::kJobCancelled));
  // The worker's only slot is free again once the handler has been stopped.
  const auto fast = c.Submit({"--type", "work", "--payload", "fast"});
  auto wait = c.Client({"wait", fast, "--timeout", "60s"});
  CHECK(wait.code == 0);
  CHECK(Trim(wait.out) == "ok");
  CHECK(c.State(queued) == "cancelled");
  CHECK(c.Client({"cancel", fast}).Is(wire::ClientExit::kError));  // CONFLICT: already succeeded
}

TEST_CASE("a wait that times out leaves the job alone") {
  Cluster c;
  c.StartBroker();
  const auto id = c.Submit({"--type", "nobody-runs-this"});
  CHECK(c.Client({"wait", id, "--timeout", "300ms"}).Is(wire::ClientExit::kWaitTimeout));
  CHECK(c.State(id) == "queued");
  CHECK(c.Client({"status", "j-999999"}).Is(wire::ClientExit::kNotFound));
}

TEST_CASE("bad flags and config values get a message naming them and a non-zero exit") {
  TempDir dir;
  auto broker = Run({BinPath("claw-broker"), "--durability", "sometimes"});
  CHECK(broker.code == 2);
  CHECK(broker.err.find("sometimes") != std::string::npos);
  const auto config = dir.File("claw.yaml");
  std::ofstream(config) << "broker:\n  bind: tcp://127.0.0.1:1\n  hartbeat: 1s\n";
  auto bad_config = Run({BinPath("claw-broker"), "--config", config});
  CHECK(bad_config.code == 2);
  CHECK(bad_config.err.find("broker.hartbeat") != std::string::npos);
  auto client = Run({BinPath("claw-client"), "submit", "--type", "t", "--priority", "urgent"});
  CHECK(client.Is(wire::ClientExit::kUsage));
  CHECK(client.err.find("urgent") != std::string::npos);
  // Names are checked before anything is sent: no broker listens here.
  for (const std::vector<std::string>& flags : std::vector<std::vector<std::string>>{
           {"--type", "has space"}, {"--type", "t", "--zone", "eu/1"}}) {
    std::vector<std::string> args = {BinPath("claw-client"), "--broker", "tcp://127.0.0.1:1",
                                     "submit"};
    args.insert(args.end(), flags.begin(), flags.end());
    const std::string& flag = flags[flags.size() - 2];
    CAPTURE(flag);
    auto named = Run(args);
    CHECK(named.Is(wire::ClientExit::kUsage));
    CHECK(named.err.find(flag) != std::string::npos);
    CHECK(named.err.find("must be 1-128 bytes of A-Z a-z 0-9 _ . : -") != std::string::npos);
  }
  auto worker = Run({BinPath("claw-worker"), "--type", "t", "--capacity", "0", "--exec", "true"});
  CHECK(worker.code != 0);
  CHECK(worker.err.find("capacity") != std::string::npos);
}

TEST_CASE("dns:// discovery: a worker and a client find the broker through a name") {
  Cluster c;
  c.StartBroker();
  const auto port = c.endpoint().substr(c.endpoint().rfind(':') + 1);
  const std::string by_name = "dns://localhost:" + port;
  auto worker = Process::Start({BinPath("claw-worker"), "--broker", by_name, "--id", "named",
                                "--type", "upper", "--exec", "tr a-z A-Z"},
                               c.Path("worker-named.log"));
  auto waited = Run({BinPath("claw-client"), "--broker", by_name, "submit", "--type", "upper",
                     "--payload", "found", "--wait", "--timeout", "60s"});
  CHECK(waited.code == 0);
  CHECK(waited.out.find("FOUND") != std::string::npos);
  CHECK(c.Json({"cluster"})["workers"][0]["id"] == "named");
  // A name that does not resolve is the same as a broker that does not answer.
  auto unknown =
      Run({BinPath("claw-client"), "--broker", "dns://no-such-host.invalid:" + port, "ping"});
  CHECK(unknown.Is(wire::ClientExit::kUnreachable));
  CHECK(unknown.err.find("cannot resolve dns://no-such-host.invalid:") != std::string::npos);
  // A worker started before its name resolves keeps trying, with its reconnect backoff.
  const std::string log = c.Path("worker-early.log");
  auto early =
      Process::Start({BinPath("claw-worker"), "--broker", "dns://no-such-host.invalid:" + port,
                      "--id", "early", "--type", "upper", "--exec", "true"},
                     log);
  const auto attempts = [&] {
    const std::string text = ReadFile(log);
    const std::string line = "reconnecting to dns://no-such-host.invalid:";
    int n = 0;
    for (auto at = text.find(line); at != std::string::npos; at = text.find(line, at + 1)) ++n;
    return n;
  };
  CHECK(WaitFor([&] { return attempts() >= 2; }, std::chrono::seconds(60)));
  CHECK(early.Running());
  early.Signal(SIGTERM);
  CHECK(early.Wait(std::chrono::seconds(30)) == 0);
  // Beside a broker it can reach, a name that does not resolve is only a warning.
  auto mixed = Process::Start({BinPath("claw-worker"), "--broker",
                               "dns://no-such-host.invalid:" + port + "," + c.endpoint(), "--id",
                               "mixed", "--type", "upper", "--exec", "true"},
                              c.Path("worker-mixed.log"));
  CHECK_MESSAGE(WaitFor([&] {
                  const auto cluster = c.Json({"cluster"});
                  for (const auto& w : cluster["workers"]) {
                    if (w["id"] == "mixed") return true;
                  }
                  return false;
                }),
                ReadFile(c.Path("worker-mixed.log")));
}

TEST_CASE("claw-client reports an unreachable broker with its exit code") {
  Cluster c;  // never started
  auto ping = c.Client({"--request-timeout", "200ms", "ping"});
  CHECK(ping.Is(wire::ClientExit::kUnreachable));
}

}  // namespace
}  // namespace claw::testing
