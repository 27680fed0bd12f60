#include "broker/hash_ring.hpp"

#include <cassert>
#include <unordered_set>

namespace claw::broker {
namespace {

std::string PointName(const std::string& worker_id, std::uint32_t index) {
  return worker_id + "#" + std::to_string(index);
}

}  // namespace

HashRing::HashRing(std::uint32_t virtual_nodes) : virtual_nodes_(virtual_nodes) {
  assert(virtual_nodes > 0);
}

std::uint64_t HashRing::Hash(std::string_view text) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // FNV-1a alone leaves similar strings ("w1#1", "w1#2") close together; the finaliser of
  // splitmix64 scatters them over the whole ring.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

void HashRing::Add(const std::string& worker_id) {
  if (!workers_.insert(worker_id).second) return;
  for (std::uint32_t i = 0; i < virtual_nodes_; ++i) {
    points_.emplace(Hash(PointName(worker_id, i)), worker_id);
  }
}

void HashRing::Remove(const std::string& worker_id) {
  if (workers_.erase(worker_id) == 0) return;
  for (std::uint32_t i = 0; i < virtual_nodes_; ++i) {
    auto point = points_.find(Hash(PointName(worker_id, i)));
    if (point != points_.end() && point->second == worker_id) points_.erase(point);
  }
}

std::optional<std::string> HashRing::Lookup(std::string_view key) const {
  return Lookup(key, [](const std::string&) { return true; });
}

std::optional<std::string> HashRing::Lookup(
    std::string_view key, const std::function<bool(const std::string&)>& eligible) const {
  if (points_.empty()) return std::nullopt;
  std::unordered_set<std::string_view> refused;
  auto point = points_.lower_bound(Hash(key));
  // One lap at most: past that every worker has been asked.
  for (std::size_t steps = 0; steps < points_.size() && refused.size() < workers_.size();
       ++steps, ++point) {
    if (point == points_.end()) point = points_.begin();
    const std::string& worker = point->second;
    if (refused.contains(worker)) continue;
    if (eligible(worker)) return worker;
    refused.insert(worker);
  }
  return std::nullopt;
}

}  // namespace claw::broker
