// Worker flag parsing helpers: see the header.
#include "worker/flags.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>

#include "schema/protocol_constants.hpp"

namespace claw::worker {
namespace {

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

}  // namespace

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> items;
  while (true) {
    const auto comma = text.find(',');
    const auto item = Trim(text.substr(0, comma));
    if (!item.empty()) items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

Result<std::pair<std::string, std::string>> ParseLabel(std::string_view text) {
  const auto equals = text.find('=');
  if (equals == std::string_view::npos) {
    return Fail("label '" + std::string(text) + "' must look like key=value");
  }
  if (equals == 0) return Fail("label '" + std::string(text) + "' has an empty key");
  return std::pair{std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
}

Status CheckJobType(std::string_view type) {
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  };
  if (type.empty() || type.size() > static_cast<std::size_t>(wire::limits::kMaxTypeBytes) ||
      !std::all_of(type.begin(), type.end(), allowed)) {
    return Fail("job type '" + std::string(type) + "' must be 1-" +
                std::to_string(wire::limits::kMaxTypeBytes) + " bytes of [A-Za-z0-9_.:-]");
  }
  return {};
}

std::string DefaultWorkerId() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::string name = host[0] != '\0' ? std::string(host.data()) : std::string("worker");
  return name + "-" + std::to_string(::getpid());
}

}  // namespace claw::worker
