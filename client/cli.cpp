// claw-client's flags and subcommands. Parsing fills plain structs; each subcommand is a
// function of those structs, a Connection and the output streams. See cli.hpp for the flags.
#include "client/cli.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "client/connection.hpp"
#include "client/exit_codes.hpp"
#include "client/json_format.hpp"
#include "client/payload_arg.hpp"
#include "client/text_format.hpp"
#include "client/time_arg.hpp"
#include "schema/duration.hpp"

namespace claw::client {
namespace {

using std::chrono::milliseconds;

constexpr const char* kDefaultBroker = "tcp://127.0.0.1:5555";

struct GlobalArgs {
  std::string broker = kDefaultBroker;
  std::string request_timeout = wire::FormatDuration(wire::defaults::kClientTimeoutMs);
  bool json = false;
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
  bool wait = false;
  std::optional<std::string> wait_timeout;
};

struct ListArgs {
  std::optional<std::string> state;
  std::optional<std::string> type;
  std::optional<std::uint32_t> limit;
};

// Validators run while CLI11 parses, so a bad value is reported like any other bad flag and
// the values are known to be good afterwards.
CLI::Validator DurationCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto ms = wire::ParseDuration(text);
        return ms ? std::string() : ms.error().message;
      },
      "DURATION");
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
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto ms = ParseTimestamp(text);
        return ms ? std::string() : ms.error().message;
      },
      "TIME");
}

CLI::Validator PriorityCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (wire::ParsePriority(text)) return {};
        return "bad priority '" + text + "': expected low, normal, high, critical or 0-9";
      },
      "PRIORITY");
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

// Checked by the validators above.
std::uint64_t Ms(const std::string& duration) {
  return static_cast<std::uint64_t>(*wire::ParseDuration(duration));
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
  request.type = args.type;
  if (args.payload) {
    auto payload = ReadPayloadArg(*args.payload, io.in);
    if (!payload) {
      io.err << "claw-client: " << payload.error().message << '\n';
      return ToInt(wire::ClientExit::kUsage);
    }
    request.payload = std::move(*payload);
  }
  if (args.priority) request.priority = wire::ParsePriority(*args.priority);
  if (args.timeout) request.timeout_ms = Ms(*args.timeout);
  request.max_attempts = args.max_attempts;
  if (args.backoff) request.backoff_ms = Ms(*args.backoff);
  if (args.max_backoff) request.max_backoff_ms = Ms(*args.max_backoff);
  request.key = args.key;
  if (args.delay) request.delay_ms = Ms(*args.delay);
  if (args.at) request.run_at = static_cast<std::uint64_t>(*ParseTimestamp(*args.at));

  auto reply = Request(connection, std::move(request), io);
  if (!reply) return reply.error();
  if (!reply->id) {
    io.err << "claw-client: the broker accepted the job but sent no id\n";
    return ToInt(wire::ClientExit::kError);
  }
  const std::string id = *reply->id;
  if (args.wait) {
    // stdout is kept for the result, exactly as `wait` prints it.
    if (!globals.json) io.err << id << '\n';
    std::optional<milliseconds> timeout;
    if (args.wait_timeout) timeout = milliseconds(Ms(*args.wait_timeout));
    return Wait(connection, id, timeout, globals, io);
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
                 "Broker endpoint, or a comma-separated Binary Star pair")
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
  submit->add_option("--type", submit_args.type, "Job type")->required();
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
  list->add_option("--type", list_args.type, "Only jobs of this type");
  list->add_option("--limit", list_args.limit, "At most this many (broker default 100)");

  std::string cancel_id;
  auto* cancel = app.add_subcommand("cancel", "Cancel a queued, scheduled or running job");
  cancel->add_option("id", cancel_id, "Job id")->required();

  std::string retry_id;
  auto* retry = app.add_subcommand("retry", "Queue a dead or cancelled job again");
  retry->add_option("id", retry_id, "Job id")->required();

  auto* cluster = app.add_subcommand("cluster", "Show workers, capacity, jobs and queues");
  auto* ping = app.add_subcommand("ping", "Print the broker's role and epoch");

  for (auto* sub : {submit, status, wait, list, cancel, retry, cluster, ping}) sub->fallthrough();

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
    if (endpoint.find("://") == std::string::npos) {
      io.err << "claw-client: bad broker endpoint '" << endpoint
             << "': expected e.g. tcp://host:5555\n";
      return ToInt(wire::ClientExit::kUsage);
    }
  }
  Connection connection(std::move(endpoints), milliseconds(Ms(globals.request_timeout)));

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
  if (cluster->parsed()) return Cluster(connection, globals, io);
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
