// A client's connection to a Claw broker, or to a Binary Star pair of them.
//
// One DEALER socket talks to one broker at a time. A request that gets no answer within the
// request timeout is resent on a fresh socket to the next broker in the list (the zguide's Lazy
// Pirate pattern); a broker that answers NOT_ACTIVE is a standby, and the next one is tried at
// once. After three rounds over the whole list the call fails with "no broker answered at ...".
//
// Replies are matched to requests by rid, so a late reply to an earlier request is never taken
// for the answer to the current one. A SUBMIT or GROUP_SUBMIT without an idempotency key gets a
// random one before it is first sent, so that resending it after a lost reply cannot create a
// second job or group.
//
// Not thread-safe: one thread uses a Connection at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/codec.hpp"
#include "schema/result.hpp"

namespace claw::client {

// How long a watch may stay silent before the client sends WATCH again to renew it.
inline constexpr std::chrono::milliseconds kWatchRenewal{2000};

// Rounds over the whole endpoint list before a call gives up.
inline constexpr int kCallRounds = 3;

// "tcp://a:5555,tcp://b:5555" -> {"tcp://a:5555", "tcp://b:5555"}; empty items are dropped.
std::vector<std::string> SplitEndpoints(std::string_view list);

// A fresh random idempotency key: "auto-" and 32 hex digits.
std::string RandomKey();

// How a Watch ended.
struct WatchResult {
  enum class End {
    kFinal,     // the job reached a final state; `job` holds it
    kTimedOut,  // the wait's own timeout passed; the job goes on; `job` is the last state seen
    kRefused,   // the broker answered non-2xx (e.g. NOT_FOUND); `refusal` holds its reply
  };
  End end = End::kFinal;
  std::optional<wire::JobInfo> job;
  wire::ClientReply refusal;
};

class Connection {
 public:
  // `endpoints` must not be empty. Nothing is connected until the first call.
  Connection(std::vector<std::string> endpoints, std::chrono::milliseconds request_timeout,
             std::chrono::milliseconds watch_renewal = kWatchRenewal);
  ~Connection();
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;

  // Sends `request` with a fresh rid and returns the broker's reply, whatever its status
  // (except NOT_ACTIVE, which makes it try the next broker). Fails only when no active broker
  // answered in kCallRounds rounds over the endpoint list.
  Result<wire::ClientReply> Call(wire::ClientRequest request);

  // Follows job `id` with WATCH until it is final or `timeout` (if any) passes. `on_update` is
  // called with each distinct state of the job, the first one at once. A watch that stays
  // silent for the renewal interval is renewed by sending WATCH again (failing over like Call),
  // which also carries it across a broker restart. Fails only when no broker answers.
  Result<WatchResult> Watch(const std::string& id, std::optional<std::chrono::milliseconds> timeout,
                            const std::function<void(const wire::JobInfo&)>& on_update);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace claw::client
