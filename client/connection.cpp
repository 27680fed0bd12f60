// Lazy Pirate over a DEALER socket: send, wait for the reply with our rid, and on silence close
// the socket and resend to the next broker. See connection.hpp for the contract.
#include "client/connection.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <random>
#include <thread>
#include <utility>
#include <variant>
#include <zmq.hpp>

#include "client/exit_codes.hpp"
#include "client/text_format.hpp"
#include "schema/transport.hpp"

namespace claw::client {
namespace {

using Clock = std::chrono::steady_clock;

// Replies can be large (a LIST of 10000 jobs, a STATUS with a 1 MiB payload and its result); the
// broker is trusted, so the limits only stop a runaway, not a hostile peer.
constexpr std::int64_t kMaxReplyBytes = std::int64_t{256} << 20;
constexpr wire::DecodeLimits kReplyLimits{.max_body_bytes = std::size_t{256} << 20};

std::chrono::milliseconds Remaining(Clock::time_point until) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
  return std::max(left, std::chrono::milliseconds{0});
}

}  // namespace

std::vector<std::string> SplitEndpoints(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = list.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

std::string RandomKey() {
  std::random_device random;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "auto-";
  for (int word = 0; word < 4; ++word) {
    std::uint32_t bits = random();
    for (int digit = 0; digit < 8; ++digit, bits >>= 4) key += kHex[bits & 0xf];
  }
  return key;
}

struct Connection::Impl {
  zmq::context_t context{1};
  std::optional<zmq::socket_t> socket;
  std::vector<std::string> endpoints;
  std::size_t current = 0;
  std::chrono::milliseconds request_timeout;
  std::chrono::milliseconds watch_renewal;
  std::uint64_t next_rid = 1;

  // Closes the socket, so that nothing queued for the silent broker is sent later, and moves
  // on to the next endpoint (the same one again when there is only one).
  void MoveToNext() {
    socket.reset();
    current = (current + 1) % endpoints.size();
  }

  // The DEALER has IMMEDIATE set, so a message cannot be queued until the connection is up:
  // retry until the socket is writable or `until` passes.
  bool SendBefore(const wire::Frames& frames, Clock::time_point until) {
    while (!wire::Send(*socket, frames)) {
      const auto left = Remaining(until);
      if (left.count() == 0) return false;
      try {
        zmq::pollitem_t item{socket->handle(), 0, ZMQ_POLLOUT, 0};
        zmq::poll(&item, 1, left);
      } catch (const zmq::error_t&) {
        return false;
      }
    }
    return true;
  }

  // The next reply carrying `rid`; replies to earlier requests and undecodable messages are
  // dropped. nullopt when `until` passes first.
  std::optional<wire::ClientReply> ReceiveBefore(std::uint64_t rid, Clock::time_point until) {
    while (true) {
      auto frames = wire::Receive(*socket, Remaining(until));
      if (frames) {
        auto reply = wire::DecodeClientReply(wire::Views(*frames), kReplyLimits);
        if (reply && reply->rid == rid) return std::move(*reply);
        continue;
      }
      if (Clock::now() >= until) return std::nullopt;
    }
  }

  // One try against the current endpoint. `problem` is set to what went wrong, for the error
  // message when every try fails.
  std::optional<wire::ClientReply> Attempt(const wire::Frames& frames, std::uint64_t rid,
                                           Clock::time_point until, std::string& problem) {
    if (!socket) {
      auto opened = wire::ConnectDealer(context, endpoints[current], kMaxReplyBytes);
      if (!opened) {
        problem = opened.error().message;
        return std::nullopt;
      }
      socket = std::move(*opened);
    }
    if (!SendBefore(frames, until)) return std::nullopt;
    auto reply = ReceiveBefore(rid, until);
    if (reply && reply->status == wire::StatusCode::kNotActive) {
      problem = endpoints[current] + " answered NOT_ACTIVE";
      if (!reply->message.empty()) problem += ": " + reply->message;
    }
    return reply;
  }

  // Sends `request` until an active broker answers. The value is nullopt when `deadline`
  // passed first; the error means every endpoint stayed silent or passive for kCallRounds
  // rounds.
  Result<std::optional<wire::ClientReply>> Exchange(const wire::ClientRequest& request,
                                                    std::optional<Clock::time_point> deadline) {
    const wire::Frames frames = wire::Encode(request);
    const std::uint64_t rid = wire::RidOf(request);
    std::string problem;
    for (int round = 0; round < kCallRounds; ++round) {
      bool all_passive = true;
      for (std::size_t i = 0; i < endpoints.size(); ++i) {
        auto until = Clock::now() + request_timeout;
        if (deadline) until = std::min(until, *deadline);
        auto reply = Attempt(frames, rid, until, problem);
        if (reply && reply->status != wire::StatusCode::kNotActive) return reply;
        if (deadline && Clock::now() >= *deadline) return std::optional<wire::ClientReply>();
        all_passive = all_passive && reply.has_value();
        MoveToNext();
      }
      // A standby takes over only after it notices that its peer is gone, so when every
      // broker said NOT_ACTIVE, give them one request timeout before asking again.
      if (all_passive && round + 1 < kCallRounds) {
        auto until = Clock::now() + request_timeout;
        if (deadline) until = std::min(until, *deadline);
        std::this_thread::sleep_until(until);
      }
    }
    std::string message = "no broker answered at " + Join(endpoints, ",");
    if (!problem.empty()) message += " (" + problem + ")";
    return Fail(std::move(message));
  }
};

Connection::Connection(std::vector<std::string> endpoints,
                       std::chrono::milliseconds request_timeout,
                       std::chrono::milliseconds watch_renewal)
    : impl_(std::make_unique<Impl>()) {
  assert(!endpoints.empty());
  impl_->endpoints = std::move(endpoints);
  impl_->request_timeout = request_timeout;
  impl_->watch_renewal = watch_renewal;
}

Connection::~Connection() = default;
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

Result<wire::ClientReply> Connection::Call(wire::ClientRequest request) {
  std::visit([this](auto& r) { r.rid = impl_->next_rid++; }, request);
  if (auto* submit = std::get_if<wire::SubmitRequest>(&request)) {
    if (!submit->key || submit->key->empty()) submit->key = RandomKey();
  } else if (auto* group = std::get_if<wire::GroupSubmitRequest>(&request)) {
    if (!group->key || group->key->empty()) group->key = RandomKey();
  }
  auto reply = impl_->Exchange(request, std::nullopt);
  if (!reply) return std::unexpected(reply.error());
  return std::move(**reply);
}

Result<WatchResult> Connection::Watch(const std::string& id,
                                      std::optional<std::chrono::milliseconds> timeout,
                                      const std::function<void(const wire::JobInfo&)>& on_update) {
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  const wire::WatchRequest request{.rid = impl_->next_rid++, .id = id};
  WatchResult result;
  while (true) {
    // Start (or renew) the watch; the broker answers at once with the job.
    auto answer = impl_->Exchange(request, deadline);
    if (!answer) return std::unexpected(answer.error());
    std::optional<wire::ClientReply> reply = std::move(*answer);
    while (reply) {
      if (!IsSuccess(reply->status)) {
        result.end = WatchResult::End::kRefused;
        result.refusal = std::move(*reply);
        return result;
      }
      if (reply->job && result.job != reply->job) {
        result.job = std::move(reply->job);
        on_update(*result.job);
        if (wire::IsFinal(result.job->state)) {
          result.end = WatchResult::End::kFinal;
          return result;
        }
      }
      auto until = Clock::now() + impl_->watch_renewal;
      if (deadline) until = std::min(until, *deadline);
      reply = impl_->ReceiveBefore(request.rid, until);
    }
    if (deadline && Clock::now() >= *deadline) {
      result.end = WatchResult::End::kTimedOut;
      return result;
    }
  }
}

}  // namespace claw::client
