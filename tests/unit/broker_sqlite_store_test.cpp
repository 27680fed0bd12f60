// SqliteJobStore against real SQLite files, each test in a fresh temporary directory: round trips,
// reopen, two instances on one file, migrations, and batches that must fail whole.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "broker/sqlite_store.hpp"
#include "tests/unit/temp_dir.hpp"

namespace claw::broker {
namespace {

using wire::JobState;

using testing::TempDir;

std::unique_ptr<SqliteJobStore> OpenStore(const std::string& path, SqliteOptions options = {}) {
  auto store = SqliteJobStore::Open(path, options);
  REQUIRE_MESSAGE(store.has_value(), store.error().message);
  return std::move(*store);
}

// A plain SQLite connection, for looking at the file the way an operator would.
struct RawDb {
  explicit RawDb(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close(db); }

  void Exec(const std::string& sql) {
    REQUIRE_MESSAGE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK,
                    sqlite3_errmsg(db));
  }
  std::string QueryText(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    std::string value = text == nullptr ? "NULL" : text;
    sqlite3_finalize(stmt);
    return value;
  }

  sqlite3* db = nullptr;
};

// A job with every field set to something distinct from the defaults.
Job MakeJob(Seq seq, JobState state = JobState::kQueued, std::string type = "resize") {
  Job job;
  job.seq = seq;
  job.type = std::move(type);
  job.payload = "payload-" + std::to_string(seq);
  job.priority = 7;
  job.state = state;
  job.timeout_ms = 30'000;
  job.max_attempts = 5;
  job.backoff_ms = 1'000;
  job.max_backoff_ms = 60'000;
  job.attempts = 2;
  job.created_at = 1'700'000'000'000 + static_cast<std::int64_t>(seq);
  job.updated_at = 1'700'000'000'500 + static_cast<std::int64_t>(seq);
  job.run_at = 1'700'000'001'000;
  job.worker = "w-" + std::to_string(seq);
  job.error = "boom " + std::to_string(seq);
  return job;
}

WriteBatch Inserts(const std::vector<Job>& jobs) {
  WriteBatch batch;
  for (const Job& job : jobs) batch.writes.push_back({.insert = true, .job = job});
  return batch;
}

void ApplyOk(JobStore& store, const WriteBatch& batch) {
  const Status status = store.Apply(batch);
  REQUIRE_MESSAGE(status.has_value(), status.error().message);
}

// Every stored job, newest first.
std::vector<Job> AllJobs(JobStore& store) {
  auto jobs = store.Scan(0, std::numeric_limits<std::uint32_t>::max());
  REQUIRE_MESSAGE(jobs.has_value(), jobs.error().message);
  std::reverse(jobs->begin(), jobs->end());
  return *jobs;
}

// What ForEachUnfinished hands over, in its order.
std::vector<Job> Unfinished(JobStore& store) {
  std::vector<Job> jobs;
  const Status status = store.ForEachUnfinished([&](Job&& job) { jobs.push_back(std::move(job)); });
  REQUIRE_MESSAGE(status.has_value(), status.error().message);
  return jobs;
}

std::vector<Seq> Seqs(const std::vector<Job>& jobs) {
  std::vector<Seq> seqs;
  for (const Job& job : jobs) seqs.push_back(job.seq);
  return seqs;
}

TEST_CASE("a new store has epoch 1, and the next open of the file gets 2") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  {
    auto store = OpenStore(path);
    auto epoch = store->NextEpoch();
    REQUIRE(epoch.has_value());
    CHECK(*epoch == 1);
  }
  auto store = OpenStore(path);
  auto epoch = store->NextEpoch();
  REQUIRE(epoch.has_value());
  CHECK(*epoch == 2);
}

TEST_CASE("an opened file is in WAL mode at the latest schema version") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  auto store = OpenStore(path);
  REQUIRE(SqliteJobStore::SchemaVersion() >= 1);
  RawDb raw(path);
  CHECK(raw.QueryText("PRAGMA user_version") == std::to_string(SqliteJobStore::SchemaVersion()));
  CHECK(raw.QueryText("PRAGMA journal_mode") == "wal");
}

