// SqliteJobStore: schema, migrations, and the prepared statements behind each JobStore method.
//
// Apply is the broker's hot path: it binds each job into a statement prepared once in Open and
// resets it, so a batch costs no SQL parsing and no string building. Integers are stored as
// SQLite's signed 64-bit values; unsigned fields are cast there and back bit for bit.
#include "broker/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace claw::broker {
namespace {

// Migration N (1-based) brings a file from user_version N-1 to N. Append new steps; never edit
// a step that has shipped. Each runs in its own transaction with the user_version it sets.
constexpr std::array<const char*, 6> kMigrations = {
    // 1: jobs and meta. A job without a key has key NULL; result and checkpoint are NULL when
    // unset; progress_message is NULL when the job has no progress, and progress_percent is NULL
    // when it has none or its progress carries no percent.
    R"sql(
      CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        payload BLOB NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        timeout_ms INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        backoff_ms INTEGER NOT NULL,
        max_backoff_ms INTEGER NOT NULL,
        key TEXT UNIQUE,
        attempts INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        worker TEXT NOT NULL,
        error TEXT NOT NULL,
        result BLOB,
        progress_percent INTEGER,
        progress_message TEXT,
        checkpoint BLOB
      );
      CREATE INDEX jobs_state_seq ON jobs (state, seq);
      CREATE INDEX jobs_type_seq ON jobs (type, seq);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    )sql",
    // 2: the key's uniqueness as a partial index, so that the many jobs without a key cost no
    // index entry (the column constraint of 1 indexed every row). SQLite cannot drop a
    // constraint, so the table is rebuilt.
    R"sql(
      CREATE TABLE jobs_2 (
        seq INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        payload BLOB NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        timeout_ms INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        backoff_ms INTEGER NOT NULL,
        max_backoff_ms INTEGER NOT NULL,
        key TEXT,
        attempts INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        worker TEXT NOT NULL,
        error TEXT NOT NULL,
        result BLOB,
        progress_percent INTEGER,
        progress_message TEXT,
        checkpoint BLOB
      );
      INSERT INTO jobs_2 SELECT * FROM jobs;
      DROP TABLE jobs;
      ALTER TABLE jobs_2 RENAME TO jobs;
      CREATE UNIQUE INDEX jobs_key ON jobs (key) WHERE key IS NOT NULL;
      CREATE INDEX jobs_state_seq ON jobs (state, seq);
      CREATE INDEX jobs_type_seq ON jobs (type, seq);
    )sql",
    // 3: groups and dependencies (after: the seqs it waits for, comma-separated, NULL when
    // none; after_policy NULL when none), and the index the retention purge walks.
    R"sql(
      ALTER TABLE jobs ADD COLUMN group_seq INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN follow_up INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN after TEXT;
      ALTER TABLE jobs ADD COLUMN after_policy TEXT;
      CREATE INDEX jobs_group ON jobs (group_seq, seq) WHERE group_seq != 0;
      CREATE INDEX jobs_finished ON jobs (updated_at)
        WHERE state IN ('succeeded', 'dead', 'cancelled');
    )sql",
    // 4: routing and placement: the hash strategy's key, the labels a worker must have
    // ("key=value" lines), the preferred zone, the locality and the round-trip bound; NULL or 0
    // when the job has none.
    R"sql(
      ALTER TABLE jobs ADD COLUMN hash_key TEXT;
      ALTER TABLE jobs ADD COLUMN required_labels TEXT;
      ALTER TABLE jobs ADD COLUMN zone TEXT;
      ALTER TABLE jobs ADD COLUMN locality TEXT;
      ALTER TABLE jobs ADD COLUMN max_rtt_ms INTEGER NOT NULL DEFAULT 0;
    )sql",
    // 5: jobs_finished's condition as comparisons. Every insert and update evaluates a partial
    // index's condition, and SQLite runs an IN over three values by building a temporary table:
    // that cost a third of the store's time per new job (claw-bench --workload store: 4.9 ->
    // 3.4 us of CPU per row).
    R"sql(
      DROP INDEX jobs_finished;
      CREATE INDEX jobs_finished ON jobs (updated_at)
        WHERE state = 'succeeded' OR state = 'dead' OR state = 'cancelled';
    )sql",
    // 6: the type index holds finished jobs only. Listing needs the store only for those (the
    // broker holds every unfinished job in memory), and a new job no longer pays for an entry:
    // claw-bench --workload store under callgrind, 28.0k -> 22.5k instructions per row.
    R"sql(
      DROP INDEX jobs_type_seq;
      CREATE INDEX jobs_finished_type ON jobs (type, seq)
        WHERE state = 'succeeded' OR state = 'dead' OR state = 'cancelled';
    )sql",
};

// Parameter numbers of the job columns in the insert and update statements; a SELECT of
// kJobColumns returns column N at index N - 1. The update statement leaves the immutable
// columns' numbers unused, which lets one BindJob serve both statements.
enum Column : int {
  kSeq = 1,
  kType,
  kPayload,
  kPriority,
  kState,
  kTimeoutMs,
  kMaxAttempts,
  kBackoffMs,
  kMaxBackoffMs,
  kKey,
  kAttempts,
  kCreatedAt,
  kUpdatedAt,
  kRunAt,
  kWorker,
  kError,
  kResult,
  kProgressPercent,
  kProgressMessage,
  kCheckpoint,
  kGroupSeq,
  kFollowUp,
  kAfter,
  kAfterPolicy,
  kHashKey,
  kRequiredLabels,
  kZone,
  kLocality,
  kMaxRttMs,
};

