#include <doctest/doctest.h>

#include "broker/dag.hpp"

using claw::broker::FindCycle;
using Edges = std::vector<std::vector<std::size_t>>;

TEST_CASE("dag: no edges, a chain and a diamond have no cycle") {
  CHECK_FALSE(FindCycle(Edges{}).has_value());
  CHECK_FALSE(FindCycle(Edges{{}, {}, {}}).has_value());
  CHECK_FALSE(FindCycle(Edges{{}, {0}, {1}}).has_value());
  CHECK_FALSE(FindCycle(Edges{{}, {0}, {0}, {1, 2}}).has_value());
}

TEST_CASE("dag: a member waiting for itself is a cycle") {
  const auto cycle = FindCycle(Edges{{}, {1}});
  REQUIRE(cycle.has_value());
  CHECK(*cycle == std::vector<std::size_t>{1, 1});
}

TEST_CASE("dag: a cycle is reported along its edges, first node repeated") {
  // 0 waits for 2, 2 waits for 1, 1 waits for 0; 3 hangs off the cycle.
  const auto cycle = FindCycle(Edges{{2}, {0}, {1}, {0}});
  REQUIRE(cycle.has_value());
  CHECK(*cycle == std::vector<std::size_t>{0, 2, 1, 0});
}

TEST_CASE("dag: a cycle reached only from a later start is found") {
  const auto cycle = FindCycle(Edges{{}, {}, {3}, {2}});
  REQUIRE(cycle.has_value());
  CHECK(cycle->front() == cycle->back());
  CHECK(cycle->size() == 3);
}

TEST_CASE("dag: a chain of 100000 members is walked without recursion") {
  Edges chain(100000);
  for (std::size_t i = 1; i < chain.size(); ++i) chain[i] = {i - 1};
  CHECK_FALSE(FindCycle(chain).has_value());
  chain[0] = {chain.size() - 1};
  const auto cycle = FindCycle(chain);
  REQUIRE(cycle.has_value());
  CHECK(cycle->size() == chain.size() + 1);
}
