#include "broker/replicator.hpp"

#include <spdlog/spdlog.h>

#include "schema/transport.hpp"

namespace claw::broker {
namespace {

using Clock = std::chrono::steady_clock;

// A snapshot chunk is cut at this many bytes of payload as well as at chunk_jobs jobs.
constexpr std::size_t kChunkBytes = 8u << 20;
constexpr std::uint32_t kScanStep = 100;

wire::DecodeLimits PeerLimits() {
  wire::DecodeLimits limits;
  limits.max_body_bytes = std::size_t{1} << 30;
  limits.max_array = 10'000'000;
  return limits;
}

}  // namespace

Replicator::Replicator(zmq::context_t& context, std::string peer_endpoint, bool sync,
                       std::chrono::milliseconds ack_timeout, std::uint32_t snapshot_chunk_jobs)
    : context_(context),
      endpoint_(std::move(peer_endpoint)),
      sync_(sync),
      ack_timeout_(ack_timeout),
      chunk_jobs_(snapshot_chunk_jobs) {
  Reconnect();
}

void Replicator::Reconnect() {
  // A fresh socket drops whatever an unreachable standby left queued.
  auto socket = wire::ConnectDealer(context_, endpoint_, -1);
  if (!socket) {
    spdlog::error("replication: {}", socket.error().message);
    return;
  }
  socket_ = std::move(*socket);
}

void Replicator::Activate(std::uint64_t epoch) {
  epoch_ = epoch;
  status_ = ReplicaStatus{};
}

bool Replicator::Send(const wire::PeerMessage& message) {
  return socket_.handle() != nullptr && wire::Send(socket_, wire::Encode(message));
}

void Replicator::Ship(const WriteBatch& batch) {
  ++status_.position;
  if (!status_.in_sync) return;
  if (!Send(wire::PeerBatch{epoch_, status_.position, batch.writes})) {
    spdlog::warn("replication: the standby is not reachable; carrying on alone");
    status_.in_sync = false;
    Reconnect();
    return;
  }
  if (!sync_) {
    AwaitAck(status_.position, std::chrono::milliseconds(0));  // collect what has come
    return;
  }
  if (!AwaitAck(status_.position, ack_timeout_)) {
    spdlog::warn(
        "replication: the standby did not acknowledge batch {} within {} ms; carrying "
        "on alone until it catches up",
        status_.position, ack_timeout_.count());
    status_.in_sync = false;
    Reconnect();
  }
}

void Replicator::SendSnapshot(JobStore& store) {
  status_.in_sync = false;
  const auto started = Clock::now();
  std::uint64_t sent = 0;
  Seq after = 0;
  bool first = true;
  while (true) {
    wire::PeerSnapshot chunk{epoch_, status_.position, first, false, {}};
    std::size_t bytes = 0;
    while (chunk.jobs.size() < chunk_jobs_ && bytes < kChunkBytes) {
      auto jobs = store.Scan(after, kScanStep);
      if (!jobs) {
        spdlog::error("replication: snapshot failed: {}", jobs.error().message);
        return;
      }
      if (jobs->empty()) {
        chunk.last = true;
        break;
      }
      for (auto& job : *jobs) {
        after = job.seq;
        bytes += job.payload.size() + job.result.value_or("").size() + 256;
        chunk.jobs.push_back(std::move(job));
      }
    }
    sent += chunk.jobs.size();
    if (!Send(chunk)) {
      spdlog::warn("replication: the standby is not reachable; snapshot abandoned");
      Reconnect();
      return;
    }
    if (chunk.last) break;
    first = false;
  }
  // Applying a large snapshot takes the standby a while: allow for it.
  const auto allowance = ack_timeout_ + std::chrono::milliseconds(sent / 10);
  if (!AwaitAck(status_.position, allowance, /*fresh=*/true)) {
    spdlog::warn("replication: the standby did not take the snapshot in time");
    Reconnect();
    return;
  }
  status_.in_sync = true;
  spdlog::info(
      "replication: standby in sync at position {} ({} jobs in {} ms)", status_.position, sent,
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
}

bool Replicator::AwaitAck(std::uint64_t position, std::chrono::milliseconds timeout, bool fresh) {
  const auto deadline = Clock::now() + timeout;
  bool got = !fresh && status_.acked >= position;
  while (!got) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto frames = wire::Receive(socket_, std::max(left, std::chrono::milliseconds(0)));
    if (!frames) break;
    auto message = wire::DecodePeerMessage(wire::Views(*frames), PeerLimits());
    if (!message) continue;
    if (const auto* ack = std::get_if<wire::PeerAck>(&*message);
        ack != nullptr && ack->epoch == epoch_) {
      status_.acked = std::max(status_.acked, ack->position);
      got = ack->position >= position;
    }
  }
  return got;
}

}  // namespace claw::broker
