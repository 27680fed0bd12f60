// Distribution strategies: round-robin, hash, least-loaded and adaptive picking, with capacity,
// affinity and the configured routing defaults.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <vector>

#include "broker/strategy.hpp"

namespace claw::broker {
namespace {

CandidateView Worker(std::string id, std::uint32_t capacity = 10) {
  CandidateView c;
  c.id = std::move(id);
  c.capacity = capacity;
  return c;
}

PlacementRequest Request(std::string type = "t") {
  PlacementRequest r;
  r.type = std::move(type);
  return r;
}

SchedulingConfig With(Strategy strategy) {
  SchedulingConfig config;
  config.strategy = strategy;
  return config;
}

// Picks for a job and records it as in hand on the chosen worker.
std::string Assign(Scheduler& s, std::vector<CandidateView>& c, std::string_view key = "") {
  auto choice = s.Pick(Request(), key, c);
  REQUIRE_MESSAGE(choice.worker.has_value(), choice.why_waiting);
  ++c[*choice.worker].in_hand;
  return c[*choice.worker].id;
}

TEST_CASE("strategy: names") {
  CHECK(ParseStrategy("round-robin") == Strategy::kRoundRobin);
  CHECK(ParseStrategy("hash") == Strategy::kHash);
  CHECK(ParseStrategy("least-loaded") == Strategy::kLeastLoaded);
  CHECK(ParseStrategy("adaptive") == Strategy::kAdaptive);
  CHECK(!ParseStrategy("random").has_value());
  CHECK(Name(Strategy::kLeastLoaded) == "least-loaded");
}

TEST_CASE("round-robin: workers take turns, skipping those that cannot take the job") {
  Scheduler s(With(Strategy::kRoundRobin));
  std::vector<CandidateView> c = {Worker("a"), Worker("b"), Worker("c")};
  CHECK(Assign(s, c) == "a");
  CHECK(Assign(s, c) == "b");
  CHECK(Assign(s, c) == "c");
  CHECK(Assign(s, c) == "a");
  c[1].healthy = false;
  CHECK(Assign(s, c) == "c");
  CHECK(Assign(s, c) == "a");
  // The cursor is per type.
  auto other = s.Pick(Request("u"), "", c);
  CHECK(c[*other.worker].id == "a");
}

TEST_CASE("round-robin: a worker leaving does not upset the turn") {
  Scheduler s(With(Strategy::kRoundRobin));
  std::vector<CandidateView> c = {Worker("a"), Worker("b"), Worker("c")};
  CHECK(Assign(s, c) == "a");
  CHECK(Assign(s, c) == "b");
  c.erase(c.begin() + 1);      // b leaves
  CHECK(Assign(s, c) == "a");  // b's place is unknown now: from the start
  CHECK(Assign(s, c) == "c");
}

TEST_CASE("least-loaded: the lowest jobs-in-hand over capacity") {
  Scheduler s(With(Strategy::kLeastLoaded));
  std::vector<CandidateView> c = {Worker("a", 4), Worker("b", 10), Worker("c", 2)};
  c[0].in_hand = 2;  // 0.5
  c[1].in_hand = 3;  // 0.3
  c[2].in_hand = 1;  // 0.5
  CHECK(Assign(s, c) == "b");
  CHECK(Assign(s, c) == "b");  // 0.4
  CHECK(Assign(s, c) == "b");  // 0.5: ties with a and c
}

TEST_CASE("least-loaded: ties go to the most free slots, then take turns") {
  Scheduler s(With(Strategy::kLeastLoaded));
  std::vector<CandidateView> c = {Worker("a", 2), Worker("b", 4)};
  CHECK(Assign(s, c) == "b");  // both empty: b has more room
  Scheduler turns(With(Strategy::kLeastLoaded));
  std::vector<CandidateView> equal = {Worker("a"), Worker("b"), Worker("c")};
  for (int round = 0; round < 2; ++round) {
    for (const char* id : {"a", "b", "c"}) {
      auto choice = turns.Pick(Request(), "", equal);  // nothing stays in hand
      CHECK(equal[*choice.worker].id == id);
    }
  }
}

TEST_CASE("least-loaded: 1000 jobs over capacities 20/10/10 land in proportion") {
  Scheduler s(With(Strategy::kLeastLoaded));
  std::vector<CandidateView> c = {Worker("big", 20), Worker("small-1", 10), Worker("small-2", 10)};
  std::mt19937 rng(7);
  std::bernoulli_distribution finishes(0.05);
  std::map<std::string, int> assigned;
  for (int job = 0; job < 1000; ++job) {
    for (auto& w : c) {  // each job in hand finishes with the same chance per step
      const auto held = w.in_hand;
      for (std::uint32_t j = 0; j < held; ++j) w.in_hand -= finishes(rng) ? 1 : 0;
    }
    auto choice = s.Pick(Request(), "", c);
    if (!choice.worker) {  // everyone full: the oldest job somewhere ends first
      CHECK(choice.why_waiting == "all 3 eligible workers are full");
      --c[job % 3].in_hand;
      choice = s.Pick(Request(), "", c);
    }
    REQUIRE(choice.worker.has_value());
    auto& w = c[*choice.worker];
    ++w.in_hand;
    CHECK(w.in_hand <= w.capacity);
    ++assigned[w.id];
  }
  CHECK(assigned["big"] == doctest::Approx(500).epsilon(0.10));
  CHECK(assigned["small-1"] == doctest::Approx(250).epsilon(0.10));
  CHECK(assigned["small-2"] == doctest::Approx(250).epsilon(0.10));
}

TEST_CASE("every strategy honours capacity: a full worker is never picked") {
  for (auto strategy :
       {Strategy::kRoundRobin, Strategy::kHash, Strategy::kLeastLoaded, Strategy::kAdaptive}) {
    CAPTURE(Name(strategy));
    Scheduler s(With(strategy));
    std::vector<CandidateView> c = {Worker("a", 3), Worker("b", 1), Worker("c", 2)};
    for (int job = 0; job < 6; ++job) Assign(s, c, "same-key");
    CHECK(c[0].in_hand == 3);
    CHECK(c[1].in_hand == 1);
    CHECK(c[2].in_hand == 2);
    auto full = s.Pick(Request(), "same-key", c);
    CHECK(!full.worker.has_value());
    CHECK(full.why_waiting == "all 3 eligible workers are full");
  }
}

TEST_CASE("hash: the same key goes to the same worker") {
  Scheduler s(With(Strategy::kHash));
  std::vector<CandidateView> c = {Worker("a", 1000), Worker("b", 1000), Worker("c", 1000)};
  std::map<std::string, int> used;
  for (int i = 0; i < 300; ++i) {
    const auto key = "user-" + std::to_string(i);
    const auto first = Assign(s, c, key);
    CHECK(Assign(s, c, key) == first);
    CHECK(Assign(s, c, key) == first);
    ++used[first];
  }
  CHECK(used.size() == 3);  // keys spread over every worker
}

TEST_CASE("hash: a worker leaving moves only its own keys") {
  Scheduler s(With(Strategy::kHash));
  std::vector<CandidateView> c = {Worker("a", 100000), Worker("b", 100000), Worker("c", 100000),
                                  Worker("d", 100000)};
  std::map<std::string, std::string> before;
  for (int i = 0; i < 2000; ++i) {
    const auto key = "key-" + std::to_string(i);
    before[key] = c[*s.Pick(Request(), key, c).worker].id;
  }
  c.erase(c.begin() + 2);  // c leaves
  int moved = 0;
  for (const auto& [key, owner] : before) {
    const auto now = c[*s.Pick(Request(), key, c).worker].id;
    if (owner == "c") {
      ++moved;
      CHECK(now != "c");
    } else {
      CHECK(now == owner);
    }
  }
  CHECK(moved > 0);
}

TEST_CASE("hash: when the key's worker cannot take the job the next one clockwise does") {
  Scheduler s(With(Strategy::kHash));
  std::vector<CandidateView> c = {Worker("a"), Worker("b"), Worker("c")};
  const auto owner = *s.Pick(Request(), "k", c).worker;
  c[owner].healthy = false;
  const auto second = *s.Pick(Request(), "k", c).worker;
  CHECK(second != owner);
  CHECK(*s.Pick(Request(), "k", c).worker == second);  // and stays there meanwhile
  c[owner].healthy = true;
  CHECK(*s.Pick(Request(), "k", c).worker == owner);  // back home when it can
}

TEST_CASE("hash: a job without a key is placed least-loaded") {
  Scheduler s(With(Strategy::kHash));
  std::vector<CandidateView> c = {Worker("a", 4), Worker("b", 4)};
  c[0].in_hand = 3;
  CHECK(Assign(s, c) == "b");
  CHECK(Assign(s, c) == "b");
}

TEST_CASE("adaptive: picks like least-loaded") {
  Scheduler s(With(Strategy::kAdaptive));
  std::vector<CandidateView> c = {Worker("a", 10), Worker("b", 10)};
  c[0].in_hand = 5;
  c[1].in_hand = 7;
  CHECK(Assign(s, c) == "a");
  CHECK(Assign(s, c) == "a");
  CHECK(Assign(s, c) == "b");  // 7/10 each: a had the last turn
}

TEST_CASE("prefetch: a worker has room for capacity + prefetch jobs") {
  Scheduler s(With(Strategy::kLeastLoaded));
  std::vector<CandidateView> c = {Worker("p", 1), Worker("q", 2)};
  c[0].prefetch = 2;
  // Loads 0/1 vs 0/2 tie, p has more free slots (3); then 1/1 vs 0/2, 1/1 vs 1/2, 2/1 vs 1/2 ...
  for (int i = 0; i < 5; ++i) Assign(s, c);
  CHECK(c[0].in_hand == 3);
  CHECK(c[1].in_hand == 2);
  const auto choice = s.Pick(Request(), "", c);
  CHECK(!choice.worker.has_value());
  CHECK(choice.why_waiting == "all 2 eligible workers are full");
}

TEST_CASE("adaptive: rebalancing is due once a worker has stayed above the threshold that long") {
  auto config = With(Strategy::kAdaptive);
  config.rebalance_interval_ms = 1000;
  config.threshold = 0.5;
  std::optional<std::int64_t> since;
  CHECK_FALSE(RebalanceDue(config, since, 2, 4, 0));  // 2/4 is the threshold, not above it
  CHECK_FALSE(since.has_value());
  CHECK_FALSE(RebalanceDue(config, since, 3, 4, 100));
  CHECK(since == 100);
  CHECK_FALSE(RebalanceDue(config, since, 6, 4, 1099));
  CHECK(RebalanceDue(config, since, 6, 4, 1100));
  CHECK(since == 1100);  // the clock starts again
  CHECK_FALSE(RebalanceDue(config, since, 6, 4, 2099));
  // Dropping to the threshold or below resets it.
  CHECK_FALSE(RebalanceDue(config, since, 1, 4, 2050));
  CHECK_FALSE(since.has_value());
  CHECK_FALSE(RebalanceDue(config, since, 6, 4, 2100));
  CHECK_FALSE(RebalanceDue(config, since, 6, 4, 3099));
  CHECK(RebalanceDue(config, since, 6, 4, 3100));
}

TEST_CASE("adaptive: a recalled job goes to the least loaded worker that can start it at once") {
  Scheduler s(With(Strategy::kAdaptive));  // threshold 0.8
  std::vector<CandidateView> c = {Worker("source", 1), Worker("full", 2),
                                  Worker("at-threshold", 10), Worker("light", 10),
                                  Worker("lighter", 10)};
  c[0].prefetch = 5;
  c[0].in_hand = 6;
  c[1].in_hand = 2;  // no free slot
  c[2].in_hand = 8;  // 8/10 is not below 0.8
  c[3].in_hand = 3;
  c[4].in_hand = 1;
  CHECK(s.RebalanceTarget(Request(), c, 0) == 4);
  c[4].healthy = false;  // placement applies
  CHECK(s.RebalanceTarget(Request(), c, 0) == 3);
  c[3].in_hand = 8;
  CHECK(!s.RebalanceTarget(Request(), c, 0).has_value());
  // The source is never its own target, however light it is.
  std::vector<CandidateView> alone = {Worker("only", 10)};
  CHECK(!s.RebalanceTarget(Request(), alone, 0).has_value());
  // A source that no longer serves the type: any light worker will do.
  CHECK(s.RebalanceTarget(Request(), alone, std::nullopt) == 0);
}

TEST_CASE("affinity: the worker that ran the type last keeps it while it has room") {
  auto config = With(Strategy::kLeastLoaded);
  config.affinity = true;
  Scheduler s(config);
  std::vector<CandidateView> c = {Worker("a", 2), Worker("b", 2)};
  c[0].in_hand = 1;
  CHECK(Assign(s, c) == "b");  // the less loaded
  c[0].in_hand = 0;
  CHECK(Assign(s, c) == "b");  // more loaded now, still preferred: it ran the last one
  CHECK(Assign(s, c) == "a");  // b is full
  Scheduler without(With(Strategy::kLeastLoaded));
  c[1].in_hand = 1;
  c[0].in_hand = 0;
  CHECK(Assign(without, c) == "a");
}

TEST_CASE("affinity: a hash job with a key follows its key instead") {
  auto config = With(Strategy::kHash);
  config.affinity = true;
  Scheduler s(config);
  std::vector<CandidateView> c = {Worker("a"), Worker("b")};
  const auto owner = *s.Pick(Request(), "k", c).worker;
  c[owner].in_hand = 10;  // full: a job without a key goes to the other
  CHECK(*s.Pick(Request(), "", c).worker == 1 - owner);
  c[owner].in_hand = 0;
  CHECK(*s.Pick(Request(), "", c).worker == 1 - owner);  // no key: affinity, not turns
  CHECK(*s.Pick(Request(), "k", c).worker == owner);     // a key: its worker
}

TEST_CASE("routing: anti-affinity only when configured") {
  std::vector<CandidateView> c = {Worker("a"), Worker("b")};
  c[0].same_key_in_hand = 1;
  auto r = Request();
  r.anti_affinity_key = "g";
  auto on = With(Strategy::kRoundRobin);
  on.anti_affinity = true;
  Scheduler spread(on);
  CHECK(*spread.Pick(r, "", c).worker == 1);
  CHECK(*spread.Pick(r, "", c).worker == 1);
  Scheduler ignore(With(Strategy::kRoundRobin));
  CHECK(*ignore.Pick(r, "", c).worker == 0);
}

TEST_CASE("routing: a job without a locality gets the configured one") {
  std::vector<CandidateView> c = {Worker("a"), Worker("b")};
  c[0].zone = "z2";
  c[1].zone = "z1";
  auto r = Request();
  r.zone = "z1";
  auto config = With(Strategy::kRoundRobin);
  config.locality = Locality::kSameZone;
  Scheduler s(config);
  CHECK(*s.Pick(r, "", c).worker == 1);
  CHECK(*s.Pick(r, "", c).worker == 1);
  r.locality = Locality::kAny;  // the job's own choice wins
  CHECK(*s.Pick(r, "", c).worker == 0);
  c[1].in_hand = c[1].capacity;
  r.locality.reset();
  CHECK(s.Pick(r, "", c).why_waiting ==
        "the 1 eligible worker is full (1 worker outside zone 'z1')");
}

}  // namespace
}  // namespace claw::broker