TEST_CASE("a batch of inserts round-trips every field exactly") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));

  Job bare;  // every optional unset, no key, empty strings
  bare.seq = 1;
  bare.type = "t";

  Job full = MakeJob(2, JobState::kRunning);
  full.payload = std::string("\0bin\xff\x00tail", 10);
  full.key = "order-42";
  full.result = std::string("r\0s", 3);
  full.progress = wire::Progress{.percent = 40, .message = "halfway"};
  full.checkpoint = std::string("\x00\x01\x02", 3);
  full.timeout_ms = std::numeric_limits<std::uint64_t>::max();
  full.max_backoff_ms = std::numeric_limits<std::uint64_t>::max() - 1;
  full.created_at = -5;
  full.links.edit().group = 2;
  full.links.edit().follow_up = true;
  full.links.edit().after = {1, 3, std::numeric_limits<Seq>::max()};
  full.links.edit().after_policy = wire::DependencyPolicy::kAllSettled;
  full.links.edit().hash_key = "customer-9";
  full.links.edit().required = {{"gpu", "true"}, {"zone", "eu=1"}};
  full.links.edit().zone = "eu-1";
  full.links.edit().locality = wire::Locality::kSameZone;
  full.links.edit().max_rtt_ms = 25;

  Job empty_optionals = MakeJob(3, JobState::kSucceeded);
  empty_optionals.result = "";
  empty_optionals.checkpoint = "";
  empty_optionals.progress = wire::Progress{.percent = std::nullopt, .message = ""};

  Job percent_only = MakeJob(4, JobState::kDead);
  percent_only.progress = wire::Progress{.percent = 0, .message = ""};

  const std::vector<Job> jobs = {bare, full, empty_optionals, percent_only};
  ApplyOk(*store, Inserts(jobs));

  for (const Job& job : jobs) {
    CAPTURE(job.seq);
    auto got = store->Get(job.seq);
    REQUIRE(got.has_value());
    REQUIRE(got->has_value());
    CHECK(**got == job);
  }
  auto missing = store->Get(99);
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());
}

// A job whose every link is set, so that a round trip checks each insert-only column too.
Job LinkedJob(Seq seq) {
  Job job = MakeJob(seq);
  job.key = "key-" + std::to_string(seq);
  job.result = "result-" + std::to_string(seq);
  job.progress = wire::Progress{.percent = static_cast<std::uint32_t>(seq % 101), .message = "m"};
  job.checkpoint = "cp-" + std::to_string(seq);
  job.links.edit().group = seq;
  job.links.edit().after = {seq + 1000, seq + 2000};
  job.links.edit().after_policy = wire::DependencyPolicy::kAllSettled;
  job.links.edit().hash_key = "h-" + std::to_string(seq);
  job.links.edit().required = {{"gpu", "true"}, {"n", std::to_string(seq)}};
  job.links.edit().zone = "z-" + std::to_string(seq);
  job.links.edit().locality = wire::Locality::kCrossZone;
  job.links.edit().max_rtt_ms = seq;
  return job;
}

TEST_CASE("inserts that go in by the multi-row statement round-trip every field, between updates") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  constexpr Seq kRun = SqliteJobStore::kRowsPerInsert;
  // Runs of inserts longer and shorter than a statement's rows, split by an update, with bare
  // jobs and fully linked ones side by side.
  std::vector<Job> jobs;
  WriteBatch batch;
  for (Seq seq = 1; seq <= 3 * kRun + 5; ++seq) {
    Job job = seq % 2 == 0 ? LinkedJob(seq) : MakeJob(seq);
    batch.writes.push_back({.insert = true, .job = job});
    jobs.push_back(std::move(job));
    if (seq == kRun + 3) {
      jobs[1].state = JobState::kSucceeded;
      jobs[1].updated_at += 7;
      batch.writes.push_back({.insert = false, .job = jobs[1]});
    }
  }
  ApplyOk(*store, batch);
  std::vector<Job> newest_first(jobs.rbegin(), jobs.rend());
  CHECK(AllJobs(*store) == newest_first);
  auto keys = store->LoadKeys();
  REQUIRE(keys.has_value());
  CHECK(keys->size() == jobs.size() / 2);
}

