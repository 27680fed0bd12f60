// claw-client's flags and subcommands. Parsing fills plain structs; each subcommand is a
// function of those structs, a Connection and the output streams. See cli.hpp for the flags.
#include "client/cli.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <expected>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client/connection.hpp"
#include "client/exit_codes.hpp"
#include "client/group_source.hpp"
#include "client/json_format.hpp"
#include "client/payload_arg.hpp"
#include "client/placement_arg.hpp"
#include "client/text_format.hpp"
#include "client/time_arg.hpp"
#include "schema/duration.hpp"
#include "schema/names.hpp"
#include "schema/transport.hpp"

namespace claw::client {
namespace {

using std::chrono::milliseconds;

constexpr const char* kDefaultBroker = "tcp://127.0.0.1:5555";
// How often `group wait` asks for the group's counts.
constexpr milliseconds kGroupPoll{300};

struct GlobalArgs {
  std::string broker = kDefaultBroker;
  std::string request_timeout = wire::FormatDuration(wire::defaults::kClientTimeoutMs);
  bool json = false;
};

// Where a job may run; `submit` and `group submit` (as the members' defaults) take the same flags.
struct PlacementArgs {
  std::optional<std::string> hash_key;
  std::vector<std::string> required;  // "key=value"
  std::optional<std::string> zone;
  std::optional<std::string> locality;
  std::optional<std::string> max_rtt;
};

struct SubmitArgs {
  std::string type;
  std::optional<std::string> payload;
  std::optional<std::string> priority;
  std::optional<std::string> timeout;
  std::optional<std::uint32_t> max_attempts;
  std::optional<std::string> backoff;
  std::optional<std::string> max_backoff;
  std::optional<std::string> key;
  std::optional<std::string> delay;
  std::optional<std::string> at;
  std::vector<std::string> after;
  std::optional<std::string> after_policy;
  PlacementArgs placement;
  bool wait = false;
  std::optional<std::string> wait_timeout;
};

struct GroupSubmitArgs {
  std::string source;
  std::optional<std::string> type;
  std::optional<std::string> priority;
  std::optional<std::string> timeout;
  std::optional<std::uint32_t> max_attempts;
  std::optional<std::string> backoff;
  std::optional<std::string> max_backoff;
  std::optional<std::string> then;
  std::optional<std::string> then_payload;
  std::vector<std::string> then_required;  // "key=value"
  std::string then_policy = std::string(wire::Name(wire::DependencyPolicy::kAllSettled));
  std::optional<std::string> key;
  PlacementArgs placement;
  bool wait = false;
  std::optional<std::string> wait_timeout;
};

struct DrainArgs {
  std::string worker;
  bool undo = false;
};

struct ListArgs {
  std::optional<std::string> state;
  std::optional<std::string> type;
  std::optional<std::uint32_t> limit;
};

// Validators run while CLI11 parses, so a bad value is reported like any other bad flag and
// the values are known to be good afterwards.
// A validator from a parser that returns a Result: its error message, or nothing when it parses.
template <typename Parse>
CLI::Validator ResultCheck(Parse parse, std::string name) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        auto parsed = parse(text);
        return parsed ? std::string() : parsed.error().message;
      },
      std::move(name));
}

// A job type or zone, as the protocol allows it.
CLI::Validator NameCheck(std::string what) {
  return ResultCheck(
      [what = std::move(what)](const std::string& text) {
        return wire::CheckName(what, text, wire::limits::kMaxTypeBytes);
      },
      "NAME");
}

CLI::Validator DurationCheck() {
  return ResultCheck([](const std::string& text) { return wire::ParseDuration(text); }, "DURATION");
}

CLI::Validator PositiveDurationCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto ms = wire::ParseDuration(text);
        if (!ms) return ms.error().message;
        return *ms > 0 ? std::string() : "the request timeout must be more than 0";
      },
      "DURATION");
}

CLI::Validator TimestampCheck() {
  return ResultCheck([](const std::string& text) { return ParseTimestamp(text); }, "TIME");
}

CLI::Validator PriorityCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (wire::ParsePriority(text)) return {};
        return "bad priority '" + text + "': expected low, normal, high, critical or 0-9";
      },
      "PRIORITY");
}

