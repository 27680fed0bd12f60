// Runnable jobs per type: one FIFO per priority, highest priority first. Push and Pop cost the
// same whatever the backlog; Remove (cancelling a queued job) scans one FIFO.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/job.hpp"

namespace claw::broker {

class ReadyQueues {
 public:
  void Push(const std::string& type, std::uint32_t priority, Seq seq);
  // The next job of `type`: highest priority first, oldest first within a priority.
  std::optional<Seq> Pop(const std::string& type);
  bool Remove(const std::string& type, std::uint32_t priority, Seq seq);

  std::uint64_t Depth(const std::string& type) const;
  // (type, priority, depth) for every non-empty FIFO, types in name order.
  struct Entry {
    std::string type;
    std::uint32_t priority;
    std::uint64_t depth;
  };
  std::vector<Entry> Depths() const;

 private:
  static constexpr std::size_t kLevels = 10;
  struct TypeQueue {
    std::array<std::deque<Seq>, kLevels> fifo;
    std::uint64_t size = 0;
  };
  std::unordered_map<std::string, TypeQueue> types_;
};

}  // namespace claw::broker
