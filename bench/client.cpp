// BenchClient: see the header.
#include "bench/client.hpp"

#include <algorithm>
#include <string_view>

#include "bench/measure.hpp"
#include "schema/transport.hpp"

namespace claw::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Replies are small; a CLUSTER reply with many workers is the largest.
constexpr std::int64_t kMaxMessageBytes = 64 << 20;
// How soon a DEALER tries again to reach a broker that is not (yet) listening: short, so the time
// a restarted broker takes to accept again is measured to about this precision.
constexpr int kReconnectIvlMs = 10;
// Pipelined sends and receives never come near this many queued messages (the window bounds
// them); it is high so that a large window is never refused by ZeroMQ.
constexpr int kHighWaterMark = 1'000'000;

milliseconds Remaining(Clock::time_point deadline) {
  return std::max(milliseconds(0),
                  std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

}  // namespace

Result<BenchClient> BenchClient::Connect(zmq::context_t& context, const std::string& endpoint) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::immediate, 1);
    socket.set(zmq::sockopt::maxmsgsize, kMaxMessageBytes);
    socket.set(zmq::sockopt::sndhwm, kHighWaterMark);
    socket.set(zmq::sockopt::rcvhwm, kHighWaterMark);
    socket.set(zmq::sockopt::reconnect_ivl, kReconnectIvlMs);
    socket.connect(endpoint);
    return BenchClient(std::move(socket));
  } catch (const zmq::error_t& e) {
    return Fail("cannot connect to " + endpoint + ": " + e.what());
  }
}

Status BenchClient::SendRequest(const wire::ClientRequest& request) {
  if (!wire::Send(socket_, wire::Encode(request))) {
    return Fail(std::string("cannot queue ") + std::string(wire::Name(wire::CommandOf(request))) +
                " (not connected to the broker, or its queue is full)");
  }
  return {};
}

Result<std::optional<wire::ClientReply>> BenchClient::ReceiveNow() {
  try {
    parts_.clear();
    zmq::message_t first;
    if (!socket_.recv(first, zmq::recv_flags::dontwait)) return std::nullopt;
    bool more = first.more();
    parts_.push_back(std::move(first));
    while (more) {
      zmq::message_t part;
      // The rest of a multipart message is already there once its first frame is.
      if (!socket_.recv(part, zmq::recv_flags::none)) break;
      more = part.more();
      parts_.push_back(std::move(part));
    }
  } catch (const zmq::error_t& e) {
    return Fail(std::string("receive failed: ") + e.what());
  }
  std::vector<std::string_view> views;
  views.reserve(parts_.size());
  for (const auto& part : parts_) {
    views.emplace_back(static_cast<const char*>(part.data()), part.size());
  }
  auto reply = wire::DecodeClientReply(views);
  if (!reply) return Fail("the broker sent a reply that does not decode: " + reply.error().message);
  return std::optional<wire::ClientReply>(std::move(*reply));
}

Result<std::optional<wire::ClientReply>> BenchClient::Receive(milliseconds timeout) {
  try {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
  } catch (const zmq::error_t& e) {
    return Fail(std::string("poll failed: ") + e.what());
  }
  return ReceiveNow();
}

Result<wire::ClientReply> BenchClient::Call(wire::ClientRequest request, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::uint64_t rid = ++last_rid_;
  std::visit([rid](auto& r) { r.rid = rid; }, request);
  const auto command = wire::CommandOf(request);
  if (auto sent = SendRequest(request); !sent) return std::unexpected(sent.error());
  // Bounded: each pass either returns or waits for the time left before the deadline.
  while (true) {
    auto reply = Receive(Remaining(deadline));
    if (!reply) return std::unexpected(reply.error());
    if (!*reply) {
      return Fail(std::string("no reply to ") + std::string(wire::Name(command)) + " within " +
                  std::to_string(timeout.count()) + " ms");
    }
    if ((*reply)->rid == rid && (*reply)->command == command) return std::move(**reply);
  }
}

Result<wire::ClusterInfo> BenchClient::Cluster(milliseconds timeout) {
  auto reply = Call(wire::ClusterRequest{}, timeout);
  if (!reply) return std::unexpected(reply.error());
  if (reply->status != wire::StatusCode::kOk || !reply->cluster) {
    return Fail("CLUSTER answered " + std::string(wire::Name(reply->status)) + ": " +
                reply->message);
  }
  return std::move(*reply->cluster);
}

