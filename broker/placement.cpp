#include "broker/placement.hpp"

#include <algorithm>

namespace claw::broker {
namespace {

// "1 worker", "3 workers".
std::string Workers(std::size_t n) { return std::to_string(n) + (n == 1 ? " worker" : " workers"); }

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : std::string(separator)) + part;
  return out;
}

bool HasLabels(const CandidateView& c, const wire::Labels& required) {
  return std::ranges::all_of(required, [&](const auto& label) {
    auto it = c.labels.find(label.first);
    return it != c.labels.end() && it->second == label.second;
  });
}

// Keeps the candidates that pass `rule`; returns how many it dropped.
template <typename Rule>
std::size_t Keep(std::vector<std::size_t>& alive, std::span<const CandidateView> candidates,
                 Rule rule) {
  const auto before = alive.size();
  std::erase_if(alive, [&](std::size_t i) { return !rule(candidates[i]); });
  return before - alive.size();
}

}  // namespace

Placement Place(const PlacementRequest& request, std::span<const CandidateView> candidates) {
  Placement out;
  if (candidates.empty()) {
    out.why_waiting = "no worker serves type '" + request.type + "'";
    return out;
  }
  std::vector<std::size_t> alive(candidates.size());
  for (std::size_t i = 0; i < alive.size(); ++i) alive[i] = i;
  std::vector<std::string> earlier;  // what rules before the last one excluded
  auto waiting = [&](const std::string& reason) {
    out.why_waiting = earlier.empty() ? reason : reason + " (" + Join(earlier, "; ") + ")";
    return out;
  };

  if (!request.required.empty()) {
    std::vector<std::string> pairs;
    for (const auto& [key, value] : request.required) pairs.push_back(key + "=" + value);
    const std::string needs = Join(pairs, ", ");
    const auto before = alive.size();
    if (const auto dropped =
            Keep(alive, candidates, [&](const auto& c) { return HasLabels(c, request.required); });
        dropped > 0) {
      if (alive.empty()) {
        return waiting("needs " + needs + ": none of the " + Workers(before) + " for type '" +
                       request.type + "' has " + (pairs.size() == 1 ? "it" : "them all"));
      }
      earlier.push_back(Workers(dropped) + (dropped == 1 ? " lacks " : " lack ") + needs);
    }
  }

  const auto locality = request.locality.value_or(Locality::kAny);
  if (!request.zone.empty() && locality == Locality::kSameZone) {
    const auto before = alive.size();
    if (const auto dropped =
            Keep(alive, candidates, [&](const auto& c) { return c.zone == request.zone; });
        dropped > 0) {
      if (alive.empty()) {
        return waiting("needs zone '" + request.zone + "' (same-zone): none of the " +
                       Workers(before) + " left is in it");
      }
      earlier.push_back(Workers(dropped) + " outside zone '" + request.zone + "'");
    }
  }

  if (request.max_rtt_ms > 0) {
    std::size_t slow = 0, unmeasured = 0;
    Keep(alive, candidates, [&](const auto& c) {
      if (!c.rtt_ms) return ++unmeasured, false;
      if (*c.rtt_ms > request.max_rtt_ms) return ++slow, false;
      return true;
    });
    std::vector<std::string> parts;
    if (slow > 0)
      parts.push_back(Workers(slow) + " over " + std::to_string(request.max_rtt_ms) + " ms RTT");
    if (unmeasured > 0) parts.push_back(Workers(unmeasured) + " with no RTT measured yet");
    if (alive.empty()) {
      return waiting("needs RTT <= " + std::to_string(request.max_rtt_ms) +
                     " ms: " + Join(parts, ", "));
    }
    if (!parts.empty()) earlier.push_back(Join(parts, ", "));
  }

  {
    std::size_t unhealthy = 0, open = 0;
    Keep(alive, candidates, [&](const auto& c) {
      if (!c.healthy) return ++unhealthy, false;
      if (!c.breaker_allows) return ++open, false;
      return true;
    });
    std::vector<std::string> parts;
    if (unhealthy > 0) parts.push_back(Workers(unhealthy) + " unhealthy");
    if (open > 0)
      parts.push_back(std::to_string(open) + (open == 1 ? " breaker" : " breakers") + " open");
    if (alive.empty()) return waiting(Join(parts, ", "));
    if (!parts.empty()) earlier.push_back(Join(parts, ", "));
  }

  const auto available = alive.size();
  Keep(alive, candidates, [](const auto& c) { return c.FreeSlots() > 0; });
  if (alive.empty()) {
    return waiting(available == 1
                       ? "the 1 eligible worker is full"
                       : "all " + std::to_string(available) + " eligible workers are full");
  }

  // Preferences: they narrow the choice but never empty it.
  if (!request.zone.empty() && locality == Locality::kCrossZone &&
      std::ranges::any_of(alive, [&](auto i) { return candidates[i].zone == request.zone; })) {
    Keep(alive, candidates, [&](const auto& c) { return c.zone == request.zone; });
  }
  if (!request.anti_affinity_key.empty()) {
    const auto fewest =
        std::ranges::min(alive, {}, [&](auto i) { return candidates[i].same_key_in_hand; });
    const auto least = candidates[fewest].same_key_in_hand;
    Keep(alive, candidates, [&](const auto& c) { return c.same_key_in_hand == least; });
  }
  out.eligible = std::move(alive);
  return out;
}

}  // namespace claw::broker
