// SqliteJobStore: the JobStore kept in one SQLite file in WAL mode.
//
// Layout: table `jobs` holds one row per job with one column per field of Job (the state as its
// protocol name, so an operator can read the file with the sqlite3 shell); table `meta` holds the
// epoch. The schema is versioned with `PRAGMA user_version` and built by numbered migrations
// (see kMigrations in sqlite_store.cpp); a file written by a newer Claw is refused.
//
// Durability: each Apply is one `BEGIN IMMEDIATE` ... `COMMIT`. With synchronous=FULL a commit
// survives power loss; NORMAL survives a crash of the process but may lose the last commits on
// power loss; OFF leaves it to the operating system.
//
// Threads: an instance is used by one thread at a time. Several instances (in one process or
// several) may share a file: WAL lets one write while the others read, and writers wait up to
// kBusyTimeoutMs for each other. Every statement is prepared once in Open and reset after each
// use, so an idle instance holds no read snapshot and sees every commit made elsewhere.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/job_store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace claw::broker {

struct SqliteOptions {
  // PRAGMA synchronous: "FULL", "NORMAL" or "OFF".
  std::string synchronous = "FULL";

  // For the broker's durability setting: "full", "normal" or "off".
  static SqliteOptions ForDurability(std::string_view durability);
};

class SqliteJobStore final : public JobStore {
  struct PrivateTag {
    explicit PrivateTag() = default;
  };
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

 public:
  // How long a writer waits for another instance's write transaction before failing.
  static constexpr int kBusyTimeoutMs = 5000;
  // New jobs go in by this many to one statement where a batch has that many in a row: each
  // execution of a statement opens a cursor on the table and on each index, which costs as much
  // as a row's own work (claw-bench --workload store: 2.90 -> 2.25 us of CPU per row).
  static constexpr int kRowsPerInsert = 32;

  // Opens or creates the file at `path`, sets WAL mode and `options`, and migrates the schema to
  // SchemaVersion(). Fails on a bad option, a file that is not a database, a file from a newer
  // Claw, or any SQLite error; the message names the path and the cause.
  static Result<std::unique_ptr<SqliteJobStore>> Open(const std::string& path,
                                                      const SqliteOptions& options);
  // The number of the latest migration: the user_version of a file this code has opened.
  static int SchemaVersion();

  SqliteJobStore(PrivateTag, std::string path, DbPtr db);
  SqliteJobStore(const SqliteJobStore&) = delete;
  SqliteJobStore& operator=(const SqliteJobStore&) = delete;
  ~SqliteJobStore() override;

  // An insert that breaks a constraint (a seq or key already stored) and an update of a seq that
  // is not stored both fail the whole batch.
  Status Apply(const WriteBatch& batch) override;
  Status ForEachUnfinished(const std::function<void(Job&&)>& visit) override;
  Result<std::vector<std::pair<std::string, Seq>>> LoadKeys() override;
  Result<std::optional<Job>> Get(Seq seq) override;
  Result<std::vector<Job>> ListFinished(const ListFilter& filter) override;
  Result<std::vector<Job>> ListGroup(std::uint64_t group) override;
  Result<std::vector<ExpiredJob>> ListExpired(std::int64_t before_ms, std::uint32_t limit) override;
  Result<std::map<wire::JobState, std::uint64_t>> CountByState() override;
  Result<Seq> MaxSeq() override;
  Result<std::uint64_t> NextEpoch() override;
  Result<std::uint64_t> Epoch() override;
  Result<std::vector<Job>> Scan(Seq after, std::uint32_t limit) override;
  Status ReplaceAll(const std::vector<Job>& jobs, std::uint64_t epoch) override;

 private:
  Status Configure(const SqliteOptions& options);
  Status Migrate();
  template <std::size_t N>
  Status PrepareAll(const std::array<std::pair<StmtPtr*, std::string_view>, N>& list);
  Result<StmtPtr> Prepare(std::string_view sql);
  Status Exec(const char* sql, std::string_view what);
  Result<std::int64_t> UserVersion();
  // Sets WAL mode and returns the journal mode now in force.
  Result<std::string> JournalModeWal();
  std::unexpected<Error> NewerSchemaError(std::int64_t version) const;
  // Runs `body` between BEGIN IMMEDIATE and COMMIT; rolls back if either fails.
  template <typename Body>
  Status InTransaction(std::string_view what, Body&& body);
  Status Write(const WriteBatch::Write& write);
  // kRowsPerInsert inserts in one statement.
  Status InsertMany(std::span<const WriteBatch::Write> writes);
  Result<std::vector<Job>> CollectJobs(sqlite3_stmt* stmt, std::string_view what);
  // An error naming the store, `what` failed, and SQLite's message for the last call.
  std::unexpected<Error> SqlError(std::string_view what) const;

  std::string path_;
  DbPtr db_;  // declared before the statements, so it is closed after they are finalized
  StmtPtr begin_;
  StmtPtr commit_;
  StmtPtr rollback_;
  StmtPtr insert_;
  StmtPtr insert_many_;  // kRowsPerInsert rows
  StmtPtr update_;
  StmtPtr get_;
  // One cursor per unfinished state, merged by seq.
  std::array<StmtPtr, wire::kUnfinishedStates.size()> load_unfinished_;
  StmtPtr load_keys_;
  StmtPtr list_by_state_;
  StmtPtr list_by_type_;
  StmtPtr count_by_state_;
  StmtPtr max_seq_;
  StmtPtr next_epoch_;
  StmtPtr scan_;
  StmtPtr delete_all_;
  StmtPtr epoch_;
  StmtPtr set_epoch_;
  StmtPtr list_group_;
  StmtPtr list_expired_;
  StmtPtr delete_;
};

}  // namespace claw::broker
