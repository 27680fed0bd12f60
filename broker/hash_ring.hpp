// A consistent hash ring over worker ids, for the hash strategy: a job's key goes to the same
// worker as long as that worker is on the ring, and when a worker leaves only the keys it owned
// move (to the next worker clockwise); every other key keeps its worker.
//
// Each worker stands at `virtual_nodes` points of a 64-bit ring, so that keys spread evenly. The
// hash is FNV-1a with a 64-bit finaliser: the same on every platform and run, so a key's worker
// does not change when the broker restarts with the same workers. Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace claw::broker {

class HashRing {
 public:
  static constexpr std::uint32_t kDefaultVirtualNodes = 160;

  explicit HashRing(std::uint32_t virtual_nodes = kDefaultVirtualNodes);

  // Adding a worker already on the ring, or removing one that is not, changes nothing.
  void Add(const std::string& worker_id);
  void Remove(const std::string& worker_id);
  bool Contains(const std::string& worker_id) const { return workers_.contains(worker_id); }
  const std::set<std::string>& workers() const { return workers_; }

  // The worker that owns `key`: the first point clockwise from the key's hash. nullopt when the
  // ring is empty.
  std::optional<std::string> Lookup(std::string_view key) const;
  // The first worker clockwise from the key's hash that `eligible` accepts, each worker asked at
  // most once; nullopt when it accepts none. With every worker eligible it is Lookup(key).
  std::optional<std::string> Lookup(std::string_view key,
                                    const std::function<bool(const std::string&)>& eligible) const;

  // The position of a key or worker point on the ring.
  static std::uint64_t Hash(std::string_view text);

 private:
  std::uint32_t virtual_nodes_;
  // Ring point -> worker. Two points colliding (a 1 in 2^64 chance per pair) keep the first.
  std::map<std::uint64_t, std::string> points_;
  std::set<std::string> workers_;
};

}  // namespace claw::broker
