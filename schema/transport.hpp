// ZeroMQ transport for the Claw protocol: sockets set up the way every Claw program needs them,
// and sending and receiving whole typed messages. Nothing here blocks unless it says so, and no
// cppzmq exception escapes: failures come back as values.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "schema/codec.hpp"

namespace claw::wire {

// Who sent a message to a ROUTER socket, and whether it framed it like a REQ socket does.
struct Envelope {
  std::string routing_id;
  bool delimiter = false;
};

struct BrokerInbound {
  Envelope from;
  std::expected<Inbound, DecodeError> message;
};

// A ROUTER bound to `endpoint` with ROUTER_MANDATORY set, a maximum message size (a peer that
// sends more is disconnected by ZeroMQ) and no linger.
Result<zmq::socket_t> BindRouter(zmq::context_t& context, const std::string& endpoint,
                                 std::int64_t max_message_bytes);

// A DEALER connected to `endpoint`, LINGER 0 and IMMEDIATE set, so a dead broker never makes a
// program hang on exit and messages are not queued for a connection that does not exist yet.
Result<zmq::socket_t> ConnectDealer(zmq::context_t& context, const std::string& endpoint,
                                    std::int64_t max_message_bytes);

// The endpoint a socket is bound to (for tcp://127.0.0.1:* binds).
std::string BoundEndpoint(zmq::socket_t& socket);

// Reads one message from a ROUTER without blocking; nullopt when none is waiting.
std::optional<BrokerInbound> ReceiveInbound(zmq::socket_t& router, const DecodeLimits& limits);

enum class SendOutcome { kSent, kUnreachable, kWouldBlock };

// Sends without blocking through a ROUTER_MANDATORY socket.
SendOutcome SendTo(zmq::socket_t& router, const Envelope& to, const Frames& frames);

// Sends on a DEALER without blocking; false when the message could not be queued.
bool Send(zmq::socket_t& dealer, const Frames& frames);

// Waits up to `timeout` (0: not at all) for a message on a DEALER and returns its frames;
// nullopt on timeout.
std::optional<std::vector<std::string>> Receive(zmq::socket_t& dealer,
                                                std::chrono::milliseconds timeout);

// "host:port" split at its last ':' (so "[::1]:5555" works), when the host is non-empty and the
// port is 1-65535 in digits; nullopt otherwise.
struct HostPort {
  std::string host;
  std::string port;
};
std::optional<HostPort> SplitHostPort(std::string_view text);

// A broker endpoint as a user may write one to connect to: tcp://host:port, ipc://path,
// inproc://name, or dns://host:port.
Status CheckEndpoint(std::string_view spec);

// An endpoint ZeroMQ binds or connects to as it is, for the broker's own sockets: as
// CheckEndpoint, but without dns://, which only workers and clients resolve.
Status CheckSocketEndpoint(std::string_view spec);

// Broker endpoints as ZeroMQ takes them: "dns://host:port" becomes "tcp://ADDR:port" for each
// IPv4 address the name resolves to, sorted (DNS discovery: one name, several brokers); any
// other endpoint is kept as it is. A name that does not resolve is left out, its error added to
// `unresolved` when given, so that the other brokers can still be reached. Fails naming the entry
// that CheckEndpoint refuses, or the first that did not resolve when none is left.
// Blocks while the resolver works.
Result<std::vector<std::string>> ResolveEndpoints(const std::vector<std::string>& specs,
                                                  std::vector<std::string>* unresolved = nullptr);

// The frames of `parts` as views, for the Decode functions.
std::vector<std::string_view> Views(const std::vector<std::string>& parts);

}  // namespace claw::wire
