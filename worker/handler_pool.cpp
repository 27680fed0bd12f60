// HandlerPool: one mutex-protected task queue, N threads, and a count of running threads so that
// Stop() can wait for them with a deadline instead of an unbounded join.
#include "worker/handler_pool.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>

namespace claw::worker {

struct HandlerPool::State {
  std::mutex mutex;
  std::condition_variable work_ready;
  std::condition_variable thread_exited;
  std::deque<std::function<void()>> tasks;
  bool stopping = false;
  std::size_t alive = 0;
  std::vector<bool> exited;  // by thread index
};

void HandlerPool::ThreadMain(std::shared_ptr<State> state, std::size_t index) {
  std::unique_lock lock(state->mutex);
  while (true) {
    state->work_ready.wait(lock, [&] { return state->stopping || !state->tasks.empty(); });
    if (state->stopping) break;
    auto task = std::move(state->tasks.front());
    state->tasks.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
  --state->alive;
  state->exited[index] = true;
  state->thread_exited.notify_all();
}

HandlerPool::HandlerPool(std::size_t threads) : state_(std::make_shared<State>()) {
  state_->alive = threads;
  state_->exited.assign(threads, false);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back(ThreadMain, state_, i);
}

HandlerPool::~HandlerPool() { Stop(kDestructorGrace); }

void HandlerPool::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopping) return;
    state_->tasks.push_back(std::move(task));
  }
  state_->work_ready.notify_one();
}

std::size_t HandlerPool::Stop(std::chrono::milliseconds grace) {
  if (threads_.empty()) return 0;
  std::vector<bool> exited;
  {
    std::unique_lock lock(state_->mutex);
    state_->stopping = true;
    state_->tasks.clear();
    state_->work_ready.notify_all();
    state_->thread_exited.wait_for(lock, grace, [&] { return state_->alive == 0; });
    exited = state_->exited;
  }
  std::size_t detached = 0;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    if (exited[i]) {
      threads_[i].join();
    } else {
      threads_[i].detach();
      ++detached;
    }
  }
  threads_.clear();
  return detached;
}

}  // namespace claw::worker
