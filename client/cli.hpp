// The claw-client command line: flag parsing (CLI11) and one function per subcommand, each
// calling the broker through a Connection and printing with json_format / text_format.
//
//   claw-client [--broker ENDPOINT[,ENDPOINT]] [--request-timeout D] [--json] SUBCOMMAND ...
//
// --broker defaults to $CLAW_BROKER, else tcp://127.0.0.1:5555. --request-timeout (default 5s)
// bounds each request to one broker; --timeout is accepted as its other name, but written after
// `submit` or `wait` it is theirs (the job's timeout, the wait's timeout). Global flags may be
// written before or after the subcommand.
//
// Exit codes are `exit_codes.client` in schema/protocol.yaml: 0 done (for wait: succeeded),
// 1 refused by the broker, 2 bad usage, 3 job dead, 4 job cancelled, 5 wait timed out (the job
// goes on), 6 no broker answered, 7 no such job.
#pragma once

#include <cstddef>
#include <istream>
#include <ostream>

namespace claw::client {

// Where the CLI reads and writes, so that tests can run it against strings.
struct CliIo {
  std::istream& in;                 // read by --payload @-
  std::ostream& out;                // results: ids, listings, JSON, a job's result bytes
  std::ostream& err;                // errors and wait's progress
  bool err_is_terminal = false;     // draw a live progress bar instead of one line per update
  std::size_t terminal_width = 80;  // of the terminal behind `err`
};

// Runs one claw-client command line (argv[0] is the program name); returns the exit code.
int RunCli(int argc, const char* const* argv, const CliIo& io);

// The same on the process's standard streams.
int RunCli(int argc, char** argv);

}  // namespace claw::client