// The job columns in Column order, for the SELECTs that ReadJob reads.
constexpr std::string_view kJobColumns =
    "seq, type, payload, priority, state, timeout_ms, max_attempts, backoff_ms, max_backoff_ms, "
    "key, attempts, created_at, updated_at, run_at, worker, error, result, progress_percent, "
    "progress_message, checkpoint, group_seq, follow_up, after, after_policy, hash_key, "
    "required_labels, zone, locality, max_rtt_ms";

constexpr int kColumns = kMaxRttMs;

// The insert of `rows` jobs (1, or SqliteJobStore::kRowsPerInsert): row N's columns are parameters
// N * kColumns + 1 on, in Column order.
std::string InsertSql(int rows) {
  std::string sql = "INSERT INTO jobs (" + std::string(kJobColumns) + ") VALUES ";
  for (int row = 0; row < rows; ++row) {
    sql += row == 0 ? "(" : ", (";
    for (int column = 1; column <= kColumns; ++column) {
      sql += (column == 1 ? "?" : ", ?") + std::to_string(row * kColumns + column);
    }
    sql += ")";
  }
  return sql;
}
constexpr std::string_view kUpdateSql =
    "UPDATE jobs SET priority = ?4, state = ?5, timeout_ms = ?6, max_attempts = ?7, "
    "backoff_ms = ?8, max_backoff_ms = ?9, attempts = ?11, updated_at = ?13, run_at = ?14, "
    "worker = ?15, error = ?16, result = ?17, progress_percent = ?18, progress_message = ?19, "
    "checkpoint = ?20 WHERE seq = ?1";
// Appended to "SELECT <kJobColumns> FROM jobs".
constexpr std::string_view kGetWhere = " WHERE seq = ?1";
// One state at a time: the index (state, seq) then yields rows in seq order, where an IN over
// the four states would sort every unfinished row (payloads included) in a temporary b-tree.
constexpr std::string_view kLoadUnfinishedWhere = " WHERE state = ?1 ORDER BY seq";
constexpr std::string_view kListGroupWhere = " WHERE group_seq = ?1 ORDER BY seq";
// Through the partial index jobs_finished, named so that the planner cannot pick the (state,
// seq) index and sort; its condition must be repeated here for SQLite to accept the index.
constexpr std::string_view kListExpiredSql =
    "SELECT seq, state, key FROM jobs INDEXED BY jobs_finished "
    "WHERE (state = 'succeeded' OR state = 'dead' OR state = 'cancelled') "
    "AND updated_at < ?1 ORDER BY updated_at LIMIT ?2";
constexpr std::string_view kDeleteSql = "DELETE FROM jobs WHERE seq = ?1";
// Finished jobs of one state through the index (state, seq); of one type (and perhaps one state)
// through the partial index jobs_finished_type, whose condition must be repeated.
constexpr std::string_view kListByStateWhere = " WHERE state = ?2 ORDER BY seq DESC LIMIT ?1";
constexpr std::string_view kListByTypeWhere =
    " INDEXED BY jobs_finished_type WHERE type = ?3 "
    "AND (state = 'succeeded' OR state = 'dead' OR state = 'cancelled') "
    "AND (?2 IS NULL OR state = ?2) ORDER BY seq DESC LIMIT ?1";
constexpr std::string_view kLoadKeysSql =
    "SELECT key, seq FROM jobs WHERE key IS NOT NULL ORDER BY seq";
constexpr std::string_view kCountByStateSql = "SELECT state, COUNT(*) FROM jobs GROUP BY state";
constexpr std::string_view kMaxSeqSql = "SELECT COALESCE(MAX(seq), 0) FROM jobs";
constexpr std::string_view kScanWhere = " WHERE seq > ?1 ORDER BY seq LIMIT ?2";
constexpr std::string_view kDeleteAllSql = "DELETE FROM jobs";
constexpr std::string_view kEpochSql =
    "SELECT COALESCE((SELECT value FROM meta WHERE key = 'epoch'), 0)";
constexpr std::string_view kSetEpochSql =
    "INSERT INTO meta (key, value) VALUES ('epoch', ?1) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
constexpr std::string_view kNextEpochSql =
    "INSERT INTO meta (key, value) VALUES ('epoch', 1) "
    "ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value";

constexpr std::array<std::string_view, 3> kSynchronousModes = {"FULL", "NORMAL", "OFF"};

// Leaves a reused statement ready for its next use, however the use ends. A statement left
// mid-step would keep its read snapshot open and hide other instances' commits.
class ScopedReset {
 public:
  explicit ScopedReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;
  ~ScopedReset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt* stmt_;
};

std::int64_t ToSql(std::uint64_t value) { return static_cast<std::int64_t>(value); }