TEST_CASE("a duplicate key among the rows of a multi-row insert fails the batch, naming its jobs") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  Job first = MakeJob(1);
  first.key = "dup";
  ApplyOk(*store, Inserts({first}));
  std::vector<Job> jobs;
  for (Seq seq = 2; seq < 2 + SqliteJobStore::kRowsPerInsert; ++seq) jobs.push_back(MakeJob(seq));
  jobs[5].key = "dup";
  const Status status = store->Apply(Inserts(jobs));
  REQUIRE_FALSE(status.has_value());
  CHECK(status.error().message.find("UNIQUE constraint failed") != std::string::npos);
  CHECK(status.error().message.find("insert of j-2 to j-" +
                                    std::to_string(1 + SqliteJobStore::kRowsPerInsert)) !=
        std::string::npos);
  CHECK(Seqs(AllJobs(*store)) == std::vector<Seq>{1});
}

TEST_CASE("the state column holds the protocol name and a job without a key has key NULL") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  auto store = OpenStore(path);
  ApplyOk(*store, Inserts({MakeJob(1, JobState::kScheduled)}));
  RawDb raw(path);
  CHECK(raw.QueryText("SELECT state FROM jobs WHERE seq = 1") == "scheduled");
  CHECK(raw.QueryText("SELECT key IS NULL FROM jobs WHERE seq = 1") == "1");
}

TEST_CASE(
    "a column the store cannot read back is an error naming the file, job, column and value") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"state = 'paused'", "job j-1 has unknown state 'paused'"},
      {"locality = 'nearby'", "job j-1 has unknown locality 'nearby'"},
      {"required_labels = 'gpu'", "job j-1 has a bad required_labels column"},
      {"after = '3,x'", "job j-1 has a bad after list '3,x'"},
      {"after_policy = 'some'", "job j-1 has unknown after_policy 'some'"},
  };
  for (const auto& [assignment, message] : cases) {
    CAPTURE(assignment);
    TempDir dir;
    const std::string path = dir.File("jobs.db");
    auto store = OpenStore(path);
    Job job = MakeJob(1);
    job.links.edit().after = {3};
    job.links.edit().after_policy = wire::DependencyPolicy::kAllSettled;
    job.links.edit().required = {{"gpu", "true"}};
    job.links.edit().locality = wire::Locality::kSameZone;
    ApplyOk(*store, Inserts({job}));
    RawDb(path).Exec("UPDATE jobs SET " + assignment + " WHERE seq = 1");
    const auto got = store->Get(1);
    REQUIRE_FALSE(got.has_value());
    CHECK(got.error().message == "sqlite store '" + path + "': " + message);
    if (assignment.starts_with("state")) {
      // No state's query finds the row; the count the broker takes first at startup refuses it.
      const auto counts = store->CountByState();
      REQUIRE_FALSE(counts.has_value());
      CHECK(counts.error().message == "sqlite store '" + path + "': unknown state 'paused'");
      continue;
    }
    const Status loaded = store->ForEachUnfinished([](Job&&) {});
    REQUIRE_FALSE(loaded.has_value());
    CHECK(loaded.error().message == "sqlite store '" + path + "': " + message);
  }
}

