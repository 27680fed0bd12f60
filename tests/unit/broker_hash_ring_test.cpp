// The consistent hash ring: stable owners, only a leaving worker's keys move, and the walk past
// ineligible workers.
#include <doctest/doctest.h>

#include <map>

#include "broker/hash_ring.hpp"

namespace claw::broker {
namespace {

std::string Key(int i) { return "key-" + std::to_string(i); }

TEST_CASE("hash ring: an empty ring has no owner") {
  HashRing ring;
  CHECK(!ring.Lookup("k").has_value());
  CHECK(!ring.Lookup("k", [](const std::string&) { return true; }).has_value());
}

TEST_CASE("hash ring: a key always has the same owner, whatever the order workers joined in") {
  HashRing a, b;
  for (const char* id : {"w1", "w2", "w3"}) a.Add(id);
  for (const char* id : {"w3", "w1", "w2"}) b.Add(id);
  a.Add("w2");  // adding twice changes nothing
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(a.Lookup(Key(i)).has_value());
    CHECK(*a.Lookup(Key(i)) == *a.Lookup(Key(i)));
    CHECK(*a.Lookup(Key(i)) == *b.Lookup(Key(i)));
  }
}

TEST_CASE("hash ring: the hash is fixed, so owners survive a restart") {
  // Pinned values: a different hash would move every key of a running cluster on upgrade.
  CHECK(HashRing::Hash("claw") == 4962654103195286643ull);
  CHECK(HashRing::Hash("") == 17665956581633026203ull);
  HashRing ring;
  ring.Add("w1");
  ring.Add("w2");
  ring.Add("w3");
  CHECK(*ring.Lookup("a") == "w2");
  CHECK(*ring.Lookup("d") == "w3");
  ring.Remove("w3");
  std::map<std::string, int> owned;
  for (int i = 0; i < 10000; ++i) ++owned[*ring.Lookup(Key(i))];
  // Virtual nodes spread keys evenly: each of two workers owns 40-60%.
  CHECK(owned["w1"] > 4000);
  CHECK(owned["w2"] > 4000);
}

TEST_CASE("hash ring: removing a worker moves only the keys it owned") {
  HashRing ring;
  for (const char* id : {"w1", "w2", "w3", "w4"}) ring.Add(id);
  std::map<std::string, std::string> before;
  for (int i = 0; i < 10000; ++i) before[Key(i)] = *ring.Lookup(Key(i));
  ring.Remove("w3");
  CHECK(!ring.Contains("w3"));
  int moved = 0;
  for (const auto& [key, owner] : before) {
    const auto now = *ring.Lookup(key);
    CHECK(now != "w3");
    if (owner != "w3") {
      CHECK(now == owner);
    } else {
      ++moved;
    }
  }
  // w3 owned about a quarter of the keys, and those are all that moved.
  CHECK(moved > 1500);
  CHECK(moved < 3500);
  ring.Add("w3");  // back again: every key returns to its first owner
  for (const auto& [key, owner] : before) CHECK(*ring.Lookup(key) == owner);
}

TEST_CASE("hash ring: adding a worker takes keys only for itself") {
  HashRing ring;
  for (const char* id : {"w1", "w2"}) ring.Add(id);
  std::map<std::string, std::string> before;
  for (int i = 0; i < 5000; ++i) before[Key(i)] = *ring.Lookup(Key(i));
  ring.Add("w3");
  for (const auto& [key, owner] : before) {
    const auto now = *ring.Lookup(key);
    CHECK((now == owner || now == "w3"));
  }
}

TEST_CASE("hash ring: lookup skips ineligible workers clockwise, and fails when none is") {
  HashRing ring;
  for (const char* id : {"w1", "w2", "w3"}) ring.Add(id);
  int asked = 0;
  for (int i = 0; i < 500; ++i) {
    const auto owner = *ring.Lookup(Key(i));
    auto other = ring.Lookup(Key(i), [&](const std::string& id) { return id != owner; });
    REQUIRE(other.has_value());
    CHECK(*other != owner);
    // Skipping the owner gives what the ring without the owner gives.
    HashRing without = ring;
    without.Remove(owner);
    CHECK(*other == *without.Lookup(Key(i)));
  }
  auto none = ring.Lookup("k", [&](const std::string&) {
    ++asked;
    return false;
  });
  CHECK(!none.has_value());
  CHECK(asked == 3);  // each worker asked once
  CHECK(*ring.Lookup("k", [](const std::string& id) { return id == "w2"; }) == "w2");
}

}  // namespace
}  // namespace claw::broker
