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
// `group submit SOURCE` sends the members a file of JSON lines or a folder describes
// (client/group_source.hpp) as one GROUP_SUBMIT, with `--then TYPE` a follow-up that gets every
// member's outcome; `group status ID` shows the counts and members; `group wait ID` polls the
// counts with one progress bar for the whole group, then prints the follow-up's result. Its exit
// code is the follow-up's (0, 3 or 4), or without one 3 if a member is dead, else 4 if one is
// cancelled, else 0.
//
// `submit` (and `group submit`, as the members' defaults) place jobs with --hash-key K,
// --require key=value (repeatable), --zone Z, --locality same-zone|cross-zone|any and
// --max-rtt DURATION (client/placement_arg.hpp). `drain WORKER` takes a worker out of service
// (DRAIN) and prints how many running jobs went back to the queue; `drain WORKER --undo` puts it
// back.
//
// Exit codes are `exit_codes.client` in schema/protocol.yaml: 0 done (for wait: succeeded),
// 1 refused by the broker, 2 bad usage, 3 job dead, 4 job cancelled, 5 wait timed out (the job
// goes on), 6 no broker answered, 7 no such job (or worker, for drain).
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
