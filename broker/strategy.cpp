#include "broker/strategy.hpp"

#include <algorithm>
#include <cassert>
#include <set>

namespace claw::broker {
namespace {

// The eligible candidates in round-robin order: first the one after `last` in the candidates'
// order, wrapping around. `eligible` is in the candidates' order.
std::vector<std::size_t> InTurn(std::span<const CandidateView> candidates,
                                const std::vector<std::size_t>& eligible, const std::string& last) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].id == last) {
      start = i + 1;
      break;
    }
  }
  std::vector<std::size_t> order;
  order.reserve(eligible.size());
  for (auto i : eligible)
    if (i >= start) order.push_back(i);
  for (auto i : eligible)
    if (i < start) order.push_back(i);
  return order;
}

// a is less loaded than b: a.in_hand / a.capacity < b.in_hand / b.capacity, exactly.
bool LessLoaded(const CandidateView& a, const CandidateView& b) {
  return std::uint64_t{a.in_hand} * b.capacity < std::uint64_t{b.in_hand} * a.capacity;
}

}  // namespace

std::string_view Name(Strategy strategy) {
  switch (strategy) {
    case Strategy::kRoundRobin:
      return "round-robin";
    case Strategy::kHash:
      return "hash";
    case Strategy::kLeastLoaded:
      return "least-loaded";
    case Strategy::kAdaptive:
      return "adaptive";
  }
  return "?";
}

std::optional<Strategy> ParseStrategy(std::string_view name) {
  for (auto s :
       {Strategy::kRoundRobin, Strategy::kHash, Strategy::kLeastLoaded, Strategy::kAdaptive}) {
    if (Name(s) == name) return s;
  }
  return std::nullopt;
}

bool RebalanceDue(const SchedulingConfig& config, std::optional<std::int64_t>& over_since_ms,
                  std::uint64_t in_hand, std::uint32_t capacity, std::int64_t now_ms) {
  if (static_cast<double>(in_hand) <= config.threshold * capacity) {
    over_since_ms.reset();
    return false;
  }
  if (!over_since_ms) over_since_ms = now_ms;
  if (now_ms - *over_since_ms < static_cast<std::int64_t>(config.rebalance_interval_ms)) {
    return false;
  }
  over_since_ms = now_ms;
  return true;
}

Scheduler::Scheduler(SchedulingConfig config, std::uint32_t virtual_nodes)
    : config_(std::move(config)), virtual_nodes_(virtual_nodes) {}

void Scheduler::Normalize(PlacementRequest& request) const {
  if (!request.locality) request.locality = config_.locality;
  if (!config_.anti_affinity) request.anti_affinity_key.clear();
}

Choice Scheduler::Pick(PlacementRequest request, std::string_view key,
                       std::span<const CandidateView> candidates) {
  Normalize(request);
  auto placement = Place(request, candidates);
  if (placement.eligible.empty()) return {std::nullopt, std::move(placement.why_waiting)};

  auto [entry, added] = types_.try_emplace(request.type, TypeState{"", HashRing(virtual_nodes_)});
  TypeState& type = entry->second;
  const auto& eligible = placement.eligible;
  const bool by_key = config_.strategy == Strategy::kHash && !key.empty();

  std::optional<std::size_t> chosen;
  if (by_key) {
    chosen = ByKey(type, key, candidates, eligible);
  } else if (config_.affinity) {
    auto it = std::ranges::find_if(eligible, [&](auto i) { return candidates[i].id == type.last; });
    if (it != eligible.end()) chosen = *it;
  }
  if (!chosen) {
    chosen = config_.strategy == Strategy::kRoundRobin ? RoundRobin(type, candidates, eligible)
                                                       : LeastLoaded(type, candidates, eligible);
  }
  type.last = candidates[*chosen].id;
  return {chosen, ""};
}

std::string Scheduler::WhyWaiting(PlacementRequest request,
                                  std::span<const CandidateView> candidates) const {
  Normalize(request);
  return Place(request, candidates).why_waiting;
}

std::optional<std::size_t> Scheduler::RebalanceTarget(PlacementRequest request,
                                                      std::span<const CandidateView> candidates,
                                                      std::optional<std::size_t> source) const {
  Normalize(request);
  std::optional<std::size_t> best;
  for (auto i : Place(request, candidates).eligible) {
    const auto& c = candidates[i];
    if (i == source || c.in_hand >= c.capacity ||
        static_cast<double>(c.in_hand) >= config_.threshold * c.capacity) {
      continue;
    }
    if (!best || LessLoaded(c, candidates[*best])) best = i;
  }
  return best;
}

std::size_t Scheduler::RoundRobin(const TypeState& type, std::span<const CandidateView> candidates,
                                  const std::vector<std::size_t>& eligible) const {
  return InTurn(candidates, eligible, type.last).front();
}

std::size_t Scheduler::LeastLoaded(const TypeState& type, std::span<const CandidateView> candidates,
                                   const std::vector<std::size_t>& eligible) const {
  const auto order = InTurn(candidates, eligible, type.last);
  std::size_t best = order.front();
  for (auto i : order) {
    const auto& c = candidates[i];
    const auto& b = candidates[best];
    if (LessLoaded(c, b) || (!LessLoaded(b, c) && c.FreeSlots() > b.FreeSlots())) {
      best = i;
    }
  }
  return best;
}

std::optional<std::size_t> Scheduler::ByKey(TypeState& type, std::string_view key,
                                            std::span<const CandidateView> candidates,
                                            const std::vector<std::size_t>& eligible) const {
  // The ring holds exactly the type's workers: those that left go, those that joined come in.
  std::set<std::string> serving;
  for (const auto& c : candidates) serving.insert(c.id);
  for (const auto& id : std::vector(type.ring.workers().begin(), type.ring.workers().end())) {
    if (!serving.contains(id)) type.ring.Remove(id);
  }
  for (const auto& id : serving) type.ring.Add(id);

  std::unordered_map<std::string_view, std::size_t> index;
  for (auto i : eligible) index.emplace(candidates[i].id, i);
  auto owner = type.ring.Lookup(key, [&](const std::string& id) { return index.contains(id); });
  assert(owner);  // some eligible worker is on the ring
  return index.at(*owner);
}

}  // namespace claw::broker