CLI::Validator PolicyCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (wire::ParseDependencyPolicy(text)) return {};
        return "unknown dependency policy '" + text + "': expected all_succeeded or all_settled";
      },
      "POLICY");
}

CLI::Validator StateCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (wire::ParseJobState(text)) return {};
        std::string names;
        for (const auto& state : wire::kJobStates) {
          if (!names.empty()) names += ", ";
          names += state.name;
        }
        return "unknown job state '" + text + "': expected one of " + names;
      },
      "STATE");
}

CLI::Validator RequirementCheck() {
  return ResultCheck([](const std::string& text) { return ParseRequirement(text); }, "KEY=VALUE");
}

CLI::Validator LocalityCheck() {
  return ResultCheck([](const std::string& text) { return ParseLocalityArg(text); }, "LOCALITY");
}

CLI::Validator MaxRttCheck() {
  return ResultCheck([](const std::string& text) { return ParseMaxRtt(text); }, "DURATION");
}

// The placement flags of `submit`, or with `defaults` those of `group submit`, which apply to
// the members that do not set their own.
void AddPlacementOptions(CLI::App& sub, PlacementArgs& args, bool defaults) {
  const std::string of = defaults ? "Members' default: " : "";
  sub.add_option("--hash-key", args.hash_key,
                 of + "Routing key of the hash strategy (same key, same worker)");
  sub.add_option("--require", args.required,
                 of + "A label the worker must have, e.g. gpu=true (repeatable)")
      ->check(RequirementCheck());
  sub.add_option("--zone", args.zone, of + "The zone to run in (a worker's zone label)")
      ->check(NameCheck("zone"));
  sub.add_option("--locality", args.locality,
                 of + "same-zone (only --zone), cross-zone (--zone first) or any")
      ->check(LocalityCheck());
  sub.add_option("--max-rtt", args.max_rtt,
                 of + "Only workers whose round trip is at most this, e.g. 20ms")
      ->check(MaxRttCheck());
}

// Checked by the validators above.
std::uint64_t Ms(const std::string& duration) {
  return static_cast<std::uint64_t>(*wire::ParseDuration(duration));
}

// The flags as the job's fields; fails only on a label given twice.
Status ApplyPlacement(const PlacementArgs& args, wire::JobSpec& target) {
  auto required = ParseRequirements(args.required);
  if (!required) return std::unexpected(required.error());
  target.hash_key = args.hash_key;
  target.required = std::move(*required);
  target.zone = args.zone;
  if (args.locality) target.locality = *ParseLocalityArg(*args.locality);
  if (args.max_rtt) target.max_rtt_ms = *ParseMaxRtt(*args.max_rtt);
  return {};
}

