// claw-example-worker: a worker written against the C++ handler API. It counts the
// whitespace-separated words of each payload, reporting progress per chunk and saving a
// checkpoint ("<offset> <words> <in_word>") so that a retried attempt resumes where the last one
// stopped. The result is the count, in decimal.
//
//   claw-example-worker --broker tcp://127.0.0.1:5555 --type wordcount --capacity 4
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <sstream>
#include <string>

#include "schema/protocol_constants.hpp"
#include "worker/flags.hpp"
#include "worker/log.hpp"
#include "worker/worker.hpp"

namespace {

using claw::worker::JobContext;
using claw::worker::Outcome;

constexpr std::size_t kMinChunk = 4096;
constexpr std::size_t kChunksPerJob = 10;

std::atomic<bool> stop_requested = false;

extern "C" void OnStopSignal(int) { stop_requested.store(true); }

struct Position {
  std::size_t offset = 0;
  std::uint64_t words = 0;
  bool in_word = false;
};

// A checkpoint that does not parse, or does not fit this payload, means starting over.
Position Resume(const JobContext& job) {
  Position position;
  if (!job.checkpoint()) return position;
  std::istringstream in(*job.checkpoint());
  Position saved;
  int in_word = 0;
  if (in >> saved.offset >> saved.words >> in_word && saved.offset <= job.payload().size()) {
    saved.in_word = in_word != 0;
    position = saved;
  }
  return position;
}

Outcome CountWords(JobContext& job) {
  const std::string& text = job.payload();
  const std::size_t chunk = std::max(kMinChunk, text.size() / kChunksPerJob);
  Position position = Resume(job);
  while (position.offset < text.size()) {
    if (job.cancelled()) return Outcome::Failure("cancelled");
    const std::size_t end = std::min(text.size(), position.offset + chunk);
    for (std::size_t i = position.offset; i < end; ++i) {
      const bool space = std::isspace(static_cast<unsigned char>(text[i])) != 0;
      if (!space && !position.in_word) ++position.words;
      position.in_word = !space;
    }
    position.offset = end;
    const auto percent = static_cast<std::uint32_t>(position.offset * 100 / text.size());
    job.ReportProgress(percent, std::to_string(position.words) + " words so far");
    job.SaveCheckpoint(std::to_string(position.offset) + " " + std::to_string(position.words) +
                       " " + (position.in_word ? "1" : "0"));
  }
  return Outcome::Success(std::to_string(position.words));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"claw-example-worker: counts the words of each payload"};
  std::string brokers = "tcp://127.0.0.1:5555";
  std::string type = "wordcount";
  std::uint32_t capacity = 1;
  app.add_option("--broker", brokers, "Broker endpoint(s), comma-separated");
  app.add_option("--type", type, "Job type to run (default wordcount)");
  app.add_option("--capacity", capacity, "Jobs run at once")
      ->check(CLI::Range(std::uint32_t{1},
                         static_cast<std::uint32_t>(claw::wire::limits::kMaxCapacity)));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  claw::worker::Worker worker({.brokers = claw::worker::SplitList(brokers),
                               .id = claw::worker::DefaultWorkerId(),
                               .types = {type},
                               .capacity = capacity},
                              CountWords);
  if (auto status = worker.Run(stop_requested); !status) {
    claw::worker::Logger()->error("{}", status.error().message);
    return 1;
  }
  return 0;
}
