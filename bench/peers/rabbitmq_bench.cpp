// RabbitMQ through librabbitmq (rabbitmq-c 0.11 on Debian 12), AMQP 0-9-1.
//
// The queue is declared durable, as a classic queue (`--queue-type classic`) or a quorum queue
// (`--queue-type quorum`). Producer: one channel in confirm mode, persistent messages
// (delivery_mode 2) to the default exchange, at most `window` unconfirmed; a job counts as
// acknowledged at the broker's basic.ack (for persistent messages to a durable queue, after it is
// written to disk or, for a classic queue, delivered and acknowledged by a consumer first).
// Worker: one channel with prefetch (basic.qos) = credit, manual acks: each delivery is
// acknowledged right after receipt and then counted.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <cstring>
#include <memory>

#include "driver.hpp"

namespace claw::peers {
namespace {

constexpr amqp_channel_t kChannel = 1;
constexpr const char* kQueue = "claw_bench";
constexpr int kWaitSeconds = 60;

std::string ReplyError(const amqp_rpc_reply_t& reply, const std::string& what) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return {};
    case AMQP_RESPONSE_NONE:
      return what + ": no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return what + ": " + amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
        return what + ": connection closed: " +
               std::string(static_cast<const char*>(close->reply_text.bytes),
                           close->reply_text.len);
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
        return what + ": channel closed: " +
               std::string(static_cast<const char*>(close->reply_text.bytes),
                           close->reply_text.len);
      }
      return what + ": server exception";
  }
  return what + ": unknown reply";
}

// One AMQP connection with channel 1 open; closed and freed when it goes.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const Options& options) {
    auto connection = std::unique_ptr<Connection>(new Connection(amqp_new_connection()));
    amqp_socket_t* socket = amqp_tcp_socket_new(connection->state_);
    if (socket == nullptr) return Fail("amqp_tcp_socket_new failed");
    if (const int rc = amqp_socket_open(socket, options.host.c_str(), options.port); rc != 0) {
      return Fail(std::string("connect to RabbitMQ: ") + amqp_error_string2(rc));
    }
    connection->open_ = true;
    // heartbeat 0: librabbitmq would only service heartbeats inside its own calls.
    if (auto e = ReplyError(amqp_login(connection->state_, "/", 0, 131072, 0,
                                       AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                            "login");
        !e.empty()) {
      return Fail(e);
    }
    amqp_channel_open(connection->state_, kChannel);
    if (auto e = ReplyError(amqp_get_rpc_reply(connection->state_), "channel.open"); !e.empty()) {
      return Fail(e);
    }
    return connection;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (open_) {
      amqp_channel_close(state_, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(state_);
  }

  amqp_connection_state_t state() const { return state_; }
  Status Check(const char* what) const {
    if (auto e = ReplyError(amqp_get_rpc_reply(state_), what); !e.empty()) return Fail(e);
    return {};
  }

 private:
  explicit Connection(amqp_connection_state_t state) : state_(state) {}
  amqp_connection_state_t state_;
  bool open_ = false;
};

Status DeclareQueue(const Options& options) {
  if (options.queue_type != "classic" && options.queue_type != "quorum") {
    return Fail("--queue-type must be classic or quorum");
  }
  auto connection = Connection::Open(options);
  if (!connection) return std::unexpected(connection.error());
  amqp_table_entry_t type{};
  type.key = amqp_cstring_bytes("x-queue-type");
  type.value.kind = AMQP_FIELD_KIND_UTF8;
  type.value.value.bytes = amqp_cstring_bytes(options.queue_type.c_str());
  const amqp_table_t arguments{.num_entries = 1, .entries = &type};
  amqp_queue_declare((*connection)->state(), kChannel, amqp_cstring_bytes(kQueue), 0, 1, 0, 0,
                     arguments);
  return (*connection)->Check("queue.declare");
}

class RabbitProducer : public Producer {
 public:
  RabbitProducer(std::unique_ptr<Connection> connection, std::size_t payload_size)
      : connection_(std::move(connection)), payload_(payload_size, std::byte{'x'}) {
    properties_._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    properties_.delivery_mode = 2;
  }

  Status Submit(std::uint64_t count, std::uint32_t window) override {
    amqp_connection_state_t state = connection_->state();
    const std::uint64_t first = next_tag_;
    const std::uint64_t last = first + count - 1;
    while (confirmed_below_ <= last) {
      while (next_tag_ <= last && next_tag_ - confirmed_below_ < window) {
        StampPayload(payload_);
        const amqp_bytes_t body{.len = payload_.size(), .bytes = payload_.data()};
        const int rc = amqp_basic_publish(state, kChannel, amqp_empty_bytes,
                                          amqp_cstring_bytes(kQueue), 0, 0, &properties_, body);
        if (rc != AMQP_STATUS_OK) return Fail(std::string("publish: ") + amqp_error_string2(rc));
        ++next_tag_;
      }
      // Block for one frame, then take every frame that is already here.
      timeval wait{.tv_sec = kWaitSeconds, .tv_usec = 0};
      do {
        if (auto ok = TakeFrame(wait); !ok) return ok;
        wait = {.tv_sec = 0, .tv_usec = 0};
      } while (amqp_frames_enqueued(state) || amqp_data_in_buffer(state));
      amqp_maybe_release_buffers(state);
    }
    return {};
  }

 private:
  // Reads one frame: a basic.ack moves the confirmed mark; a zero `wait` that finds nothing is
  // not an error.
  Status TakeFrame(timeval& wait) {
    amqp_frame_t frame;
    const bool blocking = wait.tv_sec != 0;
    const int rc = amqp_simple_wait_frame_noblock(connection_->state(), &frame, &wait);
    if (rc == AMQP_STATUS_TIMEOUT && !blocking) return {};
    if (rc != AMQP_STATUS_OK)
      return Fail(std::string("wait for confirm: ") + amqp_error_string2(rc));
    if (frame.frame_type != AMQP_FRAME_METHOD) return {};
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        Confirm(ack->delivery_tag, ack->multiple != 0);
        return {};
      }
      case AMQP_BASIC_NACK_METHOD:
        return Fail("publish nacked by the broker");
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        return Fail("the broker closed the channel while publishing");
      default:
        return {};
    }
  }

  // Confirms may arrive one by one or several at once ("multiple"); confirmed_below_ is the
  // lowest tag not yet confirmed.
  void Confirm(std::uint64_t tag, bool multiple) {
    if (tag >= confirmed_.size()) confirmed_.resize(tag + 1, false);
    if (multiple) {
      for (std::uint64_t t = confirmed_below_; t <= tag; ++t) confirmed_[t] = true;
    } else {
      confirmed_[tag] = true;
    }
    while (confirmed_below_ < confirmed_.size() && confirmed_[confirmed_below_]) {
      ++confirmed_below_;
    }
  }

  std::unique_ptr<Connection> connection_;
  std::vector<std::byte> payload_;
  amqp_basic_properties_t properties_{};
  std::uint64_t next_tag_ = 1;  // delivery tags of a confirm-mode channel start at 1
  std::uint64_t confirmed_below_ = 1;
  std::vector<bool> confirmed_;
};