// "gpu=true\nzone=eu-1" for the required_labels column. The Core refuses labels holding a
// newline, and keys holding '='.
std::string JoinLabels(const wire::Labels& labels) {
  std::string text;
  for (const auto& [key, value] : labels) {
    if (!text.empty()) text += '\n';
    text += key + "=" + value;
  }
  return text;
}

std::optional<wire::Labels> SplitLabels(std::string_view text) {
  wire::Labels labels;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) return std::nullopt;
    labels.emplace(std::string(line.substr(0, equals)), std::string(line.substr(equals + 1)));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return labels;
}

// "3,17,42" for the after column.
std::string JoinSeqs(const std::vector<Seq>& seqs) {
  std::string text;
  for (const Seq seq : seqs) {
    if (!text.empty()) text += ',';
    text += std::to_string(seq);
  }
  return text;
}

std::optional<std::vector<Seq>> SplitSeqs(std::string_view text) {
  std::vector<Seq> seqs;
  while (!text.empty()) {
    const std::size_t comma = std::min(text.find(','), text.size());
    Seq seq = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + comma, seq);
    if (ec != std::errc() || end != text.data() + comma) return std::nullopt;
    seqs.push_back(seq);
    text.remove_prefix(std::min(comma + 1, text.size()));
  }
  return seqs;
}

// The first failure of a run of binds, or SQLITE_OK.
int FirstError(std::initializer_list<int> codes) {
  for (const int code : codes) {
    if (code != SQLITE_OK) return code;
  }
  return SQLITE_OK;
}

int BindText(sqlite3_stmt* stmt, int column, std::string_view text) {
  return sqlite3_bind_text64(stmt, column, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

// Binds bytes as a BLOB; an empty string stays an empty BLOB, not NULL.
int BindBlob(sqlite3_stmt* stmt, int column, const std::string& bytes) {
  return sqlite3_bind_blob64(stmt, column, bytes.data(), bytes.size(), SQLITE_STATIC);
}

int BindOptionalBlob(sqlite3_stmt* stmt, int column, const wire::OptionalBox<std::string>& bytes) {
  return bytes ? BindBlob(stmt, column, *bytes) : sqlite3_bind_null(stmt, column);
}

// Binds every column of `job` that the update statement has too, as the parameters from `base`
// + 1 on (a multi-row insert's row N has base N * kColumns); the bound memory must outlive the
// statement's use.
int BindJob(sqlite3_stmt* stmt, const Job& job, int base = 0) {
  const wire::OptionalBox<wire::Progress>& progress = job.progress;
  const auto col = [base](Column column) { return base + column; };
  return FirstError({
      sqlite3_bind_int64(stmt, col(kSeq), ToSql(job.seq)),
      BindText(stmt, col(kType), job.type),
      BindBlob(stmt, col(kPayload), job.payload),
      sqlite3_bind_int64(stmt, col(kPriority), job.priority),
      BindText(stmt, col(kState), wire::Name(job.state)),
      sqlite3_bind_int64(stmt, col(kTimeoutMs), ToSql(job.timeout_ms)),
      sqlite3_bind_int64(stmt, col(kMaxAttempts), job.max_attempts),
      sqlite3_bind_int64(stmt, col(kBackoffMs), ToSql(job.backoff_ms)),
      sqlite3_bind_int64(stmt, col(kMaxBackoffMs), ToSql(job.max_backoff_ms)),
      job.key.empty() ? sqlite3_bind_null(stmt, col(kKey)) : BindText(stmt, col(kKey), job.key),
      sqlite3_bind_int64(stmt, col(kAttempts), job.attempts),
      sqlite3_bind_int64(stmt, col(kCreatedAt), job.created_at),
      sqlite3_bind_int64(stmt, col(kUpdatedAt), job.updated_at),
      sqlite3_bind_int64(stmt, col(kRunAt), job.run_at),
      BindText(stmt, col(kWorker), job.worker),
      BindText(stmt, col(kError), job.error),
      BindOptionalBlob(stmt, col(kResult), job.result),
      progress && progress->percent
          ? sqlite3_bind_int64(stmt, col(kProgressPercent), *progress->percent)
          : sqlite3_bind_null(stmt, col(kProgressPercent)),
      progress ? BindText(stmt, col(kProgressMessage), progress->message)
               : sqlite3_bind_null(stmt, col(kProgressMessage)),
      BindOptionalBlob(stmt, col(kCheckpoint), job.checkpoint),
  });
}

// Binds the columns only an insert writes: they never change. `after` and `labels` are
// job.after and job.required joined.
int BindInsertOnly(sqlite3_stmt* stmt, const Job& job, const std::string& after,
                   const std::string& labels, int base = 0) {
  const wire::JobLinks& links = job.links.value();
  const auto col = [base](Column column) { return base + column; };
  return FirstError({
      sqlite3_bind_int64(stmt, col(kGroupSeq), ToSql(links.group)),
      sqlite3_bind_int(stmt, col(kFollowUp), links.follow_up ? 1 : 0),
      links.after.empty() ? sqlite3_bind_null(stmt, col(kAfter))
                          : BindText(stmt, col(kAfter), after),
      links.after.empty() ? sqlite3_bind_null(stmt, col(kAfterPolicy))
                          : BindText(stmt, col(kAfterPolicy), wire::Name(links.after_policy)),
      links.hash_key.empty() ? sqlite3_bind_null(stmt, col(kHashKey))
                             : BindText(stmt, col(kHashKey), links.hash_key),
      links.required.empty() ? sqlite3_bind_null(stmt, col(kRequiredLabels))
                             : BindText(stmt, col(kRequiredLabels), labels),
      links.zone.empty() ? sqlite3_bind_null(stmt, col(kZone))
                         : BindText(stmt, col(kZone), links.zone),
      links.locality ? BindText(stmt, col(kLocality), wire::Name(*links.locality))
                     : sqlite3_bind_null(stmt, col(kLocality)),
      sqlite3_bind_int64(stmt, col(kMaxRttMs), links.max_rtt_ms),
  });
}

// Result column index of a job column in a SELECT of kJobColumns.
int Index(Column column) { return column - 1; }

bool IsNull(sqlite3_stmt* stmt, int index) {
  return sqlite3_column_type(stmt, index) == SQLITE_NULL;
}

std::string ColumnText(sqlite3_stmt* stmt, int index) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, index));
  const int size = sqlite3_column_bytes(stmt, index);
  return text == nullptr ? std::string() : std::string(text, static_cast<std::size_t>(size));
}

