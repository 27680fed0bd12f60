// Durable storage of jobs behind a narrow interface. SqliteJobStore (broker/sqlite_store.hpp) is
// the implementation; the broker's store writer thread owns one instance for writing, and the
// broker loop owns another, opened on the same file, for the rare reads of jobs it no longer
// holds in memory (finished ones).
//
// Threads: an instance is used by one thread at a time.
// Errors: every method returns a value; a failed Apply leaves the file as it was before it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "broker/job.hpp"
#include "schema/result.hpp"

namespace claw::broker {

// One group commit: every write in it lands in one transaction, or none does.
struct WriteBatch {
  // insert: a new row with every column; remove: the row goes (only job.seq is read);
  // otherwise the new values of the mutable columns.
  // The same rows travel to the standby broker.
  using Write = wire::RecordWrite;
  std::vector<Write> writes;
};

struct ListFilter {
  std::optional<wire::JobState> state;
  std::optional<std::string> type;
  std::uint32_t limit = 100;
};

// A finished job due for purging: what the broker's counts and key index need to forget it.
struct ExpiredJob {
  Seq seq = 0;
  wire::JobState state = wire::JobState::kSucceeded;
  std::string key;  // empty: none
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  virtual Status Apply(const WriteBatch& batch) = 0;

  // Hands `visit` every job in state queued, scheduled, waiting or running, in seq order, one at
  // a time: a backlog of millions is never held twice.
  virtual Status ForEachUnfinished(const std::function<void(Job&&)>& visit) = 0;
  // Every idempotency key in the store, with its job.
  virtual Result<std::vector<std::pair<std::string, Seq>>> LoadKeys() = 0;
  virtual Result<std::optional<Job>> Get(Seq seq) = 0;
  // Finished jobs (succeeded, dead, cancelled) only, newest (highest seq) first: the broker holds
  // every unfinished job in memory. A filter on a state that is not final matches nothing.
  virtual Result<std::vector<Job>> ListFinished(const ListFilter& filter) = 0;
  // Every job of a group (members and follow-up), in seq order.
  virtual Result<std::vector<Job>> ListGroup(std::uint64_t group) = 0;
  // Up to `limit` finished jobs (succeeded, dead, cancelled) last updated before `before_ms`
  // (wall clock), oldest first.
  virtual Result<std::vector<ExpiredJob>> ListExpired(std::int64_t before_ms,
                                                      std::uint32_t limit) = 0;
  virtual Result<std::map<wire::JobState, std::uint64_t>> CountByState() = 0;
  // The highest seq ever stored, 0 when empty.
  virtual Result<Seq> MaxSeq() = 0;
  // Increments the persisted epoch and returns the new value (1 on a new store).
  virtual Result<std::uint64_t> NextEpoch() = 0;
  // The persisted epoch (0 on a new store).
  virtual Result<std::uint64_t> Epoch() = 0;

  // For the broker pair. Up to `limit` jobs with seq > `after`, in seq order (every state).
  virtual Result<std::vector<Job>> Scan(Seq after, std::uint32_t limit) = 0;
  // Makes the store hold exactly `jobs` and `epoch` (a standby taking the active's snapshot),
  // in one transaction.
  virtual Status ReplaceAll(const std::vector<Job>& jobs, std::uint64_t epoch) = 0;
};

}  // namespace claw::broker
