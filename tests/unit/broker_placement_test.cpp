// Placement: one test per rule of broker/placement.hpp, and the reasons a job waits.
#include <doctest/doctest.h>

#include <vector>

#include "broker/placement.hpp"

namespace claw::broker {
namespace {

CandidateView Worker(std::string id, wire::Labels labels = {}, std::string zone = "") {
  CandidateView c;
  c.id = std::move(id);
  c.labels = std::move(labels);
  c.zone = std::move(zone);
  c.capacity = 2;
  c.rtt_ms = 5;
  return c;
}

PlacementRequest Request(std::string type = "render") {
  PlacementRequest r;
  r.type = std::move(type);
  return r;
}

std::vector<std::size_t> Eligible(const PlacementRequest& r, const std::vector<CandidateView>& c) {
  auto p = Place(r, c);
  if (!p.eligible.empty()) CHECK(p.why_waiting.empty());
  return p.eligible;
}

std::string Why(const PlacementRequest& r, const std::vector<CandidateView>& c) {
  auto p = Place(r, c);
  CHECK(p.eligible.empty());
  return p.why_waiting;
}

using Indexes = std::vector<std::size_t>;

TEST_CASE("placement: locality names") {
  CHECK(ParseLocality("same-zone") == Locality::kSameZone);
  CHECK(ParseLocality("cross-zone") == Locality::kCrossZone);
  CHECK(ParseLocality("any") == Locality::kAny);
  CHECK(!ParseLocality("near").has_value());
  CHECK(Name(Locality::kCrossZone) == "cross-zone");
}

TEST_CASE("placement: with no constraint every worker with room is eligible") {
  CHECK(Eligible(Request(), {Worker("a"), Worker("b")}) == Indexes{0, 1});
}

TEST_CASE("placement: free slots are capacity + prefetch minus those in hand, never below 0") {
  CHECK(FreeSlots(2, 1, 0) == 3);
  CHECK(FreeSlots(2, 1, 2) == 1);
  CHECK(FreeSlots(2, 1, 3) == 0);
  CHECK(FreeSlots(1, 0, 4) == 0);  // its capacity shrank while it held 4
  auto full = Worker("full");
  full.capacity = 1;
  full.in_hand = 2;
  auto held = Worker("held");
  held.prefetch = 1;
  held.in_hand = 1;
  CHECK(Eligible(Request(), {full, held}) == Indexes{1});
}

TEST_CASE("placement: no worker for the type") {
  CHECK(Why(Request("x"), {}) == "no worker serves type 'x'");
}

TEST_CASE("placement: required labels must all match") {
  auto r = Request();
  r.required = {{"gpu", "true"}};
  const std::vector<CandidateView> c = {Worker("a"), Worker("b", {{"gpu", "true"}}),
                                        Worker("c", {{"gpu", "false"}})};
  CHECK(Eligible(r, c) == Indexes{1});
  r.required["mem"] = "big";
  CHECK(Why(r, c) ==
        "needs gpu=true, mem=big: none of the 3 workers for type 'render' has "
        "them all");
}

TEST_CASE("placement: a gpu job waits, visibly, when no worker has gpu=true") {
  auto r = Request();
  r.required = {{"gpu", "true"}};
  CHECK(Why(r, {Worker("a"), Worker("b"), Worker("c", {{"gpu", "no"}})}) ==
        "needs gpu=true: none of the 3 workers for type 'render' has it");
}

TEST_CASE("placement: same-zone keeps only workers in the job's zone") {
  auto r = Request();
  r.zone = "z1";
  r.locality = Locality::kSameZone;
  const std::vector<CandidateView> c = {Worker("a", {}, "z2"), Worker("b", {}, "z1"), Worker("c")};
  CHECK(Eligible(r, c) == Indexes{1});
  r.zone = "z9";
  CHECK(Why(r, c) == "needs zone 'z9' (same-zone): none of the 3 workers left is in it");
}

TEST_CASE("placement: cross-zone prefers the job's zone and falls back to others") {
  auto r = Request();
  r.zone = "z1";
  r.locality = Locality::kCrossZone;
  std::vector<CandidateView> c = {Worker("a", {}, "z2"), Worker("b", {}, "z1"),
                                  Worker("c", {}, "z1")};
  CHECK(Eligible(r, c) == Indexes{1, 2});
  c[1].in_hand = 2;  // full
  c[2].healthy = false;
  CHECK(Eligible(r, c) == Indexes{0});  // none in z1 can take it: another zone does
}

TEST_CASE("placement: any locality, or no zone in the request, ignores zones") {
  auto r = Request();
  r.zone = "z1";
  r.locality = Locality::kAny;
  const std::vector<CandidateView> c = {Worker("a", {}, "z2"), Worker("b", {}, "z1")};
  CHECK(Eligible(r, c) == Indexes{0, 1});
  r.zone.clear();
  r.locality = Locality::kSameZone;
  CHECK(Eligible(r, c) == Indexes{0, 1});
  r.locality.reset();  // no locality: any
  r.zone = "z1";
  CHECK(Eligible(r, c) == Indexes{0, 1});
}

TEST_CASE("placement: a latency bound excludes slower and unmeasured workers") {
  auto r = Request();
  r.max_rtt_ms = 10;
  std::vector<CandidateView> c = {Worker("a"), Worker("b"), Worker("c")};
  c[0].rtt_ms = 10;  // at the bound: fine
  c[1].rtt_ms = 11;
  c[2].rtt_ms.reset();
  CHECK(Eligible(r, c) == Indexes{0});
  c[0].rtt_ms = 50;
  CHECK(Why(r, c) ==
        "needs RTT <= 10 ms: 2 workers over 10 ms RTT, 1 worker with no RTT "
        "measured yet");
  r.max_rtt_ms = 0;  // no bound: RTT does not matter, measured or not
  CHECK(Eligible(r, c) == Indexes{0, 1, 2});
}

TEST_CASE("placement: unhealthy workers and open breakers get no jobs") {
  std::vector<CandidateView> c = {Worker("a"), Worker("b"), Worker("c")};
  c[0].healthy = false;
  c[1].breaker_allows = false;
  CHECK(Eligible(Request(), c) == Indexes{2});
  c[2].healthy = false;
  CHECK(Why(Request(), c) == "2 workers unhealthy, 1 breaker open");
  c[2].healthy = true;
  c[2].breaker_allows = false;
  CHECK(Why(Request(), c) == "1 worker unhealthy, 2 breakers open");
}

TEST_CASE("placement: a full worker is never eligible") {
  std::vector<CandidateView> c = {Worker("a"), Worker("b")};
  c[0].in_hand = 2;
  CHECK(Eligible(Request(), c) == Indexes{1});
  c[1].in_hand = 2;
  CHECK(Why(Request(), c) == "all 2 eligible workers are full");
  CHECK(Why(Request(), {c[0]}) == "the 1 eligible worker is full");
}

TEST_CASE("placement: the reason names what earlier rules excluded") {
  auto r = Request();
  r.required = {{"gpu", "true"}};
  std::vector<CandidateView> c = {Worker("a"), Worker("b", {{"gpu", "true"}}),
                                  Worker("c", {{"gpu", "true"}})};
  c[1].in_hand = 2;
  c[2].healthy = false;
  CHECK(Why(r, c) == "the 1 eligible worker is full (1 worker lacks gpu=true; 1 worker unhealthy)");
}

TEST_CASE("placement: anti-affinity prefers workers without a job of the same key") {
  auto r = Request();
  r.anti_affinity_key = "group-1";
  std::vector<CandidateView> c = {Worker("a"), Worker("b"), Worker("c")};
  c[0].same_key_in_hand = 1;
  CHECK(Eligible(r, c) == Indexes{1, 2});
  c[1].same_key_in_hand = 2;
  c[2].same_key_in_hand = 1;
  CHECK(Eligible(r, c) == Indexes{0, 2});  // all hold one: the fewest
  r.anti_affinity_key.clear();
  CHECK(Eligible(r, c) == Indexes{0, 1, 2});
}

}  // namespace
}  // namespace claw::broker
