// The Binary Star table, one test per row (schema/PROTOCOL.md, "Broker pair", has the same
// table).
#include <doctest/doctest.h>

#include "broker/binary_star.hpp"

namespace claw::broker {
namespace {

using S = BStarState;
using E = BStarEvent;
using A = BStarAction;

BStarStep Step(S state, E event, BStarFacts facts = {}) {
  return BStarTransition(state, event, facts);
}

void Expect(const BStarStep& step, S next, A action) {
  CHECK(step.next == next);
  CHECK(step.action == action);
}

const BStarFacts kExpired{.peer_expired = true, .have_copy = true};
const BStarFacts kCopy{.have_copy = true};
const BStarFacts kNewer{.peer_newer = true};
const BStarFacts kOlder{.peer_older = true};
const BStarFacts kTiePrimary{.primary = true};

TEST_CASE("primary: a backup appears -> active") {
  Expect(Step(S::kPrimary, E::kPeerBackup), S::kActive, A::kNone);
}
TEST_CASE("primary: a backup that served more recently appears -> passive") {
  Expect(Step(S::kPrimary, E::kPeerBackup, kNewer), S::kPassive, A::kNone);
}
TEST_CASE("primary: the backup is active -> passive") {
  Expect(Step(S::kPrimary, E::kPeerActive), S::kPassive, A::kNone);
}
TEST_CASE("primary: the backup is passive -> wait, it is taking over") {
  Expect(Step(S::kPrimary, E::kPeerPassive), S::kPrimary, A::kNone);
}
TEST_CASE("primary: the passive backup has older data or no copy (epoch 0) -> active") {
  Expect(Step(S::kPrimary, E::kPeerPassive, kOlder), S::kActive, A::kNone);
}
TEST_CASE("primary: another primary -> stop") {
  Expect(Step(S::kPrimary, E::kPeerPrimary), S::kPrimary, A::kStop);
}
TEST_CASE("primary: a request while the peer is heard -> refused") {
  Expect(Step(S::kPrimary, E::kClientRequest), S::kPrimary, A::kRefuse);
}
TEST_CASE("primary: a request with no peer -> active, served") {
  Expect(Step(S::kPrimary, E::kClientRequest, kExpired), S::kActive, A::kServe);
}
TEST_CASE("backup: the primary is active -> passive") {
  Expect(Step(S::kBackup, E::kPeerActive), S::kPassive, A::kNone);
}
TEST_CASE("backup: the primary deferred (passive) -> active") {
  Expect(Step(S::kBackup, E::kPeerPassive), S::kActive, A::kNone);
}
TEST_CASE("backup: the primary is starting -> wait") {
  Expect(Step(S::kBackup, E::kPeerPrimary), S::kBackup, A::kNone);
}
TEST_CASE("backup: another backup -> stop") {
  Expect(Step(S::kBackup, E::kPeerBackup), S::kBackup, A::kStop);
}
TEST_CASE("backup: a request -> refused, even with no peer") {
  Expect(Step(S::kBackup, E::kClientRequest), S::kBackup, A::kRefuse);
  Expect(Step(S::kBackup, E::kClientRequest, kExpired), S::kBackup, A::kRefuse);
}
TEST_CASE("active: a request -> served") {
  Expect(Step(S::kActive, E::kClientRequest), S::kActive, A::kServe);
}
TEST_CASE("active: the peer restarts or is passive -> stays active") {
  Expect(Step(S::kActive, E::kPeerPrimary), S::kActive, A::kNone);
  Expect(Step(S::kActive, E::kPeerBackup), S::kActive, A::kNone);
  Expect(Step(S::kActive, E::kPeerPassive), S::kActive, A::kNone);
}
TEST_CASE("active: dual active, the peer's epoch is lower -> stays, the peer stops") {
  Expect(Step(S::kActive, E::kPeerActive, kOlder), S::kActive, A::kNone);
}
TEST_CASE("active: dual active, the peer's epoch is higher -> stop") {
  Expect(Step(S::kActive, E::kPeerActive, kNewer), S::kActive, A::kStop);
}
TEST_CASE("active: dual active, equal epochs -> the primary stays, the backup stops") {
  Expect(Step(S::kActive, E::kPeerActive, kTiePrimary), S::kActive, A::kNone);
  Expect(Step(S::kActive, E::kPeerActive), S::kActive, A::kStop);
}
TEST_CASE("passive: the peer restarted -> active") {
  Expect(Step(S::kPassive, E::kPeerPrimary, kCopy), S::kActive, A::kNone);
  Expect(Step(S::kPassive, E::kPeerBackup, kCopy), S::kActive, A::kNone);
}
TEST_CASE("passive: the peer restarted, but this copy is incomplete or older -> stays passive") {
  Expect(Step(S::kPassive, E::kPeerPrimary), S::kPassive, A::kNone);
  Expect(Step(S::kPassive, E::kPeerBackup), S::kPassive, A::kNone);
  Expect(Step(S::kPassive, E::kPeerPrimary, {.peer_newer = true, .have_copy = true}), S::kPassive,
         A::kNone);
}
TEST_CASE("passive: the peer is active -> stays passive") {
  Expect(Step(S::kPassive, E::kPeerActive), S::kPassive, A::kNone);
}
TEST_CASE("passive: dual passive -> the newer data, or the primary on a tie, takes over") {
  Expect(Step(S::kPassive, E::kPeerPassive, {.peer_older = true, .have_copy = true}), S::kActive,
         A::kNone);
  Expect(Step(S::kPassive, E::kPeerPassive, {.peer_newer = true, .have_copy = true}), S::kPassive,
         A::kNone);
  Expect(Step(S::kPassive, E::kPeerPassive, {.primary = true, .have_copy = true}), S::kActive,
         A::kNone);
  Expect(Step(S::kPassive, E::kPeerPassive, kCopy), S::kPassive, A::kNone);
  Expect(Step(S::kPassive, E::kPeerPassive, kOlder), S::kPassive, A::kNone);  // no copy
}
TEST_CASE("passive: a request while the active is heard -> refused (no split brain)") {
  Expect(Step(S::kPassive, E::kClientRequest), S::kPassive, A::kRefuse);
}
TEST_CASE("passive: a request after the active went silent -> failover, served") {
  Expect(Step(S::kPassive, E::kClientRequest, kExpired), S::kActive, A::kServe);
}
TEST_CASE("passive: a request after the active went silent, without a complete copy -> refused") {
  Expect(Step(S::kPassive, E::kClientRequest, {.peer_expired = true}), S::kPassive, A::kRefuse);
}

}  // namespace
}  // namespace claw::broker
