// Worker flag parsing helpers: see the header.
#include "worker/flags.hpp"

#include <unistd.h>

#include <array>

#include "schema/names.hpp"
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
  auto label = wire::ParseLabel(text);
  if (!label) return Fail("label '" + std::string(text) + "': " + label.error().message);
  return label;
}

Status CheckJobType(std::string_view type) {
  return wire::CheckName("job type '" + std::string(type) + "'", type, wire::limits::kMaxTypeBytes);
}

std::string DefaultWorkerId() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::string name = host[0] != '\0' ? std::string(host.data()) : std::string("worker");
  return name + "-" + std::to_string(::getpid());
}

}  // namespace claw::worker
