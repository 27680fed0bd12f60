// Placement: which of the workers serving a job's type may take it now, and, when none may, a
// sentence saying why the job waits. Pure: the caller describes each worker in a CandidateView.
//
// The rules, applied in this order (a worker must pass all of them):
//   labels    every required key=value pair is among the worker's labels (gpu=true needs a worker
//             labelled gpu=true; a job needing it never reaches a worker without it).
//   locality  with a zone in the request:
//               same-zone   only workers in that zone;
//               cross-zone  workers in that zone when any of them is eligible by every other
//                           rule, else workers in any zone;
//               any         the zone is ignored.
//             A request without a zone has no zone rule, whatever its locality.
//   latency   max_rtt_ms > 0: the worker's measured RTT must be at most max_rtt_ms. A worker not
//             measured yet is not eligible for such a job (it will be after its first health
//             check); a job without a bound ignores RTT.
//   health    the worker is healthy and its circuit breaker lets a job through.
//   room      jobs in hand < capacity + prefetch (a worker with prefetch holds that many more,
//             waiting to start).
//   anti-affinity  with a key in the request: workers holding no other job with that key are
//             preferred; when every eligible worker holds one, those holding the fewest remain.
//             It narrows the choice after the cross-zone preference has.
//
// When no worker is eligible, `why_waiting` names the rule that excluded the last of them, and
// in parentheses the workers earlier rules excluded, e.g.
//   "no worker serves type 'x'"
//   "needs gpu=true: none of the 3 workers for type 'render' has it"
//   "1 worker unhealthy, 1 breaker open"
//   "all 2 eligible workers are full (1 worker lacks gpu=true)"
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "schema/codec.hpp"

namespace claw::broker {

using wire::Locality;  // same-zone, cross-zone or any (schema/protocol.yaml, localities)
using wire::ParseLocality;

struct PlacementRequest {
  std::string type;                  // the job's type, for messages
  wire::Labels required;             // labels the worker must have
  std::string zone;                  // preferred zone; empty: none
  std::optional<Locality> locality;  // nullopt: any (the Scheduler fills in the configured one)
  std::uint32_t max_rtt_ms = 0;      // 0: no latency bound
  std::string anti_affinity_key;     // e.g. a group id; empty: none
};

// Jobs a worker may still be sent: capacity + prefetch minus those in hand, or 0 when it holds
// more (its capacity shrank while it held them).
constexpr std::uint64_t FreeSlots(std::uint64_t capacity, std::uint64_t prefetch,
                                  std::uint64_t in_hand) {
  return capacity + prefetch > in_hand ? capacity + prefetch - in_hand : 0;
}

// One worker serving the job's type, as the Core sees it now.
struct CandidateView {
  std::string id;
  wire::Labels labels;
  std::string zone;
  std::uint32_t capacity = 1;
  std::uint32_t prefetch = 0;  // jobs it may hold beyond capacity, waiting to start
  std::uint32_t in_hand = 0;   // jobs it holds now, started or not
  bool healthy = true;
  bool breaker_allows = true;           // MayDispatch of its circuit breaker
  std::optional<std::uint32_t> rtt_ms;  // measured round trip (the smoothed one); none yet
  std::uint32_t same_key_in_hand = 0;   // jobs in hand with the request's anti-affinity key
  std::uint64_t FreeSlots() const { return broker::FreeSlots(capacity, prefetch, in_hand); }
};

struct Placement {
  std::vector<std::size_t> eligible;  // indexes into the candidates, in their order
  std::string why_waiting;            // set when `eligible` is empty
};

Placement Place(const PlacementRequest& request, std::span<const CandidateView> candidates);

}  // namespace claw::broker