Result<std::unique_ptr<Producer>> ConnectProducer(const Options& options) {
  auto connection = Connection::Open(options);
  if (!connection) return std::unexpected(connection.error());
  amqp_confirm_select((*connection)->state(), kChannel);
  if (auto ok = (*connection)->Check("confirm.select"); !ok) return std::unexpected(ok.error());
  return std::make_unique<RabbitProducer>(std::move(*connection), options.payload_size);
}

Status RunWorker(const Options& options, WorkerLink& link) {
  auto connection = Connection::Open(options);
  if (!connection) return std::unexpected(connection.error());
  amqp_connection_state_t state = (*connection)->state();
  amqp_basic_qos(state, kChannel, 0, static_cast<std::uint16_t>(options.credit), 0);
  if (auto ok = (*connection)->Check("basic.qos"); !ok) return ok;
  amqp_basic_consume(state, kChannel, amqp_cstring_bytes(kQueue), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  if (auto ok = (*connection)->Check("basic.consume"); !ok) return ok;
  link.Ready();
  for (;;) {
    amqp_maybe_release_buffers(state);
    amqp_envelope_t envelope;
    const amqp_rpc_reply_t reply = amqp_consume_message(state, &envelope, nullptr, 0);
    if (auto e = ReplyError(reply, "consume"); !e.empty()) return Fail(e);
    const std::int64_t receipt = NowNs();
    const std::int64_t stamp = StampOf(
        {static_cast<const std::byte*>(envelope.message.body.bytes), envelope.message.body.len});
    const int rc = amqp_basic_ack(state, kChannel, envelope.delivery_tag, 0);
    amqp_destroy_envelope(&envelope);
    if (rc != AMQP_STATUS_OK) return Fail(std::string("ack: ") + amqp_error_string2(rc));
    link.Done(receipt, stamp);
  }
}

}  // namespace
}  // namespace claw::peers

int main(int argc, char** argv) {
  using namespace claw::peers;
  Peer peer{
      .name = "rabbitmq",
      .prepare = DeclareQueue,
      .connect_producer = ConnectProducer,
      .run_worker = RunWorker,
  };
  return Main(argc, argv, peer);
}