std::string ColumnBlob(sqlite3_stmt* stmt, int index) {
  const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt, index));
  const int size = sqlite3_column_bytes(stmt, index);
  return bytes == nullptr ? std::string() : std::string(bytes, static_cast<std::size_t>(size));
}

std::optional<std::string> ColumnOptionalBlob(sqlite3_stmt* stmt, int index) {
  if (IsNull(stmt, index)) return std::nullopt;
  return ColumnBlob(stmt, index);
}

// The job in the current row of a SELECT of kJobColumns.
Result<Job> ReadJob(sqlite3_stmt* stmt) {
  const auto integer = [stmt](Column column) { return sqlite3_column_int64(stmt, Index(column)); };
  const auto text = [stmt](Column column) { return ColumnText(stmt, Index(column)); };
  Job job;
  job.seq = static_cast<Seq>(integer(kSeq));
  const std::string state = text(kState);
  const std::optional<wire::JobState> parsed = wire::ParseJobState(state);
  if (!parsed) return Fail("job " + FormatJobId(job.seq) + " has unknown state '" + state + "'");
  job.state = *parsed;
  job.type = text(kType);
  job.payload = ColumnBlob(stmt, Index(kPayload));
  job.priority = static_cast<std::uint32_t>(integer(kPriority));
  job.timeout_ms = static_cast<std::uint64_t>(integer(kTimeoutMs));
  job.max_attempts = static_cast<std::uint32_t>(integer(kMaxAttempts));
  job.backoff_ms = static_cast<std::uint64_t>(integer(kBackoffMs));
  job.max_backoff_ms = static_cast<std::uint64_t>(integer(kMaxBackoffMs));
  job.key = text(kKey);
  job.attempts = static_cast<std::uint32_t>(integer(kAttempts));
  job.created_at = integer(kCreatedAt);
  job.updated_at = integer(kUpdatedAt);
  job.run_at = integer(kRunAt);
  job.worker = text(kWorker);
  job.error = text(kError);
  job.result = ColumnOptionalBlob(stmt, Index(kResult));
  if (!IsNull(stmt, Index(kProgressMessage))) {
    wire::Progress progress;
    progress.message = text(kProgressMessage);
    if (!IsNull(stmt, Index(kProgressPercent))) {
      progress.percent = static_cast<std::uint32_t>(integer(kProgressPercent));
    }
    job.progress = std::move(progress);
  }
  job.checkpoint = ColumnOptionalBlob(stmt, Index(kCheckpoint));
  wire::JobLinks links;
  links.group = static_cast<std::uint64_t>(integer(kGroupSeq));
  links.follow_up = integer(kFollowUp) != 0;
  links.hash_key = text(kHashKey);
  if (!IsNull(stmt, Index(kRequiredLabels))) {
    auto labels = SplitLabels(text(kRequiredLabels));
    if (!labels) return Fail("job " + FormatJobId(job.seq) + " has a bad required_labels column");
    links.required = std::move(*labels);
  }
  links.zone = text(kZone);
  if (!IsNull(stmt, Index(kLocality))) {
    const std::string locality = text(kLocality);
    links.locality = wire::ParseLocality(locality);
    if (!links.locality) {
      return Fail("job " + FormatJobId(job.seq) + " has unknown locality '" + locality + "'");
    }
  }
  links.max_rtt_ms = static_cast<std::uint32_t>(integer(kMaxRttMs));
  if (!IsNull(stmt, Index(kAfter))) {
    const std::string after = text(kAfter);
    auto seqs = SplitSeqs(after);
    if (!seqs) return Fail("job " + FormatJobId(job.seq) + " has a bad after list '" + after + "'");
    links.after = std::move(*seqs);
    const std::string policy = text(kAfterPolicy);
    const auto parsed_policy = wire::ParseDependencyPolicy(policy);
    if (!parsed_policy) {
      return Fail("job " + FormatJobId(job.seq) + " has unknown after_policy '" + policy + "'");
    }
    links.after_policy = *parsed_policy;
  }
  if (!(links == wire::JobLinks{})) job.links.edit() = std::move(links);
  return job;
}

}  // namespace