void PrintJson(const nlohmann::json& value, const CliIo& io) {
  io.out << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

// Sends `request`; on failure prints why and returns the exit code as the error.
std::expected<wire::ClientReply, int> Request(Connection& connection, wire::ClientRequest request,
                                              const CliIo& io) {
  auto reply = connection.Call(std::move(request));
  if (!reply) {
    io.err << "claw-client: " << reply.error().message << '\n';
    return std::unexpected(ToInt(wire::ClientExit::kUnreachable));
  }
  if (!IsSuccess(reply->status)) {
    io.err << "claw-client: " << wire::Name(reply->status) << ": " << reply->message << '\n';
    return std::unexpected(ToInt(ExitForStatus(reply->status)));
  }
  return std::move(*reply);
}

// An ACCEPTED reply's id (of a job or a group: `what`); a broker that leaves it out is an error.
std::expected<std::string, int> AcceptedId(const wire::ClientReply& reply, std::string_view what,
                                           const CliIo& io) {
  if (reply.id) return *reply.id;
  io.err << "claw-client: the broker accepted the " << what << " but sent no id\n";
  return std::unexpected(ToInt(wire::ClientExit::kError));
}

// `--wait-timeout`, when given.
std::optional<milliseconds> WaitTimeout(const std::optional<std::string>& flag) {
  if (!flag) return std::nullopt;
  return milliseconds(Ms(*flag));
}

// A reply that should carry a job; a broker that leaves it out is an error.
std::expected<wire::JobInfo, int> RequestJob(Connection& connection, wire::ClientRequest request,
                                             const CliIo& io) {
  auto reply = Request(connection, std::move(request), io);
  if (!reply) return std::unexpected(reply.error());
  if (!reply->job) {
    io.err << "claw-client: the broker's " << wire::Name(reply->command) << " reply has no job\n";
    return std::unexpected(ToInt(wire::ClientExit::kError));
  }
  return std::move(*reply->job);
}

int Wait(Connection& connection, const std::string& id, std::optional<milliseconds> timeout,
         const GlobalArgs& globals, const CliIo& io) {
  const auto start = std::chrono::steady_clock::now();
  bool drew_bar = false;
  auto on_update = [&](const wire::JobInfo& job) {
    const auto elapsed =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
    if (io.err_is_terminal) {
      // One column short of the width, so the terminal never wraps the line.
      const std::size_t width = io.terminal_width > 1 ? io.terminal_width - 1 : 1;
      io.err << '\r' << RenderProgressLine(job, width, elapsed) << std::flush;
      drew_bar = true;
    } else {
      io.err << FormatUpdateLine(job, elapsed) << '\n';
    }
  };
  auto watched = connection.Watch(id, timeout, on_update);
  if (drew_bar) io.err << '\n';
  if (!watched) {
    io.err << "claw-client: " << watched.error().message << '\n';
    return ToInt(wire::ClientExit::kUnreachable);
  }
  const WatchResult& result = *watched;
  switch (result.end) {
    case WatchResult::End::kRefused:
      io.err << "claw-client: " << wire::Name(result.refusal.status) << ": "
             << result.refusal.message << '\n';
      break;
    case WatchResult::End::kTimedOut:
      io.err << "claw-client: timed out waiting for " << id;
      if (result.job) io.err << " (" << wire::Name(result.job->state) << ")";
      io.err << "; the job goes on\n";
      if (globals.json && result.job) PrintJson(JobToJson(*result.job), io);
      break;
    case WatchResult::End::kFinal: {
      const wire::JobInfo& job = *result.job;
      if (globals.json) {
        PrintJson(JobToJson(job), io);
      } else if (job.state == wire::JobState::kSucceeded) {
        const std::string& bytes = job.result ? *job.result : std::string();
        io.out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        io.out.flush();
      }
      if (job.state == wire::JobState::kDead) {
        io.err << "claw-client: " << job.id << " is dead after " << job.attempts
               << (job.attempts == 1 ? " attempt" : " attempts");
        if (!job.error.empty()) io.err << ": " << job.error;
        io.err << '\n';
      } else if (job.state == wire::JobState::kCancelled) {
        io.err << "claw-client: " << job.id << " was cancelled\n";
      }
      break;
    }
  }
  return ToInt(ExitForWatch(result));
}

int Submit(Connection& connection, const SubmitArgs& args, const GlobalArgs& globals,
           const CliIo& io) {
  wire::SubmitRequest request;
  wire::JobSpec& spec = request.job;
  spec.type = args.type;
  if (args.payload) {
    auto payload = ReadPayloadArg(*args.payload, io.in);
    if (!payload) {
      io.err << "claw-client: " << payload.error().message << '\n';
      return ToInt(wire::ClientExit::kUsage);
    }
    spec.payload = std::move(*payload);
  }
  if (args.priority) spec.priority = wire::ParsePriority(*args.priority);
  if (args.timeout) spec.timeout_ms = Ms(*args.timeout);
  spec.max_attempts = args.max_attempts;
  if (args.backoff) spec.backoff_ms = Ms(*args.backoff);
  if (args.max_backoff) spec.max_backoff_ms = Ms(*args.max_backoff);
  request.key = args.key;
  if (args.delay) spec.delay_ms = Ms(*args.delay);
  if (args.at) spec.run_at = static_cast<std::uint64_t>(*ParseTimestamp(*args.at));
  spec.after = args.after;
  if (args.after_policy) spec.after_policy = wire::ParseDependencyPolicy(*args.after_policy);
  if (auto placed = ApplyPlacement(args.placement, spec); !placed) {
    io.err << "claw-client: " << placed.error().message << '\n';
    return ToInt(wire::ClientExit::kUsage);
  }

  auto reply = Request(connection, std::move(request), io);
  if (!reply) return reply.error();
  const auto accepted = AcceptedId(*reply, "job", io);
  if (!accepted) return accepted.error();
  const std::string& id = *accepted;
  if (args.wait) {
    // stdout is kept for the result, exactly as `wait` prints it.
    if (!globals.json) io.err << id << '\n';
    return Wait(connection, id, WaitTimeout(args.wait_timeout), globals, io);
  }
  if (!globals.json) {
    io.out << id << '\n';
    return ToInt(wire::ClientExit::kOk);
  }
  auto job = RequestJob(connection, wire::StatusRequest{.id = id}, io);
  if (!job) return job.error();
  PrintJson(JobToJson(*job), io);
  return ToInt(wire::ClientExit::kOk);
}

// GROUP_STATUS; a reply without the group is an error.
std::expected<wire::GroupInfo, int> RequestGroup(Connection& connection, const std::string& id,
                                                 bool members, const CliIo& io) {
  auto reply = Request(connection, wire::GroupStatusRequest{.id = id, .members = members}, io);
  if (!reply) return std::unexpected(reply.error());
  if (!reply->group) {
    io.err << "claw-client: the broker's GROUP_STATUS reply has no group\n";
    return std::unexpected(ToInt(wire::ClientExit::kError));
  }
  return std::move(*reply->group);
}

bool GroupEnded(const wire::GroupInfo& group) {
  return group.settled == group.total &&
         (!group.follow_up || wire::IsFinal(group.follow_up->state));
}

// Polls GROUP_STATUS (counts only) until every member has settled and the follow-up, if any, is
// final; one progress bar for the whole group on a terminal, a line per change otherwise.
int GroupWait(Connection& connection, const std::string& id, std::optional<milliseconds> timeout,
              const GlobalArgs& globals, const CliIo& io) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout) deadline = start + *timeout;
  bool drew_bar = false;
  std::string last_line;
  std::optional<wire::GroupInfo> group;
  while (true) {
    auto polled = RequestGroup(connection, id, false, io);
    if (!polled) {
      if (drew_bar) io.err << '\n';
      return polled.error();
    }
    group = std::move(*polled);
    const auto now = std::chrono::steady_clock::now();
    const auto elapsed = std::chrono::duration_cast<milliseconds>(now - start);
    if (io.err_is_terminal) {
      const std::size_t width = io.terminal_width > 1 ? io.terminal_width - 1 : 1;
      io.err << '\r' << RenderGroupProgressLine(*group, width, elapsed) << std::flush;
      drew_bar = true;
    } else {
      // A line per change: the elapsed time alone is not news.
      const std::string line = FormatGroupUpdateLine(*group, milliseconds(0));
      if (line != last_line) io.err << FormatGroupUpdateLine(*group, elapsed) << '\n';
      last_line = line;
    }
    if (GroupEnded(*group)) break;
    if (deadline && now >= *deadline) {
      if (drew_bar) io.err << '\n';
      io.err << "claw-client: timed out waiting for " << id << " (" << group->settled << "/"
             << group->total << " settled); the group goes on\n";
      if (globals.json) PrintJson(GroupToJson(*group), io);
      return ToInt(wire::ClientExit::kWaitTimeout);
    }
    auto wake = now + kGroupPoll;
    if (deadline) wake = std::min(wake, *deadline);
    std::this_thread::sleep_until(wake);
  }
  if (drew_bar) io.err << '\n';
  if (globals.json) {
    auto full = RequestGroup(connection, id, true, io);
    if (!full) return full.error();
    group = std::move(*full);
    PrintJson(GroupToJson(*group), io);
  }
  const auto count = [&](wire::JobState state) { return wire::CountOf(group->counts, state); };
  if (group->follow_up) {
    const wire::JobInfo& job = *group->follow_up;
    if (job.state == wire::JobState::kSucceeded && !globals.json) {
      const std::string& bytes = job.result ? *job.result : std::string();
      io.out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      io.out.flush();
    } else if (job.state != wire::JobState::kSucceeded) {
      io.err << "claw-client: the follow-up " << job.id << " is " << wire::Name(job.state);
      if (!job.error.empty()) io.err << ": " << job.error;
      io.err << '\n';
    }
  } else if (count(wire::JobState::kDead) + count(wire::JobState::kCancelled) > 0) {
    io.err << "claw-client: " << id << ": " << count(wire::JobState::kDead) << " dead, "
           << count(wire::JobState::kCancelled) << " cancelled of " << group->total << '\n';
  }
  return ToInt(ExitForGroup(*group));
}