TEST_CASE(
    "an update batch changes the mutable columns but never payload, key, type or created_at") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  Job original = MakeJob(1, JobState::kRunning);
  original.key = "k1";
  ApplyOk(*store, Inserts({original}));

  Job changed = original;
  changed.state = JobState::kSucceeded;
  changed.attempts = 3;
  changed.error = "";
  changed.result = "done";
  changed.progress = wire::Progress{.percent = 100, .message = "finished"};
  changed.checkpoint = "cp";
  changed.updated_at = original.updated_at + 1000;
  changed.worker = "w-other";
  changed.priority = 1;
  changed.payload = "tampered";
  changed.key = "other-key";
  changed.type = "other-type";
  changed.created_at = 1;
  WriteBatch update;
  update.writes.push_back({.insert = false, .job = changed});
  ApplyOk(*store, update);

  Job expected = changed;
  expected.payload = original.payload;
  expected.key = original.key;
  expected.type = original.type;
  expected.created_at = original.created_at;
  auto got = store->Get(1);
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK(**got == expected);

  SUBCASE("and an update can clear the optional fields again") {
    Job cleared = expected;
    cleared.result.reset();
    cleared.progress.reset();
    cleared.checkpoint.reset();
    WriteBatch clear;
    clear.writes.push_back({.insert = false, .job = cleared});
    ApplyOk(*store, clear);
    auto again = store->Get(1);
    REQUIRE(again.has_value());
    REQUIRE(again->has_value());
    CHECK(**again == cleared);
  }
}

TEST_CASE("an insert and updates of the same job in one batch leave its last state") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  Job job = MakeJob(1, JobState::kQueued);
  WriteBatch batch;
  batch.writes.push_back({.insert = true, .job = job});
  job.state = JobState::kRunning;
  job.attempts = 1;
  batch.writes.push_back({.insert = false, .job = job});
  job.state = JobState::kSucceeded;
  job.result = "ok";
  batch.writes.push_back({.insert = false, .job = job});
  ApplyOk(*store, batch);
  CHECK(AllJobs(*store) == std::vector<Job>{job});
}

TEST_CASE(
    "ForEachUnfinished hands over only queued, scheduled, waiting and running jobs, in seq order") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  ApplyOk(*store, Inserts({
                      MakeJob(6, JobState::kRunning),
                      MakeJob(1, JobState::kSucceeded),
                      MakeJob(4, JobState::kQueued),
                      MakeJob(2, JobState::kScheduled),
                      MakeJob(3, JobState::kDead),
                      MakeJob(5, JobState::kCancelled),
                      MakeJob(7, JobState::kQueued),
                      MakeJob(8, JobState::kWaiting),
                  }));
  const auto unfinished = Unfinished(*store);
  CHECK(Seqs(unfinished) == std::vector<Seq>{2, 4, 6, 7, 8});
  CHECK(unfinished.front() == MakeJob(2, JobState::kScheduled));
  // The cursors are reset: a second pass sees the same.
  CHECK(Seqs(Unfinished(*store)) == std::vector<Seq>{2, 4, 6, 7, 8});
}

TEST_CASE("CountByState reports every state, zero for those with no job") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  auto empty = store->CountByState();
  REQUIRE(empty.has_value());
  CHECK(empty->size() == wire::kJobStates.size());
  for (const auto& [state, count] : *empty) CHECK(count == 0);

  ApplyOk(*store, Inserts({
                      MakeJob(1, JobState::kQueued),
                      MakeJob(2, JobState::kQueued),
                      MakeJob(3, JobState::kScheduled),
                      MakeJob(4, JobState::kRunning),
                      MakeJob(5, JobState::kSucceeded),
                      MakeJob(6, JobState::kSucceeded),
                      MakeJob(7, JobState::kSucceeded),
                      MakeJob(8, JobState::kDead),
                  }));
  auto counts = store->CountByState();
  REQUIRE(counts.has_value());
  const std::map<JobState, std::uint64_t> expected = {
      {JobState::kQueued, 2},    {JobState::kScheduled, 1}, {JobState::kRunning, 1},
      {JobState::kSucceeded, 3}, {JobState::kDead, 1},      {JobState::kCancelled, 0},
      {JobState::kWaiting, 0},
  };
  CHECK(*counts == expected);
}

