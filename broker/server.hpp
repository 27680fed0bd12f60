// The broker's I/O shell: a ROUTER socket, the store writer thread and the clock around a Core,
// and, for a broker pair, the peer sockets around the Binary Star state machine.
//
// One loop: receive what is waiting, let the Core decide, hand the next task to the writer when
// it is idle, send what the Core produced, then look again at once, or, when every socket is
// known to be empty, sleep in poll on the sockets' file descriptors exactly until the next
// deadline or the next message. Nothing in the loop blocks on the disk.
//
// A standalone broker serves from the start. A broker of a pair starts as PRIMARY or BACKUP
// without a Core; it builds one from its store (which, on a standby, holds the active's
// replicated jobs) when the state machine makes it ACTIVE, and until then answers NOT_ACTIVE.
// A PASSIVE broker applies the active's snapshot and batches through its own store writer and
// acknowledges each once it is on its disk.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <zmq.hpp>

#include "broker/binary_star.hpp"
#include "broker/config.hpp"
#include "broker/core.hpp"
#include "broker/store_writer.hpp"

namespace claw::broker {

class Server {
  struct PrivateTag {};

 public:
  // Opens the data directory (locked against a second broker), recovers the jobs in it (a
  // standalone broker) and binds the endpoints.
  static Result<std::unique_ptr<Server>> Start(const BrokerConfig& config);
  explicit Server(PrivateTag) {}
  ~Server();

  // Serves until `stop` is set, then commits what is pending and returns. Fails when the broker
  // must stop (a dual active pair, or a store that cannot be read).
  Status Run(const std::atomic<bool>& stop);

  // The endpoint actually bound (for tcp://127.0.0.1:*).
  std::string endpoint();

 private:
  // What the store writer is doing, so that its result reaches the right place.
  struct Task {
    WriterTask task;
    bool from_core = false;                // a Core batch: the Core hears the outcome
    std::optional<wire::Envelope> ack_to;  // replicated from the active: acknowledge it
    std::uint64_t ack_position = 0;
  };

  Status BecomeActive(Now now);
  void HandleInbound(wire::BrokerInbound in, Now now);
  void HandleWhileNotActive(const wire::Envelope& from, wire::Inbound message, Now now);
  void HandlePeer(const wire::Envelope& from, wire::PeerMessage message, Now now);
  Status OnPeerEvent(BStarEvent event, Now now);
  // On a passive with a copy: drops the copy when it can no longer catch up by batches.
  void CheckCopy(Now now);
  void PairTick(Now now);
  void SendPeer(const wire::PeerMessage& message);
  void OnWriterResult(WriterResult result, Now now);
  // Takes the writer's finished results; after one, hands it the next batch and sends the replies.
  void ServiceWriter(Now now);
  void FeedWriter(Now now);
  void DrainWriter(Now now);
  std::optional<wire::PairInfo> PairInfo(Now now) const;
  std::uint64_t DataEpoch() const;
  void Flush(Now now);
  void Send(const wire::Envelope& to, const wire::Frames& frames);

  BrokerConfig config_;
  int lock_fd_ = -1;
  zmq::context_t context_{1};
  std::unique_ptr<JobStore> reader_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<Core> core_;  // null until this broker is active
  zmq::socket_t router_;
  wire::DecodeLimits limits_;
  wire::DecodeLimits peer_limits_;

  std::deque<Task> tasks_;
  std::optional<Task> in_flight_;
  std::vector<Outgoing> sending_;  // Flush's buffer, kept for its capacity

  // A socket is armed when its last receive found nothing and nothing was sent on it since, so
  // its file descriptor will wake poll when something arrives.
  bool router_armed_ = false;
  bool writer_armed_ = false;
  bool peer_armed_ = false;
  ReplicaStatus replica_;

  // The pair (unused for a standalone broker).
  BStarState state_ = BStarState::kActive;
  zmq::socket_t peer_router_;
  zmq::socket_t peer_dealer_;
  std::optional<wire::PeerState> peer_;
  std::int64_t peer_heard_ms_ = 0;
  std::int64_t next_state_ms_ = 0;
  std::uint64_t epoch_ = 0;  // of the data this broker holds or serves
  bool have_copy_ = false;   // passive: holds a complete, gap-free copy of the active's jobs
  std::uint64_t applied_position_ = 0;
  std::uint64_t expected_position_ = 0;
  std::optional<std::pair<std::uint64_t, std::int64_t>> behind_;  // (active's position, since)
  std::vector<Job> snapshot_;
  bool snapshot_open_ = false;
  std::int64_t snapshot_chunk_ms_ = 0;  // when the last snapshot chunk arrived
  std::optional<Error> fatal_;          // the pair state machine said this broker must stop
};

// The time now, on both clocks.
Now ClockNow();

}  // namespace claw::broker
