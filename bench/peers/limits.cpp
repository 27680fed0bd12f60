// Two limits of the machine, measured in the same run as the peers (WORKLOADS.md, "Limits of
// this machine"): fdatasync of a 128-byte append, and a ZeroMQ DEALER-ROUTER round trip with one
// message in flight between two processes. Prints one JSON object.
//
// usage: peer-limits --dir DIR [--fsyncs N] [--round-trips N]
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "driver.hpp"

namespace claw::peers {
namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

struct Rate {
  double per_s = 0;
  double p50_us = 0;
};

Result<Rate> FdatasyncRate(const std::string& dir, int count) {
  const std::string path = dir + "/fdatasync.probe";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (fd < 0) return Fail("open " + path + ": " + std::strerror(errno));
  char record[128];
  std::memset(record, 'r', sizeof record);
  std::vector<double> each_us;
  const std::int64_t begin = NowNs();
  for (int i = 0; i < count; ++i) {
    const std::int64_t start = NowNs();
    if (write(fd, record, sizeof record) != static_cast<ssize_t>(sizeof record) ||
        fdatasync(fd) != 0) {
      close(fd);
      return Fail(std::string("write/fdatasync: ") + std::strerror(errno));
    }
    each_us.push_back(static_cast<double>(NowNs() - start) / 1000.0);
  }
  const double seconds = static_cast<double>(NowNs() - begin) / 1e9;
  close(fd);
  unlink(path.c_str());
  return Rate{.per_s = count / seconds, .p50_us = Median(each_us)};
}

// The child echoes every message back on a ROUTER; the parent times DEALER round trips.
Result<Rate> ZmqRoundTrip(int count) {
  void* context = zmq_ctx_new();
  void* router = zmq_socket(context, ZMQ_ROUTER);
  if (zmq_bind(router, "tcp://127.0.0.1:*") != 0) {
    return Fail(std::string("zmq_bind: ") + zmq_strerror(zmq_errno()));
  }
  char endpoint[256];
  std::size_t size = sizeof endpoint;
  zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &size);
  zmq_close(router);
  zmq_ctx_term(context);

  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) return Fail(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    void* ctx = zmq_ctx_new();
    void* echo = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(echo, endpoint) != 0) _exit(1);
    char identity[256];
    char body[256];
    for (;;) {
      const int id_size = zmq_recv(echo, identity, sizeof identity, 0);
      const int body_size = zmq_recv(echo, body, sizeof body, 0);
      if (id_size < 0 || body_size < 0) _exit(1);
      zmq_send(echo, identity, static_cast<std::size_t>(id_size), ZMQ_SNDMORE);
      zmq_send(echo, body, static_cast<std::size_t>(body_size), 0);
    }
  }
  void* ctx = zmq_ctx_new();
  void* dealer = zmq_socket(ctx, ZMQ_DEALER);
  const int linger = 0;
  const int timeout_ms = 10'000;
  zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  zmq_connect(dealer, endpoint);
  std::vector<double> each_us;
  char message[128] = {};
  const int warmup = 200;
  std::int64_t begin = 0;
  Status status;
  for (int i = 0; i < warmup + count && status; ++i) {
    if (i == warmup) begin = NowNs();
    const std::int64_t start = NowNs();
    zmq_send(dealer, message, sizeof message, 0);
    if (zmq_recv(dealer, message, sizeof message, 0) < 0) status = Fail("no echo for 10 s");
    if (i >= warmup) each_us.push_back(static_cast<double>(NowNs() - start) / 1000.0);
  }
  const double seconds = static_cast<double>(NowNs() - begin) / 1e9;
  zmq_close(dealer);
  zmq_ctx_term(ctx);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  if (!status) return std::unexpected(status.error());
  return Rate{.per_s = count / seconds, .p50_us = Median(each_us)};
}

}  // namespace
}  // namespace claw::peers

int main(int argc, char** argv) {
  using namespace claw::peers;
  std::string dir;
  int fsyncs = 2000;
  int round_trips = 5000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dir") dir = argv[i + 1];
    if (flag == "--fsyncs") fsyncs = std::max(1, std::atoi(argv[i + 1]));
    if (flag == "--round-trips") round_trips = std::max(1, std::atoi(argv[i + 1]));
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: %s --dir DIR [--fsyncs N] [--round-trips N]\n", argv[0]);
    return 2;
  }
  const auto sync = FdatasyncRate(dir, fsyncs);
  if (!sync) {
    std::fprintf(stderr, "fdatasync: %s\n", sync.error().c_str());
    return 1;
  }
  const auto zmq = ZmqRoundTrip(round_trips);
  if (!zmq) {
    std::fprintf(stderr, "zmq round trip: %s\n", zmq.error().c_str());
    return 1;
  }
  std::printf(
      "{\"peer\":\"limits\",\"fdatasync_per_s\":%.0f,\"fdatasync_p50_us\":%.0f,"
      "\"zmq_round_trip_per_s\":%.0f,\"zmq_round_trip_p50_us\":%.0f}\n",
      sync->per_s, sync->p50_us, zmq->per_s, zmq->p50_us);
  return 0;
}
