// Pure pieces of the broker: retry delays and the ready queues (the config file:
// broker_config_test).
#include <doctest/doctest.h>

#include "broker/ready_queues.hpp"
#include "broker/retry_policy.hpp"

namespace claw::broker {
namespace {

TEST_CASE("retry delay doubles from the base up to the cap") {
  const RetryPolicy p{1000, 8000, 0};
  CHECK(RetryDelayMs(p, 1, 0.5) == 1000);
  CHECK(RetryDelayMs(p, 2, 0.5) == 2000);
  CHECK(RetryDelayMs(p, 3, 0.5) == 4000);
  CHECK(RetryDelayMs(p, 4, 0.5) == 8000);
  CHECK(RetryDelayMs(p, 5, 0.5) == 8000);
  CHECK(RetryDelayMs(p, 4000000000u, 0.5) == 8000);  // no overflow however many attempts
}

TEST_CASE("retry jitter adds up to its percentage of the delay") {
  const RetryPolicy p{1000, 60000, 10};
  CHECK(RetryDelayMs(p, 1, 0.0) == 1000);
  CHECK(RetryDelayMs(p, 1, 0.5) == 1050);
  CHECK(RetryDelayMs(p, 2, 0.999) == 2199);
}

TEST_CASE("after a failure: retry while attempts are left, dead when not or when permanent") {
  CHECK(Decide(1, 3, false) == AfterFailure::kRetry);
  CHECK(Decide(2, 3, false) == AfterFailure::kRetry);
  CHECK(Decide(3, 3, false) == AfterFailure::kDead);
  CHECK(Decide(1, 3, true) == AfterFailure::kDead);
}

// Every queued job of `type`, in the order dispatch looks at them.
std::vector<Seq> Order(ReadyQueues& q, const std::string& type) {
  std::vector<Seq> order;
  q.FindFirst(type, 1000, [&](Seq seq) {
    order.push_back(seq);
    return false;
  });
  return order;
}

TEST_CASE("ready queues: highest priority first, FIFO within a priority, per type") {
  ReadyQueues q;
  q.Push("t", 5, 1);
  q.Push("t", 9, 2);
  q.Push("t", 5, 3);
  q.Push("u", 0, 4);
  CHECK(q.Depth("t") == 3);
  CHECK(Order(q, "t") == std::vector<Seq>{2, 1, 3});
  CHECK(q.FindFirst("t", 10, [](Seq seq) { return seq != 2; }) == 1);
  CHECK(q.Depth("t") == 3);  // FindFirst leaves them queued
  CHECK(!q.FindFirst("t", 1, [](Seq seq) { return seq != 2; }).has_value());  // bounded
  // A job pushed to the front goes ahead of its priority's others, not of higher priorities.
  q.PushFront("t", 5, 7);
  CHECK(Order(q, "t") == std::vector<Seq>{2, 7, 1, 3});
  CHECK(Order(q, "u") == std::vector<Seq>{4});
  CHECK(Order(q, "nothing").empty());
}

TEST_CASE("ready queues: remove takes one job out, depths list non-empty queues") {
  ReadyQueues q;
  q.Push("t", 5, 1);
  q.Push("t", 5, 2);
  q.Push("t", 7, 3);
  CHECK(q.Remove("t", 5, 1));
  CHECK(!q.Remove("t", 5, 1));
  CHECK(!q.Remove("t", 7, 2));
  auto depths = q.Depths();
  REQUIRE(depths.size() == 2);
  CHECK(depths[0].priority == 7);
  CHECK(depths[1].priority == 5);
  CHECK(depths[1].depth == 1);
}

}  // namespace
}  // namespace claw::broker