int GroupSubmit(Connection& connection, const GroupSubmitArgs& args, const GlobalArgs& globals,
                const CliIo& io) {
  MemberDefaults defaults{.type = args.type.value_or(""), .max_attempts = args.max_attempts};
  if (args.priority) defaults.priority = wire::ParsePriority(*args.priority);
  if (args.timeout) defaults.timeout_ms = Ms(*args.timeout);
  if (args.backoff) defaults.backoff_ms = Ms(*args.backoff);
  if (args.max_backoff) defaults.max_backoff_ms = Ms(*args.max_backoff);
  if (auto placed = ApplyPlacement(args.placement, defaults); !placed) {
    io.err << "claw-client: " << placed.error().message << '\n';
    return ToInt(wire::ClientExit::kUsage);
  }
  auto members = ReadGroupSource(args.source, defaults);
  if (!members) {
    io.err << "claw-client: " << members.error().message << '\n';
    return ToInt(wire::ClientExit::kUsage);
  }
  wire::GroupSubmitRequest request{.jobs = std::move(*members), .key = args.key};
  if (args.then) {
    wire::JobSpec follow_up{.type = *args.then};
    if (args.then_payload) {
      auto payload = ReadPayloadArg(*args.then_payload, io.in);
      if (!payload) {
        io.err << "claw-client: " << payload.error().message << '\n';
        return ToInt(wire::ClientExit::kUsage);
      }
      follow_up.payload = std::move(*payload);
    }
    ApplyDefaults(follow_up, defaults);
    if (!args.then_required.empty()) {
      auto required = ParseRequirements(args.then_required);
      if (!required) {
        io.err << "claw-client: " << required.error().message << '\n';
        return ToInt(wire::ClientExit::kUsage);
      }
      follow_up.required = std::move(*required);
    }
    request.follow_up = std::move(follow_up);
    request.follow_up_policy = wire::ParseDependencyPolicy(args.then_policy);
  }
  auto reply = Request(connection, std::move(request), io);
  if (!reply) return reply.error();
  const auto accepted = AcceptedId(*reply, "group", io);
  if (!accepted) return accepted.error();
  const std::string& id = *accepted;
  if (args.wait) {
    if (!globals.json) io.err << id << '\n';
    return GroupWait(connection, id, WaitTimeout(args.wait_timeout), globals, io);
  }
  if (globals.json) {
    nlohmann::json out = {
        {"id", id},
        {"ids", reply->ids.value_or(std::vector<std::string>())},
        {"follow_up_id",
         reply->follow_up_id ? nlohmann::json(*reply->follow_up_id) : nlohmann::json(nullptr)},
        {"existing", reply->existing.value_or(false)}};
    PrintJson(out, io);
  } else {
    io.out << id << '\n';
  }
  return ToInt(wire::ClientExit::kOk);
}

