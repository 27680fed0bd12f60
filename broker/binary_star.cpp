#include "broker/binary_star.hpp"

namespace claw::broker {

using S = BStarState;
using E = BStarEvent;
using A = BStarAction;

BStarStep BStarTransition(BStarState state, BStarEvent event, const BStarFacts& f) {
  switch (state) {
    case S::kPrimary:
      switch (event) {
        case E::kPeerBackup:
          if (f.peer_newer) return {S::kPassive, A::kNone, "backup served more recently: passive"};
          return {S::kActive, A::kNone, "connected to backup: active"};
        case E::kPeerActive:
          return {S::kPassive, A::kNone, "backup is active: passive"};
        case E::kPeerPassive:
          // A passive with older data (or no complete copy: it announces epoch 0) will not take
          // over; otherwise it is about to.
          if (f.peer_older)
            return {S::kActive, A::kNone, "the passive peer has older data: active"};
          return {S::kPrimary, A::kNone, ""};
        case E::kPeerPrimary:
          return {S::kPrimary, A::kStop, "both brokers are configured as primary"};
        case E::kClientRequest:
          if (f.peer_expired) return {S::kActive, A::kServe, "no backup: active"};
          return {S::kPrimary, A::kRefuse, ""};
      }
      break;
    case S::kBackup:
      switch (event) {
        case E::kPeerActive:
          return {S::kPassive, A::kNone, "primary is active: passive"};
        case E::kPeerPassive:
          return {S::kActive, A::kNone, "primary deferred to this broker: active"};
        case E::kPeerPrimary:
          return {S::kBackup, A::kNone, ""};
        case E::kPeerBackup:
          return {S::kBackup, A::kStop, "both brokers are configured as backup"};
        case E::kClientRequest:
          return {S::kBackup, A::kRefuse, ""};
      }
      break;
    case S::kActive:
      switch (event) {
        case E::kPeerActive:
          if (f.peer_older || (!f.peer_newer && f.primary)) {
            return {S::kActive, A::kNone, ""};  // the peer is the one to stop
          }
          return {S::kActive, A::kStop, "dual active: the peer has the newer epoch"};
        case E::kPeerPrimary:
        case E::kPeerBackup:
        case E::kPeerPassive:
          return {S::kActive, A::kNone, ""};
        case E::kClientRequest:
          return {S::kActive, A::kServe, ""};
      }
      break;
    case S::kPassive:
      switch (event) {
        case E::kPeerPrimary:
        case E::kPeerBackup:
          if (!f.have_copy || f.peer_newer) return {S::kPassive, A::kNone, ""};  // it takes over
          return {S::kActive, A::kNone, "peer restarted: active"};
        case E::kPeerActive:
          return {S::kPassive, A::kNone, ""};
        case E::kPeerPassive:
          // Nobody serves: the one with the newer data takes over, the primary on a tie.
          if (f.have_copy && (f.peer_older || (!f.peer_newer && f.primary))) {
            return {S::kActive, A::kNone, "dual passive: this broker has the newer data, active"};
          }
          return {S::kPassive, A::kNone, ""};
        case E::kClientRequest:
          if (f.peer_expired && f.have_copy) {
            return {S::kActive, A::kServe, "peer silent: failover, active"};
          }
          return {S::kPassive, A::kRefuse, ""};
      }
      break;
  }
  return {state, A::kNone, ""};
}

std::string_view Name(BStarState state) {
  switch (state) {
    case S::kPrimary:
      return "primary";
    case S::kBackup:
      return "backup";
    case S::kActive:
      return "active";
    case S::kPassive:
      return "passive";
  }
  return "?";
}

std::string_view Name(BStarEvent event) {
  switch (event) {
    case E::kPeerPrimary:
      return "peer primary";
    case E::kPeerBackup:
      return "peer backup";
    case E::kPeerActive:
      return "peer active";
    case E::kPeerPassive:
      return "peer passive";
    case E::kClientRequest:
      return "client request";
  }
  return "?";
}

}  // namespace claw::broker