void SqliteJobStore::DbCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

void SqliteJobStore::StmtFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

int SqliteJobStore::SchemaVersion() { return static_cast<int>(kMigrations.size()); }

SqliteJobStore::SqliteJobStore(PrivateTag, std::string path, DbPtr db)
    : path_(std::move(path)), db_(std::move(db)) {}

SqliteJobStore::~SqliteJobStore() = default;

SqliteOptions SqliteOptions::ForDurability(std::string_view durability) {
  SqliteOptions options{.synchronous = std::string(durability)};
  for (char& c : options.synchronous) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return options;
}

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const std::string& path,
                                                             const SqliteOptions& options) {
  // SQLite counts every allocation under a global mutex unless told not to, and the broker never
  // reads those counts. This works only before SQLite initializes (at the first open).
  [[maybe_unused]] static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    const char* cause = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    return Fail("sqlite store '" + path + "': cannot open: " + cause);
  }
  auto store = std::make_unique<SqliteJobStore>(PrivateTag{}, path, std::move(db));
  if (Status status = store->Configure(options); !status) {
    return std::unexpected(std::move(status.error()));
  }
  return store;
}

Status SqliteJobStore::Configure(const SqliteOptions& options) {
  if (std::ranges::find(kSynchronousModes, options.synchronous) == kSynchronousModes.end()) {
    return Fail("sqlite store '" + path_ + "': synchronous must be FULL, NORMAL or OFF, not '" +
                options.synchronous + "'");
  }
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);
  // Refuse a newer file before changing anything in it.
  Result<std::int64_t> version = UserVersion();
  if (!version) return std::unexpected(std::move(version.error()));
  if (*version > SchemaVersion()) return NewerSchemaError(*version);

  Result<std::string> mode = JournalModeWal();
  if (!mode) return std::unexpected(std::move(mode.error()));
  if (*mode != "wal") {
    return Fail("sqlite store '" + path_ + "': journal_mode is '" + *mode + "', WAL is required");
  }
  const std::string synchronous = "PRAGMA synchronous=" + options.synchronous;
  if (Status status = Exec(synchronous.c_str(), "setting synchronous"); !status) return status;
  if (Status status = Exec("PRAGMA foreign_keys=OFF", "setting foreign_keys"); !status) {
    return status;
  }

  // Transaction control first: the migrations need it. The rest reads tables that the
  // migrations create.
  const std::array<std::pair<StmtPtr*, std::string_view>, 3> control = {{
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
  }};
  if (Status status = PrepareAll(control); !status) return status;
  if (Status status = Migrate(); !status) return status;

  const std::string select = "SELECT " + std::string(kJobColumns) + " FROM jobs";
  const std::string insert = InsertSql(1);
  const std::string insert_many = InsertSql(kRowsPerInsert);
  const std::string get = select + std::string(kGetWhere);
  const std::string load_unfinished = select + std::string(kLoadUnfinishedWhere);
  const std::string list_by_state = select + std::string(kListByStateWhere);
  const std::string list_by_type = select + std::string(kListByTypeWhere);
  const std::string scan = select + std::string(kScanWhere);
  const std::string list_group = select + std::string(kListGroupWhere);
  const auto statements = std::to_array<std::pair<StmtPtr*, std::string_view>>({
      {&list_group_, list_group},
      {&list_expired_, kListExpiredSql},
      {&delete_, kDeleteSql},
      {&scan_, scan},
      {&delete_all_, kDeleteAllSql},
      {&epoch_, kEpochSql},
      {&set_epoch_, kSetEpochSql},
      {&insert_, insert},
      {&insert_many_, insert_many},
      {&update_, kUpdateSql},
      {&get_, get},
      {&load_keys_, kLoadKeysSql},
      {&list_by_state_, list_by_state},
      {&list_by_type_, list_by_type},
      {&count_by_state_, kCountByStateSql},
      {&max_seq_, kMaxSeqSql},
      {&next_epoch_, kNextEpochSql},
  });
  if (Status status = PrepareAll(statements); !status) return status;
  for (StmtPtr& cursor : load_unfinished_) {
    Result<StmtPtr> prepared = Prepare(load_unfinished);
    if (!prepared) return std::unexpected(std::move(prepared.error()));
    cursor = std::move(*prepared);
  }
  return {};
}

Status SqliteJobStore::Migrate() {
  for (int version = 1; version <= SchemaVersion(); ++version) {
    const std::string what = "migration " + std::to_string(version);
    Status status = InTransaction(what, [&]() -> Status {
      // Read again under the write lock: another instance may have migrated meanwhile.
      Result<std::int64_t> current = UserVersion();
      if (!current) return std::unexpected(std::move(current.error()));
      if (*current > SchemaVersion()) return NewerSchemaError(*current);
      if (*current >= version) return {};
      if (Status step = Exec(kMigrations[version - 1], what); !step) return step;
      const std::string set_version = "PRAGMA user_version=" + std::to_string(version);
      return Exec(set_version.c_str(), what);
    });
    if (!status) return status;
  }
  return {};
}