Result<SubmitRun> BenchClient::SubmitMany(const SubmitPlan& plan) {
  SubmitRun run;
  if (plan.count == 0) return run;
  run.ids.reserve(plan.count);
  const std::uint64_t first_rid = last_rid_ + 1;
  last_rid_ += plan.count;
  std::vector<bool> answered(plan.count, false);
  std::uint64_t sent = 0;
  std::uint64_t done = 0;
  // Each ACCEPTED may answer many SUBMITs (batch_ack), as a RabbitMQ confirm may.
  wire::SubmitRequest request{.job = {.type = plan.type}, .batch_ack = true};

  auto take_one = [&](std::uint64_t rid, const std::string* id) -> Status {
    if (rid < first_rid || rid >= first_rid + plan.count) {
      return Fail("a SUBMIT reply with unexpected rid " + std::to_string(rid));
    }
    const std::uint64_t index = rid - first_rid;
    if (answered[index]) return Fail("a second reply for SUBMIT rid " + std::to_string(rid));
    if (id == nullptr || id->empty()) {
      return Fail("ACCEPTED without a job id for rid " + std::to_string(rid));
    }
    answered[index] = true;
    run.ids.push_back(*id);
    ++done;
    return {};
  };
  auto take = [&](const wire::ClientReply& reply) -> Status {
    if (reply.command != wire::ClientCommand::kSubmit) {
      return Fail("unexpected " + std::string(wire::Name(reply.command)) + " reply with rid " +
                  std::to_string(reply.rid));
    }
    if (reply.status != wire::StatusCode::kAccepted) {
      return Fail("SUBMIT rid " + std::to_string(reply.rid) + " answered " +
                  std::string(wire::Name(reply.status)) + ": " + reply.message + " (after " +
                  std::to_string(done) + " of " + std::to_string(plan.count) + " ACCEPTED)");
    }
    if (reply.rids) {
      if (!reply.ids || reply.ids->size() != reply.rids->size()) {
        return Fail("a batched ACCEPTED whose ids do not match its rids");
      }
      for (std::size_t i = 0; i < reply.rids->size(); ++i) {
        if (auto ok = take_one((*reply.rids)[i], &(*reply.ids)[i]); !ok) return ok;
      }
    } else if (auto ok = take_one(reply.rid, reply.id ? &*reply.id : nullptr); !ok) {
      return ok;
    }
    run.last_accepted_ns = MonoNanos();
    return {};
  };

  // Bounded: every pass either reads at least one reply (done grows to plan.count) or fails.
  while (done < plan.count) {
    while (sent < plan.count && sent - done < plan.window) {
      request.rid = first_rid + sent;
      const std::uint64_t stamp = MonoNanos();
      request.job.payload = MakePayload(plan.payload_size, stamp);
      if (sent == 0) run.first_submit_ns = stamp;
      if (auto ok = SendRequest(request); !ok) return std::unexpected(ok.error());
      ++sent;
    }
    auto reply = Receive(plan.stall_timeout);
    if (!reply) return std::unexpected(reply.error());
    if (!*reply) {
      return Fail("no SUBMIT reply for " + std::to_string(plan.stall_timeout.count()) + " ms; " +
                  std::to_string(done) + " of " + std::to_string(plan.count) + " ACCEPTED so far");
    }
    if (auto ok = take(**reply); !ok) return std::unexpected(ok.error());
    // Everything else already waiting, without blocking; at most the window's worth.
    for (std::uint64_t i = 0; i < plan.window; ++i) {
      auto more = ReceiveNow();
      if (!more) return std::unexpected(more.error());
      if (!*more) break;
      if (auto ok = take(**more); !ok) return std::unexpected(ok.error());
    }
  }
  return run;
}

Result<WatchedJob> BenchClient::SubmitAndWatch(const std::string& type, std::size_t payload_size,
                                               milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  WatchedJob watched;
  watched.submit_stamp_ns = MonoNanos();
  auto accepted = Call(
      wire::SubmitRequest{
          .job = {.type = type, .payload = MakePayload(payload_size, watched.submit_stamp_ns)}},
      timeout);
  if (!accepted) return std::unexpected(accepted.error());
  if (accepted->status != wire::StatusCode::kAccepted || !accepted->id) {
    return Fail("SUBMIT answered " + std::string(wire::Name(accepted->status)) + ": " +
                accepted->message);
  }
  const std::uint64_t rid = ++last_rid_;
  if (auto sent = SendRequest(wire::WatchRequest{.rid = rid, .id = *accepted->id}); !sent) {
    return std::unexpected(sent.error());
  }
  // Bounded by the deadline: WATCH answers at once, then at each change until the job is final.
  while (true) {
    auto reply = Receive(Remaining(deadline));
    if (!reply) return std::unexpected(reply.error());
    if (!*reply) {
      return Fail("job " + *accepted->id + " not final within " + std::to_string(timeout.count()) +
                  " ms");
    }
    const auto& r = **reply;
    if (r.rid != rid || r.command != wire::ClientCommand::kWatch) continue;
    if (r.status != wire::StatusCode::kOk || !r.job) {
      return Fail("WATCH answered " + std::string(wire::Name(r.status)) + ": " + r.message);
    }
    if (wire::IsFinal(r.job->state)) {
      watched.job = *r.job;
      return watched;
    }
  }
}

}  // namespace claw::bench
