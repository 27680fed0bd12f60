// A fixed pool of threads that run job handlers, created once so that starting a job costs a
// queue push and a wake-up rather than a thread.
//
// Shutdown is bounded: Stop() waits up to a grace period for the threads to finish their current
// task; threads still busy after it (a handler that ignores cancellation) are detached. Their
// tasks own everything they touch (shared pointers), so a detached thread never outlives its data.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace claw::worker {

class HandlerPool {
 public:
  explicit HandlerPool(std::size_t threads);
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;
  // Stop(kDestructorGrace) unless stopped already.
  ~HandlerPool();

  static constexpr std::chrono::milliseconds kDestructorGrace{1000};

  // Queues a task; a free thread picks it up at once. Ignored after Stop().
  void Submit(std::function<void()> task);

  // Drops queued tasks, lets running ones finish for up to `grace`, then detaches stragglers.
  // Returns how many threads were detached.
  std::size_t Stop(std::chrono::milliseconds grace);

 private:
  struct State;
  static void ThreadMain(std::shared_ptr<State> state, std::size_t index);

  std::shared_ptr<State> state_;
  std::vector<std::thread> threads_;
};

}  // namespace claw::worker