template <std::size_t N>
Status SqliteJobStore::PrepareAll(
    const std::array<std::pair<StmtPtr*, std::string_view>, N>& list) {
  for (const auto& [stmt, sql] : list) {
    Result<StmtPtr> prepared = Prepare(sql);
    if (!prepared) return std::unexpected(std::move(prepared.error()));
    *stmt = std::move(*prepared);
  }
  return {};
}

Result<SqliteJobStore::StmtPtr> SqliteJobStore::Prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return SqlError("preparing \"" + std::string(sql) + "\"");
  return stmt;
}

Status SqliteJobStore::Exec(const char* sql, std::string_view what) {
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) return SqlError(what);
  return {};
}

Result<std::int64_t> SqliteJobStore::UserVersion() {
  Result<StmtPtr> stmt = Prepare("PRAGMA user_version");
  if (!stmt) return std::unexpected(std::move(stmt.error()));
  if (sqlite3_step(stmt->get()) != SQLITE_ROW) return SqlError("reading user_version");
  return sqlite3_column_int64(stmt->get(), 0);
}

Result<std::string> SqliteJobStore::JournalModeWal() {
  Result<StmtPtr> stmt = Prepare("PRAGMA journal_mode=WAL");
  if (!stmt) return std::unexpected(std::move(stmt.error()));
  if (sqlite3_step(stmt->get()) != SQLITE_ROW) return SqlError("setting journal_mode=WAL");
  return ColumnText(stmt->get(), 0);
}

std::unexpected<Error> SqliteJobStore::NewerSchemaError(std::int64_t version) const {
  return Fail("sqlite store '" + path_ + "': schema version " + std::to_string(version) +
              " was created by a newer Claw (this one knows up to " +
              std::to_string(SchemaVersion()) + ")");
}

template <typename Body>
Status SqliteJobStore::InTransaction(std::string_view what, Body&& body) {
  {
    ScopedReset reset(begin_.get());
    if (sqlite3_step(begin_.get()) != SQLITE_DONE) {
      return SqlError(std::string(what) + ": BEGIN IMMEDIATE");
    }
  }
  Status status = body();
  if (status) {
    ScopedReset reset(commit_.get());
    if (sqlite3_step(commit_.get()) != SQLITE_DONE) {
      status = SqlError(std::string(what) + ": COMMIT");
    }
  }
  // Some errors (a full disk, an I/O error) end the transaction themselves.
  if (!status && sqlite3_get_autocommit(db_.get()) == 0) {
    ScopedReset reset(rollback_.get());
    sqlite3_step(rollback_.get());
  }
  return status;
}

Status SqliteJobStore::Apply(const WriteBatch& batch) {
  if (batch.writes.empty()) return {};
  const auto& writes = batch.writes;
  return InTransaction("apply", [&]() -> Status {
    for (std::size_t i = 0; i < writes.size();) {
      const std::size_t run_end = std::min(writes.size(), i + kRowsPerInsert);
      if (run_end - i == kRowsPerInsert &&
          std::all_of(writes.begin() + i, writes.begin() + run_end,
                      [](const WriteBatch::Write& write) { return write.insert; })) {
        if (Status status = InsertMany(std::span(writes).subspan(i, kRowsPerInsert)); !status) {
          return status;
        }
        i = run_end;
        continue;
      }
      if (Status status = Write(writes[i]); !status) return status;
      ++i;
    }
    return {};
  });
}

Status SqliteJobStore::InsertMany(std::span<const WriteBatch::Write> writes) {
  sqlite3_stmt* stmt = insert_many_.get();
  ScopedReset reset(stmt);
  assert(writes.size() == kRowsPerInsert);
  std::array<std::string, kRowsPerInsert> after;
  std::array<std::string, kRowsPerInsert> labels;
  for (int row = 0; row < kRowsPerInsert; ++row) {
    const Job& job = writes[static_cast<std::size_t>(row)].job;
    const wire::JobLinks& links = job.links.value();
    after[row] = JoinSeqs(links.after);
    labels[row] = JoinLabels(links.required);
    const int base = row * kColumns;
    if (BindJob(stmt, job, base) != SQLITE_OK ||
        BindInsertOnly(stmt, job, after[row], labels[row], base) != SQLITE_OK) {
      return SqlError("insert of " + FormatJobId(job.seq));
    }
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return SqlError("insert of " + FormatJobId(writes.front().job.seq) + " to " +
                    FormatJobId(writes.back().job.seq));
  }
  return {};
}

