// Parsing the placement flags; see placement_arg.hpp.
#include "client/placement_arg.hpp"

#include <limits>

#include "schema/duration.hpp"
#include "schema/names.hpp"

namespace claw::client {

Result<std::pair<std::string, std::string>> ParseRequirement(std::string_view text) {
  auto label = wire::ParseLabel(text);
  if (!label) return Fail("bad requirement '" + std::string(text) + "': " + label.error().message);
  return label;
}

Result<wire::Labels> ParseRequirements(const std::vector<std::string>& texts) {
  wire::Labels labels;
  for (const auto& text : texts) {
    auto requirement = ParseRequirement(text);
    if (!requirement) return std::unexpected(requirement.error());
    if (!labels.emplace(requirement->first, requirement->second).second) {
      return Fail("requirement '" + requirement->first + "' is given twice");
    }
  }
  return labels;
}

Result<wire::Locality> ParseLocalityArg(std::string_view name) {
  if (auto locality = wire::ParseLocality(name)) return *locality;
  std::string names;  // "a, b or c"
  for (std::size_t i = 0; i < wire::kLocalities.size(); ++i) {
    if (i > 0) names += i + 1 == wire::kLocalities.size() ? " or " : ", ";
    names += wire::kLocalities[i].name;
  }
  return Fail("unknown locality '" + std::string(name) + "': expected " + names);
}

Result<std::uint32_t> ParseMaxRtt(std::string_view text) {
  auto ms = wire::ParseDuration(text);
  if (!ms) return std::unexpected(ms.error());
  if (*ms < 0 || *ms > std::numeric_limits<std::uint32_t>::max()) {
    return Fail("max rtt '" + std::string(text) + "' is out of range");
  }
  return static_cast<std::uint32_t>(*ms);
}

}  // namespace claw::client
