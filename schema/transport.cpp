#include "schema/transport.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <memory>

namespace claw::wire {
namespace {

constexpr std::string_view kDnsScheme = "dns://";
constexpr std::string_view kTcpScheme = "tcp://";

// The IPv4 addresses of `host`, as text, in the resolver's order without repeats.
Result<std::vector<std::string>> Addresses(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Fail(::gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, ::freeaddrinfo);
  std::vector<std::string> addresses;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) == nullptr) continue;
    if (std::ranges::find(addresses, text) == addresses.end()) addresses.emplace_back(text);
  }
  if (addresses.empty()) return Fail("no IPv4 address");
  // In a stable order, so that trying them in turn goes round all of them even when the
  // resolver rotates its answers.
  std::ranges::sort(addresses);
  return addresses;
}

std::string_view View(const zmq::message_t& m) {
  return std::string_view(static_cast<const char*>(m.data()), m.size());
}

// Reads the remaining frames of a multipart message once its first frame has arrived.
void ReadRest(zmq::socket_t& socket, zmq::message_t& first, std::vector<zmq::message_t>& parts) {
  parts.reserve(5);  // routing id, empty delimiter, header, command, body
  bool more = first.more();
  parts.push_back(std::move(first));
  while (more) {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::none)) break;
    more = part.more();
    parts.push_back(std::move(part));
  }
}

}  // namespace

Result<zmq::socket_t> BindRouter(zmq::context_t& context, const std::string& endpoint,
                                 std::int64_t max_message_bytes) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::router);
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::maxmsgsize, max_message_bytes);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, 100000);
    socket.set(zmq::sockopt::rcvhwm, 100000);
    socket.bind(endpoint);
    return socket;
  } catch (const zmq::error_t& e) {
    return Fail("cannot bind " + endpoint + ": " + e.what());
  }
}

Result<zmq::socket_t> ConnectDealer(zmq::context_t& context, const std::string& endpoint,
                                    std::int64_t max_message_bytes) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::immediate, 1);
    socket.set(zmq::sockopt::maxmsgsize, max_message_bytes);
    socket.set(zmq::sockopt::sndhwm, 100000);
    socket.set(zmq::sockopt::rcvhwm, 100000);
    socket.connect(endpoint);
    return socket;
  } catch (const zmq::error_t& e) {
    return Fail("cannot connect to " + endpoint + ": " + e.what());
  }
}

std::string BoundEndpoint(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

std::optional<BrokerInbound> ReceiveInbound(zmq::socket_t& router, const DecodeLimits& limits) {
  zmq::message_t first;
  try {
    if (!router.recv(first, zmq::recv_flags::dontwait)) return std::nullopt;
    std::vector<zmq::message_t> parts;
    ReadRest(router, first, parts);
    BrokerInbound in;
    in.from.routing_id = std::string(View(parts[0]));
    std::size_t start = 1;
    if (parts.size() > 1 && parts[1].size() == 0) {
      in.from.delimiter = true;
      start = 2;
    }
    std::vector<std::string_view> frames;
    frames.reserve(parts.size() - start);
    for (std::size_t i = start; i < parts.size(); ++i) frames.push_back(View(parts[i]));
    in.message = DecodeInbound(frames, limits);
    return in;
  } catch (const zmq::error_t&) {
    return std::nullopt;
  }
}

SendOutcome SendTo(zmq::socket_t& router, const Envelope& to, const Frames& frames) {
  try {
    const auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
    if (!router.send(zmq::buffer(to.routing_id), more)) return SendOutcome::kWouldBlock;
    if (to.delimiter) router.send(zmq::message_t(), more);
    router.send(zmq::buffer(frames.header), more);
    router.send(zmq::buffer(&frames.command, 1), more);
    router.send(zmq::buffer(frames.body), zmq::send_flags::dontwait);
    return SendOutcome::kSent;
  } catch (const zmq::error_t& e) {
    return e.num() == EHOSTUNREACH ? SendOutcome::kUnreachable : SendOutcome::kWouldBlock;
  }
}

bool Send(zmq::socket_t& dealer, const Frames& frames) {
  try {
    const auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
    if (!dealer.send(zmq::buffer(frames.header), more)) return false;
    dealer.send(zmq::buffer(&frames.command, 1), more);
    dealer.send(zmq::buffer(frames.body), zmq::send_flags::dontwait);
    return true;
  } catch (const zmq::error_t&) {
    return false;
  }
}

std::optional<std::vector<std::string>> Receive(zmq::socket_t& dealer,
                                                std::chrono::milliseconds timeout) {
  try {
    // With no time to wait, the receive alone looks: a zmq_poll would add two polls.
    zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
    if (timeout.count() > 0 && zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t first;
    if (!dealer.recv(first, zmq::recv_flags::dontwait)) return std::nullopt;
    std::vector<zmq::message_t> parts;
    ReadRest(dealer, first, parts);
    std::vector<std::string> frames;
    frames.reserve(parts.size());
    for (auto& p : parts) frames.emplace_back(View(p));
    return frames;
  } catch (const zmq::error_t&) {
    return std::nullopt;
  }
}

std::optional<HostPort> SplitHostPort(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view port = text.substr(colon + 1);
  unsigned number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535) {
    return std::nullopt;
  }
  return HostPort{std::string(text.substr(0, colon)), std::string(port)};
}

Status CheckEndpoint(std::string_view spec) {
  for (std::string_view scheme : {kDnsScheme, kTcpScheme}) {
    if (!spec.starts_with(scheme)) continue;
    if (!SplitHostPort(spec.substr(scheme.size()))) {
      return Fail("bad endpoint '" + std::string(spec) + "': expected " + std::string(scheme) +
                  "host:port, the port 1-65535");
    }
    return {};
  }
  for (std::string_view scheme : {"ipc://", "inproc://"}) {
    if (spec.starts_with(scheme) && spec.size() > scheme.size()) return {};
  }
  return Fail("bad endpoint '" + std::string(spec) +
              "': expected tcp://host:port, ipc://path, inproc://name or dns://host:port");
}

Status CheckSocketEndpoint(std::string_view spec) {
  if (Status checked = CheckEndpoint(spec); !checked) return checked;
  if (spec.starts_with(kDnsScheme)) {
    return Fail("'" + std::string(spec) + "': dns:// is for workers and clients (--broker)");
  }
  return {};
}

Result<std::vector<std::string>> ResolveEndpoints(const std::vector<std::string>& specs,
                                                  std::vector<std::string>* unresolved) {
  std::vector<std::string> endpoints;
  std::optional<std::string> first_failure;
  for (const auto& spec : specs) {
    if (auto ok = CheckEndpoint(spec); !ok) return std::unexpected(ok.error());
    if (!spec.starts_with(kDnsScheme)) {
      endpoints.push_back(spec);
      continue;
    }
    const HostPort name = *SplitHostPort(std::string_view(spec).substr(kDnsScheme.size()));
    auto addresses = Addresses(name.host, name.port);
    if (!addresses) {
      std::string failure = "cannot resolve " + spec + ": " + addresses.error().message;
      if (unresolved != nullptr) unresolved->push_back(failure);
      if (!first_failure) first_failure = std::move(failure);
      continue;
    }
    for (const auto& address : *addresses) {
      endpoints.push_back(std::string(kTcpScheme) + address + ":" + name.port);
    }
  }
  if (endpoints.empty() && first_failure) return Fail(std::move(*first_failure));
  return endpoints;
}

std::vector<std::string_view> Views(const std::vector<std::string>& parts) {
  return std::vector<std::string_view>(parts.begin(), parts.end());
}

}  // namespace claw::wire
