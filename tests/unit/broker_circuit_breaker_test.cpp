// The circuit breaker: one test per row of the table in broker/circuit_breaker.hpp.
#include <doctest/doctest.h>

#include "broker/circuit_breaker.hpp"

namespace claw::broker {
namespace {

const BreakerConfig kConfig{
    .enabled = true, .failure_threshold = 3, .recovery_timeout_ms = 10000, .half_open_requests = 2};

// A breaker opened at `now` by failureThreshold failures.
BreakerState Opened(std::int64_t now) {
  BreakerState s;
  OnFailure(kConfig, s, now);
  OnFailure(kConfig, s, now);
  REQUIRE(OnFailure(kConfig, s, now) == BreakerChange::kOpened);
  return s;
}

TEST_CASE("breaker: closed lets jobs through") {
  BreakerState s;
  CHECK(PhaseAt(kConfig, s, 0) == BreakerPhase::kClosed);
  CHECK(MayDispatch(kConfig, s, 0));
  OnDispatch(kConfig, s, 0);
  CHECK(MayDispatch(kConfig, s, 0));
  CHECK(!HalfOpensAt(kConfig, s).has_value());
  CHECK(Name(BreakerPhase::kClosed) == "closed");
}

TEST_CASE("breaker: closed, failures below the threshold: closed") {
  BreakerState s;
  CHECK(OnFailure(kConfig, s, 0) == BreakerChange::kNone);
  CHECK(OnFailure(kConfig, s, 0) == BreakerChange::kNone);
  CHECK(PhaseAt(kConfig, s, 0) == BreakerPhase::kClosed);
  CHECK(MayDispatch(kConfig, s, 0));
}

TEST_CASE("breaker: closed, the threshold-th failure in a row: open, no jobs") {
  auto s = Opened(1000);
  CHECK(PhaseAt(kConfig, s, 1000) == BreakerPhase::kOpen);
  CHECK(Name(PhaseAt(kConfig, s, 1000)) == "open");
  CHECK(!MayDispatch(kConfig, s, 1000));
  CHECK(!MayDispatch(kConfig, s, 10999));
  CHECK(*HalfOpensAt(kConfig, s) == 11000);
}

TEST_CASE("breaker: closed, a success resets the failure count") {
  BreakerState s;
  OnFailure(kConfig, s, 0);
  OnFailure(kConfig, s, 0);
  CHECK(OnSuccess(kConfig, s, 0) == BreakerChange::kNone);
  CHECK(OnFailure(kConfig, s, 0) == BreakerChange::kNone);
  CHECK(OnFailure(kConfig, s, 0) == BreakerChange::kNone);
  CHECK(PhaseAt(kConfig, s, 0) == BreakerPhase::kClosed);
}

TEST_CASE("breaker: open, the recovery timeout passed: half-open, trial jobs allowed") {
  auto s = Opened(1000);
  CHECK(PhaseAt(kConfig, s, 10999) == BreakerPhase::kOpen);
  CHECK(PhaseAt(kConfig, s, 11000) == BreakerPhase::kHalfOpen);
  CHECK(Name(BreakerPhase::kHalfOpen) == "half-open");
  CHECK(MayDispatch(kConfig, s, 11000));
}

TEST_CASE("breaker: open, results of jobs sent before are ignored") {
  auto s = Opened(1000);
  CHECK(OnSuccess(kConfig, s, 2000) == BreakerChange::kNone);
  CHECK(OnFailure(kConfig, s, 3000) == BreakerChange::kNone);
  CHECK(PhaseAt(kConfig, s, 3000) == BreakerPhase::kOpen);
  CHECK(*HalfOpensAt(kConfig, s) == 11000);  // the timeout did not restart
}

TEST_CASE("breaker: half-open lets halfOpenRequests trials through, no more") {
  auto s = Opened(0);
  CHECK(MayDispatch(kConfig, s, 10000));
  OnDispatch(kConfig, s, 10000);
  CHECK(PhaseAt(kConfig, s, 10000) == BreakerPhase::kHalfOpen);
  CHECK(MayDispatch(kConfig, s, 10000));
  OnDispatch(kConfig, s, 10001);
  CHECK(!MayDispatch(kConfig, s, 10002));
  CHECK(!HalfOpensAt(kConfig, s).has_value());
}

TEST_CASE("breaker: half-open, successes below halfOpenRequests: still half-open") {
  auto s = Opened(0);
  OnDispatch(kConfig, s, 10000);
  OnDispatch(kConfig, s, 10000);
  CHECK(OnSuccess(kConfig, s, 10100) == BreakerChange::kNone);
  CHECK(PhaseAt(kConfig, s, 10100) == BreakerPhase::kHalfOpen);
  CHECK(!MayDispatch(kConfig, s, 10100));  // the other trial is still out
}

TEST_CASE("breaker: half-open, every trial succeeded: closed") {
  auto s = Opened(0);
  OnDispatch(kConfig, s, 10000);
  OnDispatch(kConfig, s, 10000);
  OnSuccess(kConfig, s, 10100);
  CHECK(OnSuccess(kConfig, s, 10200) == BreakerChange::kClosed);
  CHECK(PhaseAt(kConfig, s, 10200) == BreakerPhase::kClosed);
  CHECK(MayDispatch(kConfig, s, 10200));
  // Closed again with a fresh count: it takes the full threshold to open it.
  OnFailure(kConfig, s, 10300);
  OnFailure(kConfig, s, 10300);
  CHECK(PhaseAt(kConfig, s, 10300) == BreakerPhase::kClosed);
}

TEST_CASE("breaker: half-open, a failure: open again for a new recovery timeout") {
  auto s = Opened(0);
  OnDispatch(kConfig, s, 10000);
  OnDispatch(kConfig, s, 10000);
  OnSuccess(kConfig, s, 10100);
  CHECK(OnFailure(kConfig, s, 10500) == BreakerChange::kOpened);
  CHECK(PhaseAt(kConfig, s, 10500) == BreakerPhase::kOpen);
  CHECK(!MayDispatch(kConfig, s, 20499));
  CHECK(*HalfOpensAt(kConfig, s) == 20500);
  // The next half-open starts with every trial slot free.
  CHECK(MayDispatch(kConfig, s, 20500));
  OnDispatch(kConfig, s, 20500);
  CHECK(MayDispatch(kConfig, s, 20500));
}

TEST_CASE("breaker: half-open, an abandoned trial frees its slot") {
  auto s = Opened(0);
  OnDispatch(kConfig, s, 10000);
  OnDispatch(kConfig, s, 10000);
  CHECK(!MayDispatch(kConfig, s, 10000));
  OnAbandoned(kConfig, s, 10100);
  CHECK(MayDispatch(kConfig, s, 10100));
}

TEST_CASE("breaker: disabled, it never opens") {
  BreakerConfig off = kConfig;
  off.enabled = false;
  BreakerState s;
  for (int i = 0; i < 10; ++i) CHECK(OnFailure(off, s, i) == BreakerChange::kNone);
  CHECK(PhaseAt(off, s, 10) == BreakerPhase::kClosed);
  CHECK(MayDispatch(off, s, 10));
  CHECK(!HalfOpensAt(off, s).has_value());
}

}  // namespace
}  // namespace claw::broker
