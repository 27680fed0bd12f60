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

}  // namespace

StoreWriter::StoreWriter(zmq::context_t& context, std::unique_ptr<JobStore> store)
    : loop_side_(context, zmq::socket_type::pair), thread_side_(context, zmq::socket_type::pair) {
  const std::string endpoint = UniqueEndpoint();
  loop_side_.bind(endpoint);
  thread_side_.connect(endpoint);
  thread_ = std::thread(&StoreWriter::Run, this, std::move(store));
}

StoreWriter::~StoreWriter() {
  loop_side_.send(zmq::message_t(), zmq::send_flags::none);  // empty: stop
  thread_.join();
}

void StoreWriter::Submit(WriteBatch batch) {
  loop_side_.send(Carry(std::make_unique<WriteBatch>(std::move(batch))), zmq::send_flags::none);
}

std::optional<Status> StoreWriter::TakeResult() {
  zmq::message_t message;
  if (!loop_side_.recv(message, zmq::recv_flags::dontwait)) return std::nullopt;
  return std::move(*Receive<Status>(message));
}

Status StoreWriter::WaitResult() {
  zmq::message_t message;
  (void)loop_side_.recv(message, zmq::recv_flags::none);
  return std::move(*Receive<Status>(message));
}

void StoreWriter::Run(std::unique_ptr<JobStore> store) {
  while (true) {
    zmq::message_t message;
    if (!thread_side_.recv(message, zmq::recv_flags::none) || message.size() == 0) return;
    auto batch = Receive<WriteBatch>(message);
    thread_side_.send(Carry(std::make_unique<Status>(store->Apply(*batch))), zmq::send_flags::none);
  }
}

}  // namespace claw::broker