int GroupStatus(Connection& connection, const std::string& id, const GlobalArgs& globals,
                const CliIo& io) {
  auto group = RequestGroup(connection, id, true, io);
  if (!group) return group.error();
  if (globals.json) {
    PrintJson(GroupToJson(*group), io);
  } else {
    io.out << FormatGroup(*group);
  }
  return ToInt(wire::ClientExit::kOk);
}

int Status(Connection& connection, const std::string& id, const GlobalArgs& globals,
           const CliIo& io) {
  auto job = RequestJob(connection, wire::StatusRequest{.id = id}, io);
  if (!job) return job.error();
  if (globals.json) {
    PrintJson(JobToJson(*job), io);
  } else {
    io.out << FormatJob(*job);
  }
  return ToInt(wire::ClientExit::kOk);
}

int List(Connection& connection, const ListArgs& args, const GlobalArgs& globals, const CliIo& io) {
  wire::ListRequest request;
  if (args.state) request.state = wire::ParseJobState(*args.state);
  request.type = args.type;
  request.limit = args.limit;
  auto reply = Request(connection, std::move(request), io);
  if (!reply) return reply.error();
  const std::vector<wire::JobInfo> jobs = reply->jobs.value_or(std::vector<wire::JobInfo>());
  if (globals.json) {
    PrintJson(JobsToJson(jobs), io);
  } else {
    io.out << FormatJobTable(jobs);
  }
  return ToInt(wire::ClientExit::kOk);
}