TEST_CASE(
    "ListFinished lists finished jobs only, by state and type, newest first, up to the limit") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  ApplyOk(*store, Inserts({
                      MakeJob(1, JobState::kSucceeded, "email"),
                      MakeJob(2, JobState::kQueued, "resize"),
                      MakeJob(3, JobState::kSucceeded, "resize"),
                      MakeJob(4, JobState::kCancelled, "email"),
                      MakeJob(5, JobState::kDead, "email"),
                      MakeJob(6, JobState::kSucceeded, "resize"),
                      MakeJob(7, JobState::kRunning, "email"),
                  }));
  const auto list = [&](ListFilter filter) {
    auto jobs = store->ListFinished(filter);
    REQUIRE_MESSAGE(jobs.has_value(), jobs.error().message);
    return Seqs(*jobs);
  };
  // The three finished states merged, newest first.
  CHECK(list({}) == std::vector<Seq>{6, 5, 4, 3, 1});
  CHECK(list({.limit = 2}) == std::vector<Seq>{6, 5});
  CHECK(list({.limit = 0}).empty());
  CHECK(list({.state = JobState::kSucceeded}) == std::vector<Seq>{6, 3, 1});
  CHECK(list({.type = "email"}) == std::vector<Seq>{5, 4, 1});
  CHECK(list({.type = "email", .limit = 1}) == std::vector<Seq>{5});
  CHECK(list({.state = JobState::kSucceeded, .type = "email"}) == std::vector<Seq>{1});
  CHECK(list({.state = JobState::kSucceeded, .type = "resize", .limit = 1}) == std::vector<Seq>{6});
  CHECK(list({.state = JobState::kCancelled}) == std::vector<Seq>{4});
  CHECK(list({.type = "nope"}).empty());
  // Unfinished jobs live in the broker's memory, not in these lists.
  CHECK(list({.state = JobState::kQueued}).empty());
  CHECK(list({.state = JobState::kRunning, .type = "email"}).empty());
  // A job that finishes joins its type's list.
  Job done = MakeJob(7, JobState::kDead, "email");
  ApplyOk(*store, WriteBatch{{{.insert = false, .job = done}}});
  CHECK(list({.type = "email"}) == std::vector<Seq>{7, 5, 4, 1});
}

TEST_CASE("a duplicate key fails the whole batch and leaves earlier data intact") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  auto store = OpenStore(path);
  Job first = MakeJob(1);
  first.key = "dup";
  ApplyOk(*store, Inserts({first, MakeJob(2)}));
  const std::vector<Job> before = AllJobs(*store);

  Job fresh = MakeJob(3);
  fresh.key = "new-key";
  Job clash = MakeJob(4);
  clash.key = "dup";
  WriteBatch batch = Inserts({fresh, clash});
  Job updated = MakeJob(2, JobState::kSucceeded);
  batch.writes.push_back({.insert = false, .job = updated});
  const Status status = store->Apply(batch);
  REQUIRE_FALSE(status.has_value());
  CHECK(status.error().message.find("UNIQUE constraint failed") != std::string::npos);
  CHECK(status.error().message.find("j-4") != std::string::npos);

  CHECK(AllJobs(*store) == before);
  auto keys = store->LoadKeys();
  REQUIRE(keys.has_value());
  CHECK(*keys == std::vector<std::pair<std::string, Seq>>{{"dup", 1}});
  auto max_seq = store->MaxSeq();
  REQUIRE(max_seq.has_value());
  CHECK(*max_seq == 2);

  // And the file itself, read by a fresh instance, holds the same.
  store.reset();
  auto reopened = OpenStore(path);
  CHECK(AllJobs(*reopened) == before);

  SUBCASE("and the store keeps working after the failed batch") {
    ApplyOk(*reopened, Inserts({fresh}));
    CHECK(Seqs(AllJobs(*reopened)) == std::vector<Seq>{3, 2, 1});
  }
}

TEST_CASE("a batch whose insert violates a constraint leaves nothing behind, not even its update") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  ApplyOk(*store, Inserts({MakeJob(1)}));

  // Job 2 is new and fine; job 1 is inserted a second time (its seq is taken), then updated.
  WriteBatch batch = Inserts({MakeJob(2), MakeJob(1, JobState::kRunning)});
  batch.writes.push_back({.insert = false, .job = MakeJob(1, JobState::kSucceeded)});
  const Status status = store->Apply(batch);
  REQUIRE_FALSE(status.has_value());
  CHECK(status.error().message.find("j-1") != std::string::npos);
  CHECK(AllJobs(*store) == std::vector<Job>{MakeJob(1)});
}

