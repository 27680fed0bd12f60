// Health checks with hysteresis: one test per row of the table in broker/health.hpp.
#include <doctest/doctest.h>

#include "broker/health.hpp"

namespace claw::broker {
namespace {

const HealthConfig kConfig{
    .interval_ms = 1000, .timeout_ms = 500, .unhealthy_threshold = 3, .healthy_threshold = 2};

// Sends the due check at `now` and lets it time out.
HealthChange FailOne(HealthState& s, std::uint64_t id, std::int64_t now) {
  REQUIRE(Due(kConfig, s, now));
  OnSent(kConfig, s, id, now);
  CHECK(OnTick(kConfig, s, now + 499) == HealthChange::kNone);
  return OnTick(kConfig, s, now + 500);
}

// Sends the due check at `now` and answers it `rtt` later.
HealthChange PassOne(HealthState& s, std::uint64_t id, std::int64_t now, std::int64_t rtt = 10) {
  REQUIRE(Due(kConfig, s, now));
  OnSent(kConfig, s, id, now);
  return OnReply(kConfig, s, id, now + rtt);
}

TEST_CASE("health: a new worker is healthy, its first check due one interval later") {
  auto s = NewHealthState(kConfig, 5000);
  CHECK(s.healthy);
  CHECK(HealthName(s) == "healthy");
  CHECK(!s.rtt_ms.has_value());
  CHECK(!Due(kConfig, s, 5999));
  CHECK(Due(kConfig, s, 6000));
  CHECK(NextDeadline(kConfig, s) == 6000);
}

TEST_CASE("health: one check at a time; the next is due one interval after the last was sent") {
  auto s = NewHealthState(kConfig, 0);
  OnSent(kConfig, s, 1, 1000);
  CHECK(!Due(kConfig, s, 1200));  // outstanding
  CHECK(NextDeadline(kConfig, s) == 1500);
  CHECK(OnReply(kConfig, s, 1, 1100) == HealthChange::kNone);
  CHECK(!Due(kConfig, s, 1999));
  CHECK(Due(kConfig, s, 2000));
  CHECK(NextDeadline(kConfig, s) == 2000);
}

TEST_CASE("health: an answer records the RTT and its smoothed value") {
  auto s = NewHealthState(kConfig, 0);
  PassOne(s, 1, 1000, 80);
  CHECK(*s.rtt_ms == 80);
  CHECK(*s.smoothed_rtt_ms == doctest::Approx(80));
  PassOne(s, 2, 2000, 160);
  CHECK(*s.rtt_ms == 160);
  CHECK(*s.smoothed_rtt_ms == doctest::Approx(90));  // 80 + (160 - 80) / 8
}

TEST_CASE("health: healthy, failures below the threshold: still healthy") {
  auto s = NewHealthState(kConfig, 0);
  CHECK(FailOne(s, 1, 1000) == HealthChange::kNone);
  CHECK(FailOne(s, 2, 2000) == HealthChange::kNone);
  CHECK(s.healthy);
  CHECK(s.failures_in_row == 2);
}

TEST_CASE("health: healthy, the threshold-th failure in a row: unhealthy") {
  auto s = NewHealthState(kConfig, 0);
  FailOne(s, 1, 1000);
  FailOne(s, 2, 2000);
  CHECK(FailOne(s, 3, 3000) == HealthChange::kBecameUnhealthy);
  CHECK(!s.healthy);
  CHECK(HealthName(s) == "unhealthy");
  CHECK(FailOne(s, 4, 4000) == HealthChange::kNone);  // reported once
}

TEST_CASE("health: healthy, an answer resets the failure count") {
  auto s = NewHealthState(kConfig, 0);
  FailOne(s, 1, 1000);
  FailOne(s, 2, 2000);
  CHECK(PassOne(s, 3, 3000) == HealthChange::kNone);
  CHECK(s.failures_in_row == 0);
  FailOne(s, 4, 4000);
  FailOne(s, 5, 5000);
  CHECK(s.healthy);  // two in a row again, not four
}

TEST_CASE("health: unhealthy, answers below the threshold: still unhealthy") {
  auto s = NewHealthState(kConfig, 0);
  for (std::uint64_t i = 1; i <= 3; ++i) FailOne(s, i, static_cast<std::int64_t>(i) * 1000);
  CHECK(PassOne(s, 4, 4000) == HealthChange::kNone);
  CHECK(!s.healthy);
}

TEST_CASE("health: unhealthy, the threshold-th answer in a row: healthy") {
  auto s = NewHealthState(kConfig, 0);
  for (std::uint64_t i = 1; i <= 3; ++i) FailOne(s, i, static_cast<std::int64_t>(i) * 1000);
  PassOne(s, 4, 4000);
  CHECK(PassOne(s, 5, 5000) == HealthChange::kBecameHealthy);
  CHECK(s.healthy);
}

TEST_CASE("health: unhealthy, a failure resets the answer count") {
  auto s = NewHealthState(kConfig, 0);
  for (std::uint64_t i = 1; i <= 3; ++i) FailOne(s, i, static_cast<std::int64_t>(i) * 1000);
  PassOne(s, 4, 4000);
  FailOne(s, 5, 5000);
  CHECK(PassOne(s, 6, 6000) == HealthChange::kNone);
  CHECK(!s.healthy);
  CHECK(PassOne(s, 7, 7000) == HealthChange::kBecameHealthy);
}

TEST_CASE("health: a late answer or one for another check is ignored") {
  auto s = NewHealthState(kConfig, 0);
  OnSent(kConfig, s, 1, 1000);
  CHECK(OnReply(kConfig, s, 99, 1100) == HealthChange::kNone);  // not the outstanding check
  CHECK(s.outstanding == 1u);
  CHECK(!s.rtt_ms.has_value());
  CHECK(OnTick(kConfig, s, 1500) == HealthChange::kNone);  // first failure
  CHECK(s.failures_in_row == 1);
  CHECK(OnReply(kConfig, s, 1, 1600) == HealthChange::kNone);  // too late: already failed
  CHECK(s.failures_in_row == 1);
  CHECK(!s.rtt_ms.has_value());
}

TEST_CASE("health: an answer at the timeout, before the tick saw it, is a failure") {
  auto s = NewHealthState(kConfig, 0);
  OnSent(kConfig, s, 1, 1000);
  CHECK(OnReply(kConfig, s, 1, 1500) == HealthChange::kNone);
  CHECK(s.failures_in_row == 1);
  CHECK(!s.outstanding.has_value());
  CHECK(!s.rtt_ms.has_value());
}

}  // namespace
}  // namespace claw::broker
