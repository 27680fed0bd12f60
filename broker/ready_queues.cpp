#include "broker/ready_queues.hpp"

#include <algorithm>
#include <cassert>

namespace claw::broker {

void ReadyQueues::Push(const std::string& type, std::uint32_t priority, Seq seq) {
  assert(priority < kLevels);
  auto& q = types_[type];
  q.fifo[priority].push_back(seq);
  ++q.size;
}

void ReadyQueues::PushFront(const std::string& type, std::uint32_t priority, Seq seq) {
  assert(priority < kLevels);
  auto& q = types_[type];
  q.fifo[priority].push_front(seq);
  ++q.size;
}

bool ReadyQueues::Remove(const std::string& type, std::uint32_t priority, Seq seq) {
  auto it = types_.find(type);
  if (it == types_.end() || priority >= kLevels) return false;
  auto& fifo = it->second.fifo[priority];
  auto pos = std::find(fifo.begin(), fifo.end(), seq);
  if (pos == fifo.end()) return false;
  fifo.erase(pos);
  --it->second.size;
  return true;
}

std::uint64_t ReadyQueues::Depth(const std::string& type) const {
  auto it = types_.find(type);
  return it == types_.end() ? 0 : it->second.size;
}

std::vector<ReadyQueues::Entry> ReadyQueues::Depths() const {
  std::vector<Entry> out;
  for (const auto& [type, q] : types_) {
    for (std::size_t level = 0; level < kLevels; ++level) {
      if (!q.fifo[level].empty())
        out.push_back({type, static_cast<std::uint32_t>(level), q.fifo[level].size()});
    }
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.type != b.type ? a.type < b.type : a.priority > b.priority;
  });
  return out;
}

}  // namespace claw::broker
