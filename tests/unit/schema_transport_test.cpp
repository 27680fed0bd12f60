// Broker endpoints: dns:// names resolve to one tcp:// endpoint per address, through the real
// resolver (localhost is in every /etc/hosts); other endpoints pass through untouched.
#include <doctest/doctest.h>

#include "schema/transport.hpp"

namespace claw::wire {
namespace {

TEST_CASE("endpoints: dns://host:port becomes a tcp:// endpoint per IPv4 address") {
  auto resolved = ResolveEndpoints({"tcp://10.0.0.1:5555", "dns://localhost:5560", "ipc:///tmp/b"});
  REQUIRE_MESSAGE(resolved.has_value(), resolved.error().message);
  REQUIRE(resolved->size() == 3);
  CHECK(resolved->at(0) == "tcp://10.0.0.1:5555");
  CHECK(resolved->at(1) == "tcp://127.0.0.1:5560");
  CHECK(resolved->at(2) == "ipc:///tmp/b");
  CHECK(ResolveEndpoints({})->empty());
}

TEST_CASE(
    "endpoints: a dns:// entry without a host and a port, or that does not resolve, is an error") {
  for (const char* bad : {"dns://localhost", "dns://localhost:", "dns://:5555", "dns://h:0",
                          "dns://h:65536", "dns://h:55x", "dns://h:+1"}) {
    CAPTURE(bad);
    auto resolved = ResolveEndpoints({bad});
    REQUIRE(!resolved.has_value());
    CHECK(resolved.error().message ==
          "bad endpoint '" + std::string(bad) + "': expected dns://host:port, the port 1-65535");
  }
  auto unknown = ResolveEndpoints({"dns://no-such-host.invalid:5555"});
  REQUIRE(!unknown.has_value());
  CHECK(unknown.error().message.starts_with("cannot resolve dns://no-such-host.invalid:5555: "));
}

TEST_CASE("endpoints: the broker's own sockets take every scheme but dns://") {
  for (const char* good : {"tcp://*:5555", "tcp://127.0.0.1:1", "ipc:///tmp/x", "inproc://x"}) {
    CHECK_MESSAGE(CheckSocketEndpoint(good).has_value(), good);
  }
  CHECK(CheckSocketEndpoint("dns://claw:5555").error().message ==
        "'dns://claw:5555': dns:// is for workers and clients (--broker)");
  CHECK(CheckSocketEndpoint("tcp://h").error().message.starts_with("bad endpoint 'tcp://h'"));
}

TEST_CASE("endpoints: a name that does not resolve is left out, and the others are kept") {
  std::vector<std::string> unresolved;
  auto resolved =
      ResolveEndpoints({"dns://no-such-host.invalid:5555", "tcp://10.0.0.1:5555"}, &unresolved);
  REQUIRE_MESSAGE(resolved.has_value(), resolved.error().message);
  CHECK(*resolved == std::vector<std::string>{"tcp://10.0.0.1:5555"});
  REQUIRE(unresolved.size() == 1);
  CHECK(unresolved[0].starts_with("cannot resolve dns://no-such-host.invalid:5555: "));
}

TEST_CASE("endpoints: only ZeroMQ's schemes and dns:// are accepted") {
  for (const char* good :
       {"tcp://h:1", "tcp://[::1]:65535", "ipc:///tmp/x", "inproc://x", "dns://h:1"}) {
    CHECK_MESSAGE(CheckEndpoint(good).has_value(), good);
  }
  for (const char* bad :
       {"bogus://x", "tcp://", "tcp://h", "tcp://h:http", "tcp://:5555", "localhost:5555", ""}) {
    CAPTURE(bad);
    auto checked = CheckEndpoint(bad);
    REQUIRE(!checked.has_value());
    CHECK(checked.error().message.starts_with("bad endpoint '" + std::string(bad) + "'"));
    CHECK(!ResolveEndpoints({bad}).has_value());
  }
}

}  // namespace
}  // namespace claw::wire
