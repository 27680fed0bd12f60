// Distribution strategies: which eligible worker (broker/placement.hpp) gets a job.
//
//   round-robin   the next eligible worker after the one picked last for the type, in the
//                 candidates' order.
//   hash          by the job's key on a consistent hash ring of the type's workers
//                 (broker/hash_ring.hpp): one key, one worker while it is there and eligible;
//                 when it is not, the next eligible worker clockwise. A worker leaving moves only
//                 its own keys. A job without a key is placed least-loaded.
//   least-loaded  the lowest jobs-in-hand / capacity; ties go to the most free slots, then to
//                 the first in round-robin order, so equal workers take turns.
//   adaptive      picks least-loaded, and rebalances: a worker that has held more than
//                 threshold x capacity jobs for rebalance_interval gives back the jobs it has
//                 not started (it has prefetch) that a less loaded worker can start at once
//                 (RebalanceTarget). Then its clock starts again.
// Every strategy picks among eligible workers only, so a full worker is never picked.
//
// Affinity (routing.affinity): before the strategy, the eligible worker that ran the type's last
// job takes this one too (it is eligible, so it has room). A hash job with a key follows its key
// instead. Anti-affinity (routing.antiAffinity) off: the request's anti-affinity key is ignored.
//
// Pure apart from the remembered last pick and hash ring per type; no I/O, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/hash_ring.hpp"
#include "broker/placement.hpp"
#include "schema/protocol_constants.hpp"

namespace claw::broker {

enum class Strategy { kRoundRobin, kHash, kLeastLoaded, kAdaptive };

// "round-robin", "hash", "least-loaded", "adaptive".
std::string_view Name(Strategy strategy);
std::optional<Strategy> ParseStrategy(std::string_view name);

// distribution.strategy, distribution.adaptive, distribution.routing and the default priority of
// distribution.taskQueue.
struct SchedulingConfig {
  Strategy strategy = Strategy::kLeastLoaded;
  std::uint64_t rebalance_interval_ms = 30000;  // adaptive: overloaded this long -> rebalance
  double threshold = 0.8;                       // adaptive: overloaded above this load (0..1)
  bool affinity = false;
  bool anti_affinity = false;
  Locality locality = Locality::kAny;  // for jobs that do not state one
  std::uint32_t default_priority = wire::kPriorityNormal;
  bool operator==(const SchedulingConfig&) const = default;
};

struct Choice {
  std::optional<std::size_t> worker;  // index into the candidates
  std::string why_waiting;            // set when no worker is chosen (Placement::why_waiting)
};

// adaptive: whether a worker is due for rebalancing. `over_since_ms` is kept per worker: when
// the worker's load went above the threshold (in_hand > threshold x capacity), nullopt while it
// is not. Due once the load has stayed above it for rebalance_interval_ms; the clock then starts
// again, so a worker is rebalanced at most once an interval.
bool RebalanceDue(const SchedulingConfig& config, std::optional<std::int64_t>& over_since_ms,
                  std::uint64_t in_hand, std::uint32_t capacity, std::int64_t now_ms);

class Scheduler {
 public:
  explicit Scheduler(SchedulingConfig config,
                     std::uint32_t virtual_nodes = HashRing::kDefaultVirtualNodes);

  // Chooses the worker for one job. `candidates` are all the workers serving request.type (not
  // only eligible ones: the hash ring is built from them), in an order that is stable between
  // calls. `key` is the job's key for the hash strategy ("" for none). The choice is remembered
  // as the type's last pick, so call it when the job will be sent to the chosen worker.
  Choice Pick(PlacementRequest request, std::string_view key,
              std::span<const CandidateView> candidates);

  // adaptive: the worker that should take a job recalled from candidates[source] (nullopt: the
  // source does not serve the type now): an eligible one other than the source with a free slot
  // (so it starts the job at once) and a load below the threshold, the least loaded of them.
  // nullopt: none, the job stays where it is.
  std::optional<std::size_t> RebalanceTarget(PlacementRequest request,
                                             std::span<const CandidateView> candidates,
                                             std::optional<std::size_t> source) const;

  // Why no candidate may take a job with `request` now ("" when one may), as Pick would see it.
  std::string WhyWaiting(PlacementRequest request, std::span<const CandidateView> candidates) const;

  const SchedulingConfig& config() const { return config_; }

 private:
  struct TypeState {
    std::string last;  // id of the worker picked last
    HashRing ring;
  };

  // Fills in what the configuration decides for every request (locality, anti-affinity).
  void Normalize(PlacementRequest& request) const;
  std::size_t RoundRobin(const TypeState& type, std::span<const CandidateView> candidates,
                         const std::vector<std::size_t>& eligible) const;
  std::size_t LeastLoaded(const TypeState& type, std::span<const CandidateView> candidates,
                          const std::vector<std::size_t>& eligible) const;
  std::optional<std::size_t> ByKey(TypeState& type, std::string_view key,
                                   std::span<const CandidateView> candidates,
                                   const std::vector<std::size_t>& eligible) const;

  SchedulingConfig config_;
  std::uint32_t virtual_nodes_;
  std::unordered_map<std::string, TypeState> types_;
};

}  // namespace claw::broker