// CANCEL and RETRY: both answer with the job in its new state.
int Change(Connection& connection, wire::ClientRequest request, const GlobalArgs& globals,
           const CliIo& io) {
  auto job = RequestJob(connection, std::move(request), io);
  if (!job) return job.error();
  if (globals.json) {
    PrintJson(JobToJson(*job), io);
  } else {
    io.out << job->id << ' ' << wire::Name(job->state) << '\n';
  }
  return ToInt(wire::ClientExit::kOk);
}

int Cluster(Connection& connection, const GlobalArgs& globals, const CliIo& io) {
  auto reply = Request(connection, wire::ClusterRequest{}, io);
  if (!reply) return reply.error();
  if (!reply->cluster) {
    io.err << "claw-client: the broker's CLUSTER reply has no cluster\n";
    return ToInt(wire::ClientExit::kError);
  }
  if (globals.json) {
    PrintJson(ClusterToJson(*reply->cluster), io);
  } else {
    io.out << FormatCluster(*reply->cluster);
  }
  return ToInt(wire::ClientExit::kOk);
}

int Drain(Connection& connection, const DrainArgs& args, const GlobalArgs& globals,
          const CliIo& io) {
  auto reply =
      Request(connection, wire::DrainRequest{.worker = args.worker, .drain = !args.undo}, io);
  if (!reply) return reply.error();
  const std::uint64_t moved = reply->moved.value_or(0);
  if (globals.json) {
    PrintJson({{"worker", args.worker}, {"draining", !args.undo}, {"moved", moved}}, io);
  } else {
    io.out << FormatDrain(args.worker, !args.undo, moved);
  }
  return ToInt(wire::ClientExit::kOk);
}

int Ping(Connection& connection, const GlobalArgs& globals, const CliIo& io) {
  auto reply = Request(connection, wire::PingRequest{}, io);
  if (!reply) return reply.error();
  const std::string role = reply->role.value_or("");
  const std::uint64_t epoch = reply->epoch.value_or(0);
  if (globals.json) {
    PrintJson({{"role", role}, {"epoch", epoch}}, io);
  } else {
    io.out << role << ' ' << epoch << '\n';
  }
  return ToInt(wire::ClientExit::kOk);
}

}  // namespace

