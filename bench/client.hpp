// The benchmark's client side of the Claw protocol: one DEALER that speaks it through the wire
// codec (wire::Encode, wire::Send, zmq poll, wire::DecodeClientReply), pipelines SUBMITs with
// rids, asks CLUSTER, and follows one job with WATCH.
//
// Every wait has a timeout and failures are values: a reply that is not the expected one (wrong
// status, unknown rid, a second reply for a rid, no id) fails the whole call, so a benchmark
// never reports a figure over jobs that were not all accepted.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "schema/codec.hpp"
#include "schema/result.hpp"

namespace claw::bench {

struct SubmitPlan {
  std::string type;
  std::uint64_t count = 0;
  std::uint32_t window = 1;  // SUBMITs sent and not yet answered, at most
  std::size_t payload_size = 128;
  // The run fails when no reply arrives for this long.
  std::chrono::milliseconds stall_timeout{60000};
};

struct SubmitRun {
  std::uint64_t first_submit_ns = 0;   // MonoNanos() of the first SUBMIT's time stamp
  std::uint64_t last_accepted_ns = 0;  // MonoNanos() when the last ACCEPTED was read
  std::vector<std::string> ids;        // one per ACCEPTED, in reply order
};

// A job followed to its final state.
struct WatchedJob {
  std::uint64_t submit_stamp_ns = 0;  // the time stamp at the start of its payload
  wire::JobInfo job;
};

class BenchClient {
 public:
  // A DEALER connected to `endpoint` (reconnecting every 10 ms while the broker is away).
  static Result<BenchClient> Connect(zmq::context_t& context, const std::string& endpoint);

  // Sends `request` with a fresh rid and waits up to `timeout` for the reply with that rid,
  // dropping any other reply. Fails when the request cannot be queued (not connected yet).
  Result<wire::ClientReply> Call(wire::ClientRequest request, std::chrono::milliseconds timeout);
  Result<wire::ClusterInfo> Cluster(std::chrono::milliseconds timeout);

  // Sends plan.count SUBMITs, at most plan.window unanswered, each with a payload stamped when it
  // is sent; every reply must be ACCEPTED with an id and each rid answered exactly once.
  Result<SubmitRun> SubmitMany(const SubmitPlan& plan);

  // SUBMIT, wait for ACCEPTED, then WATCH the job until it is final. Its payload is stamped.
  Result<WatchedJob> SubmitAndWatch(const std::string& type, std::size_t payload_size,
                                    std::chrono::milliseconds timeout);

 private:
  explicit BenchClient(zmq::socket_t socket) : socket_(std::move(socket)) {}
  Status SendRequest(const wire::ClientRequest& request);
  // One reply if one is waiting now, nullopt if none.
  Result<std::optional<wire::ClientReply>> ReceiveNow();
  // Waits up to `timeout` for one reply.
  Result<std::optional<wire::ClientReply>> Receive(std::chrono::milliseconds timeout);

  zmq::socket_t socket_;
  std::uint64_t last_rid_ = 0;
  std::vector<zmq::message_t> parts_;
};

}  // namespace claw::bench