TEST_CASE("an update of a job that was never inserted fails the batch") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  WriteBatch batch = Inserts({MakeJob(1)});
  batch.writes.push_back({.insert = false, .job = MakeJob(9, JobState::kRunning)});
  const Status status = store->Apply(batch);
  REQUIRE_FALSE(status.has_value());
  CHECK(status.error().message.find("j-9") != std::string::npos);
  CHECK(AllJobs(*store).empty());
}

TEST_CASE("an empty batch succeeds without touching the database") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  auto store = OpenStore(path);
  // Another connection holds the write lock: any write would wait kBusyTimeoutMs, then fail.
  RawDb raw(path);
  raw.Exec("BEGIN IMMEDIATE");
  CHECK(store->Apply(WriteBatch{}).has_value());
  raw.Exec("ROLLBACK");
  CHECK(AllJobs(*store).empty());
}

TEST_CASE("reopening the file sees everything committed before close") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  Job keyed = MakeJob(2, JobState::kRunning);
  keyed.key = "k";
  keyed.checkpoint = "cp";
  const std::vector<Job> jobs = {MakeJob(1, JobState::kSucceeded), keyed, MakeJob(3)};
  {
    auto store = OpenStore(path);
    ApplyOk(*store, Inserts(jobs));
  }
  auto store = OpenStore(path);
  CHECK(AllJobs(*store) == std::vector<Job>{jobs[2], jobs[1], jobs[0]});
  CHECK(Seqs(Unfinished(*store)) == std::vector<Seq>{2, 3});
}

TEST_CASE("a second instance on the same file sees the first instance's committed writes") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  auto writer = OpenStore(path);
  auto reader = OpenStore(path);

  ApplyOk(*writer, Inserts({MakeJob(1)}));
  auto got = reader->Get(1);
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK(**got == MakeJob(1));
  CHECK(Seqs(AllJobs(*reader)) == std::vector<Seq>{1});

  // After the reader has read, it must not be stuck on an old snapshot.
  WriteBatch update;
  update.writes.push_back({.insert = false, .job = MakeJob(1, JobState::kSucceeded)});
  ApplyOk(*writer, update);
  ApplyOk(*writer, Inserts({MakeJob(2)}));
  got = reader->Get(1);
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((*got)->state == JobState::kSucceeded);
  auto max_seq = reader->MaxSeq();
  REQUIRE(max_seq.has_value());
  CHECK(*max_seq == 2);
  auto counts = reader->CountByState();
  REQUIRE(counts.has_value());
  CHECK(counts->at(JobState::kQueued) == 1);

  // Either instance may write; the epoch is shared.
  ApplyOk(*reader, Inserts({MakeJob(3)}));
  CHECK(Seqs(AllJobs(*writer)) == std::vector<Seq>{3, 2, 1});
  CHECK(writer->NextEpoch() == 1);
  CHECK(reader->NextEpoch() == 2);
}

TEST_CASE("synchronous accepts FULL, NORMAL and OFF, and a bogus value is an error naming it") {
  TempDir dir;
  for (const char* mode : {"FULL", "NORMAL", "OFF"}) {
    CAPTURE(mode);
    auto store = SqliteJobStore::Open(dir.File("jobs.db"), {.synchronous = mode});
    CHECK(store.has_value());
  }
  auto bogus = SqliteJobStore::Open(dir.File("jobs.db"), {.synchronous = "BOGUS"});
  REQUIRE_FALSE(bogus.has_value());
  CHECK(bogus.error().message.find("BOGUS") != std::string::npos);
}

TEST_CASE("a file created by a newer Claw is refused and left unchanged") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  const std::string newer = std::to_string(SqliteJobStore::SchemaVersion() + 1);
  {
    RawDb raw(path);
    raw.Exec("PRAGMA user_version=" + newer);
  }
  auto store = SqliteJobStore::Open(path, {});
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().message.find("newer Claw") != std::string::npos);
  RawDb raw(path);
  CHECK(raw.QueryText("PRAGMA user_version") == newer);
  CHECK(raw.QueryText("SELECT COUNT(*) FROM sqlite_master") == "0");
}