Status SqliteJobStore::Write(const WriteBatch::Write& write) {
  if (write.remove) {
    ScopedReset reset(delete_.get());
    if (sqlite3_bind_int64(delete_.get(), 1, ToSql(write.job.seq)) != SQLITE_OK ||
        sqlite3_step(delete_.get()) != SQLITE_DONE) {
      return SqlError("delete of " + FormatJobId(write.job.seq));
    }
    return {};
  }
  sqlite3_stmt* stmt = write.insert ? insert_.get() : update_.get();
  const std::string_view action = write.insert ? "insert" : "update";
  ScopedReset reset(stmt);
  const wire::JobLinks& links = write.job.links.value();
  const std::string after = write.insert ? JoinSeqs(links.after) : std::string();
  const std::string labels = write.insert ? JoinLabels(links.required) : std::string();
  if (BindJob(stmt, write.job) != SQLITE_OK ||
      (write.insert && BindInsertOnly(stmt, write.job, after, labels) != SQLITE_OK) ||
      sqlite3_step(stmt) != SQLITE_DONE) {
    return SqlError(std::string(action) + " of " + FormatJobId(write.job.seq));
  }
  if (!write.insert && sqlite3_changes(db_.get()) == 0) {
    return Fail("sqlite store '" + path_ + "': update of " + FormatJobId(write.job.seq) +
                ": no such job");
  }
  return {};
}

Result<std::vector<Job>> SqliteJobStore::CollectJobs(sqlite3_stmt* stmt, std::string_view what) {
  std::vector<Job> jobs;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    Result<Job> job = ReadJob(stmt);
    if (!job) return Fail("sqlite store '" + path_ + "': " + job.error().message);
    jobs.push_back(std::move(*job));
  }
  if (rc != SQLITE_DONE) return SqlError(what);
  return jobs;
}

Status SqliteJobStore::ForEachUnfinished(const std::function<void(Job&&)>& visit) {
  // Each state's rows come in seq order from the index (state, seq); the cursors are merged by
  // seq, so no row is sorted or held beyond the one handed over.
  constexpr std::size_t n = wire::kUnfinishedStates.size();
  std::array<sqlite3_stmt*, n> cursors{};
  std::array<bool, n> on_row{};
  std::array<std::optional<ScopedReset>, n> resets;
  for (std::size_t i = 0; i < n; ++i) {
    cursors[i] = load_unfinished_[i].get();
    resets[i].emplace(cursors[i]);
  }
  const auto step = [&](std::size_t i) -> Status {
    const int rc = sqlite3_step(cursors[i]);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError("loading unfinished jobs");
    on_row[i] = rc == SQLITE_ROW;
    return {};
  };
  for (std::size_t i = 0; i < cursors.size(); ++i) {
    if (BindText(cursors[i], 1, wire::Name(wire::kUnfinishedStates[i])) != SQLITE_OK) {
      return SqlError("loading unfinished jobs");
    }
    if (Status status = step(i); !status) return status;
  }
  while (true) {
    std::optional<std::size_t> next;
    for (std::size_t i = 0; i < cursors.size(); ++i) {
      if (!on_row[i]) continue;
      if (!next || sqlite3_column_int64(cursors[i], Index(kSeq)) <
                       sqlite3_column_int64(cursors[*next], Index(kSeq))) {
        next = i;
      }
    }
    if (!next) return {};
    Result<Job> job = ReadJob(cursors[*next]);
    if (!job) return Fail("sqlite store '" + path_ + "': " + job.error().message);
    visit(std::move(*job));
    if (Status status = step(*next); !status) return status;
  }
}

Result<std::vector<std::pair<std::string, Seq>>> SqliteJobStore::LoadKeys() {
  sqlite3_stmt* stmt = load_keys_.get();
  ScopedReset reset(stmt);
  std::vector<std::pair<std::string, Seq>> keys;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    keys.emplace_back(ColumnText(stmt, 0), static_cast<Seq>(sqlite3_column_int64(stmt, 1)));
  }
  if (rc != SQLITE_DONE) return SqlError("loading keys");
  return keys;
}

Result<std::optional<Job>> SqliteJobStore::Get(Seq seq) {
  sqlite3_stmt* stmt = get_.get();
  ScopedReset reset(stmt);
  const std::string what = "reading " + FormatJobId(seq);
  if (sqlite3_bind_int64(stmt, 1, ToSql(seq)) != SQLITE_OK) return SqlError(what);
  Result<std::vector<Job>> jobs = CollectJobs(stmt, what);
  if (!jobs) return std::unexpected(std::move(jobs.error()));
  if (jobs->empty()) return std::optional<Job>();
  return std::optional<Job>(std::move(jobs->front()));
}

Result<std::vector<Job>> SqliteJobStore::ListFinished(const ListFilter& filter) {
  if (filter.state && !wire::IsFinal(*filter.state)) return std::vector<Job>{};
  const auto query = [&](std::optional<wire::JobState> state) -> Result<std::vector<Job>> {
    sqlite3_stmt* stmt = filter.type ? list_by_type_.get() : list_by_state_.get();
    ScopedReset reset(stmt);
    int rc = sqlite3_bind_int64(stmt, 1, filter.limit);
    if (rc == SQLITE_OK && state) rc = BindText(stmt, 2, wire::Name(*state));
    if (rc == SQLITE_OK && filter.type) rc = BindText(stmt, 3, *filter.type);
    if (rc != SQLITE_OK) return SqlError("listing jobs");
    return CollectJobs(stmt, "listing jobs");
  };
  if (filter.state || filter.type) return query(filter.state);
  // Every finished state: the newest of each, merged.
  std::vector<Job> jobs;
  for (const wire::JobState state :
       {wire::JobState::kSucceeded, wire::JobState::kDead, wire::JobState::kCancelled}) {
    auto some = query(state);
    if (!some) return some;
    std::move(some->begin(), some->end(), std::back_inserter(jobs));
  }
  std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.seq > b.seq; });
  if (jobs.size() > filter.limit) jobs.resize(filter.limit);
  return jobs;
}

