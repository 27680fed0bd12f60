// Binary Star: which of two brokers serves. A pure state machine, written as a table (the same
// table is in schema/PROTOCOL.md, "Broker pair"), driven by the peer's state heartbeats and by
// requests from clients and workers.
//
// Each broker starts as PRIMARY or BACKUP and becomes ACTIVE (serves) or PASSIVE (holds a copy
// of the active's jobs and answers NOT_ACTIVE). The rules that keep one active at a time:
// - a passive takes over only when its peer has been silent for faultTolerance.failover.
//   failoverTime (2 s; more than one heartbeat) AND a client
//   or worker asks it for service (the peer-expired vote); while it hears its peer it refuses;
// - two actives: the one with the lower epoch (on a tie, the backup) stops; two passives: the
//   one with the higher epoch (on a tie, the primary) takes over;
// - at start, a primary whose peer served more recently (a higher epoch) defers to it;
// - a passive takes over only with a complete copy of the active's jobs.
// Failback is manual: a repaired primary comes back as passive while the backup is active.
#pragma once

#include <cstdint>
#include <string_view>

namespace claw::broker {

enum class BStarState : std::uint8_t { kPrimary, kBackup, kActive, kPassive };

enum class BStarEvent : std::uint8_t {
  kPeerPrimary,    // the peer's heartbeat says PRIMARY
  kPeerBackup,     // ... BACKUP
  kPeerActive,     // ... ACTIVE
  kPeerPassive,    // ... PASSIVE
  kClientRequest,  // a client or worker asks for service
};

// What the broker knows besides the event.
struct BStarFacts {
  bool peer_expired = false;  // the peer has been silent for 2 x heartbeat (or never heard)
  bool peer_newer = false;    // the peer's epoch is higher than ours
  bool peer_older = false;    // the peer's epoch is lower than ours
  bool primary = false;       // this broker was started as the primary
  // A passive holds a complete, gap-free copy of the active's jobs. Without one it never takes
  // over (it would serve with jobs missing) and announces epoch 0.
  bool have_copy = false;
};

enum class BStarAction : std::uint8_t {
  kNone,    // nothing to do (heartbeats)
  kServe,   // a client request: serve it
  kRefuse,  // a client request: answer NOT_ACTIVE
  kStop,    // a fatal conflict (dual active, or a misconfigured pair): this broker must stop
};

struct BStarStep {
  BStarState next;
  BStarAction action;
  std::string_view why;  // for the log; empty when nothing changed
};

BStarStep BStarTransition(BStarState state, BStarEvent event, const BStarFacts& facts);

std::string_view Name(BStarState state);
std::string_view Name(BStarEvent event);

}  // namespace claw::broker