TEST_CASE("a file that is not a database is refused") {
  TempDir dir;
  const std::string path = dir.File("jobs.db");
  std::ofstream(path) << std::string(4096, 'x');
  auto store = SqliteJobStore::Open(path, {});
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().message.find(path) != std::string::npos);
}

TEST_CASE("MaxSeq is 0 on an empty store and then the highest seq stored") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  auto empty = store->MaxSeq();
  REQUIRE(empty.has_value());
  CHECK(*empty == 0);
  ApplyOk(*store, Inserts({MakeJob(3), MakeJob(10, JobState::kDead), MakeJob(7)}));
  auto max_seq = store->MaxSeq();
  REQUIRE(max_seq.has_value());
  CHECK(*max_seq == 10);
}

TEST_CASE("LoadKeys returns every key with its job, in seq order, skipping jobs without one") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  Job a = MakeJob(1, JobState::kSucceeded);
  a.key = "alpha";
  Job c = MakeJob(3);
  c.key = "gamma";
  ApplyOk(*store, Inserts({c, MakeJob(2), a}));
  auto keys = store->LoadKeys();
  REQUIRE(keys.has_value());
  CHECK(*keys == std::vector<std::pair<std::string, Seq>>{{"alpha", 1}, {"gamma", 3}});
}

TEST_CASE("migration 2 keeps every job of a version 1 file and still refuses a duplicate key") {
  TempDir dir;
  const std::string path = dir.File("claw.db");
  {
    // A file as schema version 1 left it.
    RawDb raw(path);
    raw.Exec(R"sql(
      PRAGMA journal_mode=WAL;
      CREATE TABLE jobs (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, payload BLOB NOT NULL,
        priority INTEGER NOT NULL, state TEXT NOT NULL, timeout_ms INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL, backoff_ms INTEGER NOT NULL,
        max_backoff_ms INTEGER NOT NULL, key TEXT UNIQUE, attempts INTEGER NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, run_at INTEGER NOT NULL,
        worker TEXT NOT NULL, error TEXT NOT NULL, result BLOB, progress_percent INTEGER,
        progress_message TEXT, checkpoint BLOB);
      CREATE INDEX jobs_state_seq ON jobs (state, seq);
      CREATE INDEX jobs_type_seq ON jobs (type, seq);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO jobs VALUES (1, 't', x'00', 5, 'queued', 1000, 3, 10, 100, 'k1', 0, 1, 2, 0,
        '', '', NULL, NULL, NULL, NULL);
      INSERT INTO jobs VALUES (2, 't', x'01', 5, 'succeeded', 1000, 3, 10, 100, NULL, 1, 1, 2, 0,
        'w', '', x'ff', 100, 'done', NULL);
      INSERT INTO meta VALUES ('epoch', 7);
      PRAGMA user_version=1;
    )sql");
  }
  auto store = OpenStore(path);
  CHECK(RawDb(path).QueryText("PRAGMA user_version") ==
        std::to_string(SqliteJobStore::SchemaVersion()));
  auto one = store->Get(1);
  REQUIRE(one.has_value());
  REQUIRE(one->has_value());
  CHECK((*one)->key == "k1");
  auto two = store->Get(2);
  REQUIRE(two->has_value());
  CHECK((*two)->state == JobState::kSucceeded);
  CHECK(*(*two)->result == std::string("\xff", 1));
  CHECK((*two)->progress->message == "done");
  CHECK(*store->Epoch() == 7);
  // Migration 5: the finished-jobs index without IN, still serving the retention query.
  const std::string finished =
      RawDb(path).QueryText("SELECT sql FROM sqlite_master WHERE name = 'jobs_finished'");
  CHECK(finished.find(" IN ") == std::string::npos);
  CHECK(finished.find("state = 'succeeded' OR state = 'dead' OR state = 'cancelled'") !=
        std::string::npos);
  // Migration 6: the type index holds finished jobs only, and listing by type uses it.
  CHECK(RawDb(path).QueryText("SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs_type_seq'") ==
        "0");
  auto by_type = store->ListFinished({.type = "t"});
  REQUIRE(by_type.has_value());
  CHECK(Seqs(*by_type) == std::vector<Seq>{2});
  auto expired = store->ListExpired(3, 10);
  REQUIRE(expired.has_value());
  REQUIRE(expired->size() == 1);
  CHECK(expired->at(0).seq == 2);
  Job dup = MakeJob(3);
  dup.key = "k1";
  CHECK(!store->Apply(WriteBatch{{{true, dup}}}).has_value());
  CHECK(store->Apply(WriteBatch{{{true, MakeJob(4)}, {true, MakeJob(5)}}}).has_value());
}