Result<std::vector<Job>> SqliteJobStore::ListGroup(std::uint64_t group) {
  sqlite3_stmt* stmt = list_group_.get();
  ScopedReset reset(stmt);
  const std::string what = "listing group g-" + std::to_string(group);
  if (sqlite3_bind_int64(stmt, 1, ToSql(group)) != SQLITE_OK) return SqlError(what);
  return CollectJobs(stmt, what);
}

Result<std::vector<ExpiredJob>> SqliteJobStore::ListExpired(std::int64_t before_ms,
                                                            std::uint32_t limit) {
  sqlite3_stmt* stmt = list_expired_.get();
  ScopedReset reset(stmt);
  if (sqlite3_bind_int64(stmt, 1, before_ms) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 2, limit) != SQLITE_OK) {
    return SqlError("listing expired jobs");
  }
  std::vector<ExpiredJob> expired;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ExpiredJob job;
    job.seq = static_cast<Seq>(sqlite3_column_int64(stmt, 0));
    const std::string state = ColumnText(stmt, 1);
    const auto parsed = wire::ParseJobState(state);
    if (!parsed) return Fail("job " + FormatJobId(job.seq) + " has unknown state '" + state + "'");
    job.state = *parsed;
    job.key = ColumnText(stmt, 2);
    expired.push_back(std::move(job));
  }
  if (rc != SQLITE_DONE) return SqlError("listing expired jobs");
  return expired;
}

Result<std::map<wire::JobState, std::uint64_t>> SqliteJobStore::CountByState() {
  std::map<wire::JobState, std::uint64_t> counts;
  for (const auto& entry : wire::kJobStates) counts[entry.code] = 0;
  sqlite3_stmt* stmt = count_by_state_.get();
  ScopedReset reset(stmt);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const std::string name = ColumnText(stmt, 0);
    const std::optional<wire::JobState> state = wire::ParseJobState(name);
    if (!state) return Fail("sqlite store '" + path_ + "': unknown state '" + name + "'");
    counts[*state] = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1));
  }
  if (rc != SQLITE_DONE) return SqlError("counting jobs");
  return counts;
}

Result<Seq> SqliteJobStore::MaxSeq() {
  sqlite3_stmt* stmt = max_seq_.get();
  ScopedReset reset(stmt);
  if (sqlite3_step(stmt) != SQLITE_ROW) return SqlError("reading the highest seq");
  return static_cast<Seq>(sqlite3_column_int64(stmt, 0));
}

Result<std::vector<Job>> SqliteJobStore::Scan(Seq after, std::uint32_t limit) {
  sqlite3_stmt* stmt = scan_.get();
  ScopedReset reset(stmt);
  if (sqlite3_bind_int64(stmt, 1, ToSql(after)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 2, limit) != SQLITE_OK) {
    return SqlError("scanning jobs");
  }
  return CollectJobs(stmt, "scanning jobs");
}

Status SqliteJobStore::ReplaceAll(const std::vector<Job>& jobs, std::uint64_t epoch) {
  return InTransaction("replace all", [&]() -> Status {
    {
      ScopedReset reset(delete_all_.get());
      if (sqlite3_step(delete_all_.get()) != SQLITE_DONE) return SqlError("deleting every job");
    }
    for (const Job& job : jobs) {
      if (Status status = Write({.insert = true, .job = job}); !status) return status;
    }
    ScopedReset reset(set_epoch_.get());
    if (sqlite3_bind_int64(set_epoch_.get(), 1, static_cast<sqlite3_int64>(epoch)) != SQLITE_OK ||
        sqlite3_step(set_epoch_.get()) != SQLITE_DONE) {
      return SqlError("setting the epoch");
    }
    return {};
  });
}

Result<std::uint64_t> SqliteJobStore::Epoch() {
  sqlite3_stmt* stmt = epoch_.get();
  ScopedReset reset(stmt);
  if (sqlite3_step(stmt) != SQLITE_ROW) return SqlError("reading the epoch");
  return static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
}

Result<std::uint64_t> SqliteJobStore::NextEpoch() {
  std::uint64_t epoch = 0;
  Status status = InTransaction("next epoch", [&]() -> Status {
    sqlite3_stmt* stmt = next_epoch_.get();
    ScopedReset reset(stmt);
    if (sqlite3_step(stmt) != SQLITE_ROW) return SqlError("incrementing the epoch");
    epoch = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
    if (sqlite3_step(stmt) != SQLITE_DONE) return SqlError("incrementing the epoch");
    return {};
  });
  if (!status) return std::unexpected(std::move(status.error()));
  return epoch;
}

std::unexpected<Error> SqliteJobStore::SqlError(std::string_view what) const {
  return Fail("sqlite store '" + path_ + "': " + std::string(what) + ": " +
              sqlite3_errmsg(db_.get()));
}

}  // namespace claw::broker
