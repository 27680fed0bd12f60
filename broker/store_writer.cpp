#include "broker/store_writer.hpp"

#include <atomic>
#include <cstring>
#include <string>

namespace claw::broker {
namespace {

std::string UniqueEndpoint() {
  static std::atomic<int> counter{0};
  return "inproc://claw-store-writer-" + std::to_string(counter++);
}

// A message that carries ownership of a heap object between the two threads.
template <typename T>
zmq::message_t Carry(std::unique_ptr<T> object) {
  T* raw = object.release();
  zmq::message_t message(sizeof raw);
  std::memcpy(message.data(), &raw, sizeof raw);
  return message;
}

template <typename T>
std::unique_ptr<T> Receive(const zmq::message_t& message) {
  T* raw = nullptr;
  std::memcpy(&raw, message.data(), sizeof raw);
  return std::unique_ptr<T>(raw);
}

// A blocking receive that a signal does not end (cppzmq throws on EINTR).
bool ReceiveBlocking(zmq::socket_t& socket, zmq::message_t& message) {
  while (true) {
    try {
      return socket.recv(message, zmq::recv_flags::none).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return false;
    }
  }
}

}  // namespace

StoreWriter::StoreWriter(zmq::context_t& context, std::unique_ptr<JobStore> store,
                         std::unique_ptr<Replicator> replicator)
    : loop_side_(context, zmq::socket_type::pair), thread_side_(context, zmq::socket_type::pair) {
  const std::string endpoint = UniqueEndpoint();
  loop_side_.bind(endpoint);
  thread_side_.connect(endpoint);
  thread_ = std::thread(&StoreWriter::Run, this, std::move(store), std::move(replicator));
}

StoreWriter::~StoreWriter() {
  loop_side_.send(zmq::message_t(), zmq::send_flags::none);  // empty: stop
  thread_.join();
}

void StoreWriter::Submit(WriterTask task) {
  loop_side_.send(Carry(std::make_unique<WriterTask>(std::move(task))), zmq::send_flags::none);
}

std::optional<WriterResult> StoreWriter::TakeResult() {
  zmq::message_t message;
  if (!loop_side_.recv(message, zmq::recv_flags::dontwait)) return std::nullopt;
  return std::move(*Receive<WriterResult>(message));
}

WriterResult StoreWriter::WaitResult() {
  zmq::message_t message;
  if (!ReceiveBlocking(loop_side_, message)) {
    return WriterResult{.status = Fail("the store writer thread is gone")};
  }
  return std::move(*Receive<WriterResult>(message));
}

void StoreWriter::Run(std::unique_ptr<JobStore> store, std::unique_ptr<Replicator> replicator) {
  while (true) {
    zmq::message_t message;
    if (!ReceiveBlocking(thread_side_, message) || message.size() == 0) return;
    auto task = Receive<WriterTask>(message);
    auto result = std::make_unique<WriterResult>();
    result->kind = task->kind;
    switch (task->kind) {
      case WriterTask::Kind::kApply:
        result->status = store->Apply(task->batch);
        if (result->status && replicator && !task->batch.writes.empty()) {
          replicator->Ship(task->batch);
        }
        break;
      case WriterTask::Kind::kReplaceAll:
        result->status = store->ReplaceAll(task->jobs, task->epoch);
        break;
      case WriterTask::Kind::kActivate:
        if (replicator) replicator->Activate(task->epoch);
        break;
      case WriterTask::Kind::kSendSnapshot:
        if (replicator) replicator->SendSnapshot(*store);
        break;
    }
    if (replicator) result->replica = replicator->status();
    thread_side_.send(Carry(std::move(result)), zmq::send_flags::none);
  }
}

}  // namespace claw::broker