TEST_CASE("ListGroup returns a group's jobs in seq order and nothing else") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  std::vector<Job> jobs;
  for (Seq seq = 1; seq <= 6; ++seq) {
    Job job = MakeJob(seq);
    if (seq >= 2 && seq <= 4) job.links.edit().group = 2;
    jobs.push_back(job);
  }
  jobs[3].links.edit().follow_up = true;
  jobs[3].links.edit().after = {2, 3};
  ApplyOk(*store, Inserts(jobs));
  auto group = store->ListGroup(2);
  REQUIRE(group.has_value());
  CHECK(Seqs(*group) == std::vector<Seq>{2, 3, 4});
  CHECK(group->back().links.value().follow_up);
  CHECK(group->back().links.value().after == std::vector<Seq>{2, 3});
  auto none = store->ListGroup(5);
  REQUIRE(none.has_value());
  CHECK(none->empty());
}

TEST_CASE("ListExpired lists finished jobs older than the cutoff, oldest first, up to the limit") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  std::vector<Job> jobs = {
      MakeJob(1, JobState::kSucceeded), MakeJob(2, JobState::kDead),
      MakeJob(3, JobState::kCancelled), MakeJob(4, JobState::kQueued),
      MakeJob(5, JobState::kSucceeded), MakeJob(6, JobState::kRunning),
  };
  const std::array<std::int64_t, 6> updated = {300, 100, 200, 50, 5000, 60};
  for (std::size_t i = 0; i < jobs.size(); ++i) jobs[i].updated_at = updated[i];
  jobs[0].key = "k-1";
  ApplyOk(*store, Inserts(jobs));
  auto expired = store->ListExpired(1000, 10);
  REQUIRE(expired.has_value());
  std::vector<Seq> seqs;
  for (const auto& job : *expired) seqs.push_back(job.seq);
  CHECK(seqs == std::vector<Seq>{2, 3, 1});  // 4 and 6 are unfinished, 5 is too new
  CHECK(expired->back().key == "k-1");
  CHECK(expired->front().state == JobState::kDead);
  auto limited = store->ListExpired(1000, 2);
  REQUIRE(limited.has_value());
  CHECK(limited->size() == 2);
}

TEST_CASE("a remove write deletes the job in the same transaction as the rest of its batch") {
  TempDir dir;
  auto store = OpenStore(dir.File("jobs.db"));
  ApplyOk(*store, Inserts({MakeJob(1, JobState::kSucceeded), MakeJob(2)}));
  WriteBatch batch;
  batch.writes.push_back({.insert = true, .job = MakeJob(3)});
  batch.writes.push_back({.job = MakeJob(1), .remove = true});
  ApplyOk(*store, batch);
  CHECK_FALSE(store->Get(1)->has_value());
  CHECK(store->Get(3)->has_value());
  // A batch that fails later keeps the row its removal named.
  WriteBatch failing;
  failing.writes.push_back({.job = MakeJob(2), .remove = true});
  failing.writes.push_back({.insert = true, .job = MakeJob(3)});  // duplicate seq
  CHECK_FALSE(store->Apply(failing).has_value());
  CHECK(store->Get(2)->has_value());
}

}  // namespace
}  // namespace claw::broker
