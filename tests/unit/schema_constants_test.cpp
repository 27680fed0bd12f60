// schema/protocol_constants.hpp is generated from schema/protocol.yaml and committed. This test
// runs the generator and fails when the committed header differs from its output by one byte.
#include <doctest/doctest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <array>
#include <fstream>
#include <sstream>
#include <string>

namespace claw::wire {
namespace {

// The generator's stdout, and whether it exited with status 0.
std::pair<std::string, bool> RunGenerator() {
  const std::string command =
      std::string("'") + CLAW_PROTOCOL_GEN + "' '" + CLAW_SOURCE_DIR + "/schema/protocol.yaml'";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "cannot run " << command);
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {out, WIFEXITED(status) && WEXITSTATUS(status) == 0};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE("the committed protocol_constants.hpp is what the generator makes of protocol.yaml") {
  const auto [generated, ok] = RunGenerator();
  REQUIRE_MESSAGE(ok, "claw-protocol-gen failed on schema/protocol.yaml");
  const std::string committed = ReadFile(CLAW_SOURCE_DIR "/schema/protocol_constants.hpp");
  CHECK_MESSAGE(generated == committed,
                "schema/protocol_constants.hpp is stale: regenerate it with\n"
                "  build/claw-protocol-gen schema/protocol.yaml > schema/protocol_constants.hpp\n"
                "then update schema/codec.cpp and the golden files (schema/PROTOCOL.md, "
                "\"Changing the protocol\")");
}

}  // namespace
}  // namespace claw::wire