int RunCli(int argc, const char* const* argv, const CliIo& io) {
  CLI::App app("Submit, follow and manage jobs on a Claw broker.", "claw-client");
  app.require_subcommand(1);
  GlobalArgs globals;
  app.add_option("--broker", globals.broker,
                 "Broker endpoint, or a comma-separated Binary Star pair; dns://host:port for "
                 "every address of a name")
      ->envname("CLAW_BROKER")
      ->capture_default_str();
  app.add_option("--request-timeout,--timeout", globals.request_timeout,
                 "How long to wait for one broker's answer before trying the next (after submit "
                 "or wait, --timeout is theirs)")
      ->check(PositiveDurationCheck())
      ->capture_default_str();
  app.add_flag("--json", globals.json, "Print JSON");

  SubmitArgs submit_args;
  auto* submit = app.add_subcommand("submit", "Submit a job; prints its id");
  submit->add_option("--type", submit_args.type, "Job type")->required()->check(NameCheck("type"));
  submit->add_option("--payload", submit_args.payload,
                     "DATA, @FILE or @- (standard input); default empty");
  submit->add_option("--priority", submit_args.priority, "low, normal, high, critical or 0-9")
      ->check(PriorityCheck());
  submit->add_option("--timeout", submit_args.timeout, "Timeout of one attempt, e.g. 30s")
      ->check(DurationCheck());
  submit->add_option("--max-attempts", submit_args.max_attempts, "Attempts before it is dead")
      ->check(CLI::PositiveNumber);
  submit->add_option("--backoff", submit_args.backoff, "Base of the retry backoff")
      ->check(DurationCheck());
  submit->add_option("--max-backoff", submit_args.max_backoff, "Cap of the retry backoff")
      ->check(DurationCheck());
  submit->add_option("--delay", submit_args.delay, "Do not run before this long from now, e.g. 30s")
      ->check(DurationCheck());
  submit
      ->add_option("--at", submit_args.at, "Do not run before this time, e.g. 2026-12-01T10:00:00Z")
      ->check(TimestampCheck());
  submit->add_option("--key", submit_args.key,
                     "Idempotency key (default: a random one, so resends are safe)");
  submit->add_option("--after", submit_args.after,
                     "Run only after this job has ended (repeatable); see --after-policy");
  submit
      ->add_option("--after-policy", submit_args.after_policy,
                   "all_succeeded (default: cancelled if a dependency fails) or all_settled")
      ->check(PolicyCheck());
  AddPlacementOptions(*submit, submit_args.placement, false);
  submit->add_flag("--wait", submit_args.wait,
                   "Wait for the job like `wait` (the id goes to stderr, the result to stdout)");
  submit->add_option("--wait-timeout", submit_args.wait_timeout, "Give up waiting after this")
      ->check(DurationCheck());

  std::string status_id;
  auto* status = app.add_subcommand("status", "Show one job");
  status->add_option("id", status_id, "Job id")->required();

  std::string wait_id;
  std::optional<std::string> wait_timeout;
  auto* wait = app.add_subcommand(
      "wait", "Follow a job until it is final; prints its result (exit 0 if it succeeded)");
  wait->add_option("id", wait_id, "Job id")->required();
  wait->add_option("--timeout", wait_timeout, "Give up waiting after this (the job goes on)")
      ->check(DurationCheck());

  ListArgs list_args;
  auto* list = app.add_subcommand("list", "List jobs, newest first");
  list->add_option("--state", list_args.state, "Only jobs in this state")->check(StateCheck());
  list->add_option("--type", list_args.type, "Only jobs of this type")->check(NameCheck("type"));
  list->add_option("--limit", list_args.limit, "At most this many (broker default 100)");

  std::string cancel_id;
  auto* cancel = app.add_subcommand("cancel", "Cancel a queued, scheduled or running job");
  cancel->add_option("id", cancel_id, "Job id")->required();

  std::string retry_id;
  auto* retry = app.add_subcommand("retry", "Queue a dead or cancelled job again");
  retry->add_option("id", retry_id, "Job id")->required();

  auto* group = app.add_subcommand("group", "Submit, show and wait for groups of jobs");
  group->require_subcommand(1);
  GroupSubmitArgs group_args;
  auto* group_submit = group->add_subcommand(
      "submit", "Submit a group from a file of JSON lines or a folder; prints the group id");
  group_submit->add_option("source", group_args.source, "File of JSON lines, or a folder")
      ->required();
  group_submit
      ->add_option("--type", group_args.type,
                   "Type of members that name none (required for a folder)")
      ->check(NameCheck("type"));
  group_submit->add_option("--priority", group_args.priority, "Default priority of the members")
      ->check(PriorityCheck());
  group_submit->add_option("--timeout", group_args.timeout, "Default timeout of one attempt")
      ->check(DurationCheck());
  group_submit->add_option("--max-attempts", group_args.max_attempts, "Default attempts")
      ->check(CLI::PositiveNumber);
  group_submit->add_option("--backoff", group_args.backoff, "Default retry backoff")
      ->check(DurationCheck());
  group_submit->add_option("--max-backoff", group_args.max_backoff, "Default backoff cap")
      ->check(DurationCheck());
  auto* then = group_submit->add_option("--then", group_args.then,
                                        "Type of a follow-up job that gets every member's outcome");
  group_submit
      ->add_option("--then-payload", group_args.then_payload,
                   "The follow-up's payload: DATA, @FILE or @-")
      ->needs(then);
  group_submit
      ->add_option("--then-require", group_args.then_required,
                   "A label the follow-up's worker must have, e.g. role=coordinator; repeatable "
                   "(replaces --require for the follow-up)")
      ->needs(then);
  group_submit
      ->add_option("--then-policy", group_args.then_policy,
                   "all_settled (run whatever the outcomes) or all_succeeded")
      ->check(PolicyCheck())
      ->needs(then)
      ->capture_default_str();
  group_submit->add_option("--key", group_args.key,
                           "Idempotency key of the group (default: a random one)");
  AddPlacementOptions(*group_submit, group_args.placement, true);
  group_submit->add_flag("--wait", group_args.wait, "Wait for the group like `group wait`");
  group_submit->add_option("--wait-timeout", group_args.wait_timeout, "Give up waiting after this")
      ->check(DurationCheck());

  std::string group_status_id;
  auto* group_status = group->add_subcommand("status", "Show a group's counts and members");
  group_status->add_option("id", group_status_id, "Group id")->required();

  std::string group_wait_id;
  std::optional<std::string> group_wait_timeout;
  auto* group_wait = group->add_subcommand(
      "wait", "Wait for every member and the follow-up; prints the follow-up's result");
  group_wait->add_option("id", group_wait_id, "Group id")->required();
  group_wait
      ->add_option("--timeout", group_wait_timeout,
                   "Give up waiting after this (the group goes on)")
      ->check(DurationCheck());

  auto* cluster = app.add_subcommand("cluster", "Show workers, capacity, jobs and queues");
  DrainArgs drain_args;
  auto* drain = app.add_subcommand(
      "drain", "Take a worker out of service: no new jobs, its running jobs move elsewhere");
  drain->add_option("worker", drain_args.worker, "Worker id")->required();
  drain->add_flag("--undo", drain_args.undo, "Put the worker back in service");
  auto* ping = app.add_subcommand("ping", "Print the broker's role and epoch");

  for (auto* sub : {submit, status, wait, list, cancel, retry, group, group_submit, group_status,
                    group_wait, cluster, drain, ping}) {
    sub->fallthrough();
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    app.exit(e, io.out, io.err);
    return e.get_exit_code() == 0 ? ToInt(wire::ClientExit::kOk) : ToInt(wire::ClientExit::kUsage);
  }

  std::vector<std::string> endpoints = SplitEndpoints(globals.broker);
  if (endpoints.empty()) {
    io.err << "claw-client: --broker needs at least one endpoint\n";
    return ToInt(wire::ClientExit::kUsage);
  }
  for (const auto& endpoint : endpoints) {
    if (auto ok = wire::CheckEndpoint(endpoint); !ok) {
      io.err << "claw-client: --broker: " << ok.error().message << "\n";
      return ToInt(wire::ClientExit::kUsage);
    }
  }
  auto resolved = wire::ResolveEndpoints(endpoints);
  if (!resolved) {
    io.err << "claw-client: " << resolved.error().message << "\n";
    return ToInt(wire::ClientExit::kUnreachable);
  }
  Connection connection(std::move(*resolved), milliseconds(Ms(globals.request_timeout)));

  if (submit->parsed()) return Submit(connection, submit_args, globals, io);
  if (status->parsed()) return Status(connection, status_id, globals, io);
  if (wait->parsed()) {
    std::optional<milliseconds> timeout;
    if (wait_timeout) timeout = milliseconds(Ms(*wait_timeout));
    return Wait(connection, wait_id, timeout, globals, io);
  }
  if (list->parsed()) return List(connection, list_args, globals, io);
  if (cancel->parsed())
    return Change(connection, wire::CancelRequest{.id = cancel_id}, globals, io);
  if (retry->parsed()) return Change(connection, wire::RetryRequest{.id = retry_id}, globals, io);
  if (group_submit->parsed()) return GroupSubmit(connection, group_args, globals, io);
  if (group_status->parsed()) return GroupStatus(connection, group_status_id, globals, io);
  if (group_wait->parsed()) {
    std::optional<milliseconds> timeout;
    if (group_wait_timeout) timeout = milliseconds(Ms(*group_wait_timeout));
    return GroupWait(connection, group_wait_id, timeout, globals, io);
  }
  if (cluster->parsed()) return Cluster(connection, globals, io);
  if (drain->parsed()) return Drain(connection, drain_args, globals, io);
  if (ping->parsed()) return Ping(connection, globals, io);
  return ToInt(wire::ClientExit::kUsage);
}

int RunCli(int argc, char** argv) {
  CliIo io{.in = std::cin, .out = std::cout, .err = std::cerr};
  io.err_is_terminal = isatty(STDERR_FILENO) == 1;
  winsize size{};
  if (io.err_is_terminal && ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    io.terminal_width = size.ws_col;
  }
  return RunCli(argc, argv, io);
}

}  // namespace claw::client
