// Reading the --payload argument; see payload_arg.hpp.
#include "client/payload_arg.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace claw::client {
namespace {

std::string ReadAll(std::istream& input) {
  return std::string(std::istreambuf_iterator<char>(input), std::istreambuf_iterator<char>());
}

}  // namespace

Result<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Fail("cannot read '" + path + "': " + std::strerror(errno));
  std::string data = ReadAll(file);
  if (file.bad()) return Fail("cannot read '" + path + "': " + std::strerror(errno));
  return data;
}

Result<std::string> ReadPayloadArg(std::string_view arg, std::istream& input) {
  if (!arg.starts_with('@')) return std::string(arg);
  const std::string path(arg.substr(1));
  if (path == "-") {
    std::string data = ReadAll(input);
    if (input.bad()) return Fail("cannot read the payload from standard input");
    return data;
  }
  if (path.empty()) return Fail("--payload @ needs a file name, or @- for standard input");
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    return Fail("cannot read payload file '" + path + "': it is a directory");
  }
  auto data = ReadFileBytes(path);
  if (!data) return Fail("payload file: " + data.error().message);
  return data;
}

}  // namespace claw::client
