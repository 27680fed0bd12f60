// Reading a group's members from JSON lines or a folder; see group_source.hpp.
#include "client/group_source.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "client/payload_arg.hpp"
#include "client/placement_arg.hpp"
#include "client/time_arg.hpp"
#include "schema/duration.hpp"
#include "schema/names.hpp"

namespace claw::client {
namespace {

using nlohmann::json;

Result<std::string> String(const json& value, std::string_view key) {
  if (!value.is_string()) return Fail(std::string(key) + " must be a string");
  return value.get<std::string>();
}

Result<std::uint64_t> Duration(const json& value, std::string_view key) {
  auto text = String(value, key);
  if (!text) return std::unexpected(text.error());
  auto ms = wire::ParseDuration(*text);
  if (!ms) return Fail(std::string(key) + ": " + ms.error().message);
  return static_cast<std::uint64_t>(*ms);
}

Result<std::uint32_t> Priority(const json& value) {
  if (value.is_number_unsigned() && value.get<std::uint64_t>() <= wire::kPriorityMax) {
    return static_cast<std::uint32_t>(value.get<std::uint64_t>());
  }
  if (value.is_string()) {
    if (auto priority = wire::ParsePriority(value.get<std::string>())) return *priority;
  }
  return Fail("priority must be low, normal, high, critical or 0-9");
}

// `requires`: an object of labels, each value a string or a boolean.
Status SetRequired(wire::JobSpec& spec, const json& value) {
  if (!value.is_object()) return Fail("requires must be an object, e.g. {\"gpu\": true}");
  for (const auto& [name, label] : value.items()) {
    std::string text;
    if (label.is_string()) {
      text = label.get<std::string>();
    } else if (label.is_boolean()) {
      text = label.get<bool>() ? "true" : "false";
    } else {
      return Fail("requires: the value of '" + name + "' must be a string or true/false");
    }
    if (Status checked = wire::CheckLabel(name, text); !checked) {
      return Fail("requires: bad label '" + name + "': " + checked.error().message);
    }
    spec.required[name] = std::move(text);
  }
  return {};
}

// Sets the field of `spec` that `key` names.
Status SetField(wire::JobSpec& spec, const std::string& key, const json& value) {
  const auto set_duration = [&](std::optional<std::uint64_t>& field) -> Status {
    auto ms = Duration(value, key);
    if (!ms) return std::unexpected(ms.error());
    field = *ms;
    return {};
  };
  if (key == "type" || key == "payload") {
    auto text = String(value, key);
    if (!text) return std::unexpected(text.error());
    (key == "type" ? spec.type : spec.payload) = std::move(*text);
    return {};
  }
  if (key == "priority") {
    auto priority = Priority(value);
    if (!priority) return std::unexpected(priority.error());
    spec.priority = *priority;
    return {};
  }
  if (key == "timeout") return set_duration(spec.timeout_ms);
  if (key == "backoff") return set_duration(spec.backoff_ms);
  if (key == "max_backoff") return set_duration(spec.max_backoff_ms);
  if (key == "delay") return set_duration(spec.delay_ms);
  if (key == "max_attempts") {
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0 ||
        value.get<std::uint64_t>() > UINT32_MAX) {
      return Fail("max_attempts must be a whole number >= 1");
    }
    spec.max_attempts = static_cast<std::uint32_t>(value.get<std::uint64_t>());
    return {};
  }
  if (key == "at") {
    auto text = String(value, key);
    if (!text) return std::unexpected(text.error());
    auto ms = ParseTimestamp(*text);
    if (!ms) return Fail("at: " + ms.error().message);
    if (*ms < 0) return Fail("at: the time is before 1970");
    spec.run_at = static_cast<std::uint64_t>(*ms);
    return {};
  }
  if (key == "after") {
    const bool strings =
        value.is_array() &&
        std::all_of(value.begin(), value.end(), [](const json& id) { return id.is_string(); });
    if (!strings) return Fail("after must be a list of job ids (\"j-3\") or members (\"#0\")");
    spec.after = value.get<std::vector<std::string>>();
    return {};
  }
  if (key == "after_policy") {
    auto text = String(value, key);
    if (!text) return std::unexpected(text.error());
    auto policy = wire::ParseDependencyPolicy(*text);
    if (!policy) return Fail("after_policy must be all_succeeded or all_settled");
    spec.after_policy = *policy;
    return {};
  }
  if (key == "hash_key" || key == "zone") {
    auto text = String(value, key);
    if (!text) return std::unexpected(text.error());
    (key == "hash_key" ? spec.hash_key : spec.zone) = std::move(*text);
    return {};
  }
  if (key == "locality") {
    auto text = String(value, key);
    if (!text) return std::unexpected(text.error());
    auto locality = ParseLocalityArg(*text);
    if (!locality) return std::unexpected(locality.error());
    spec.locality = *locality;
    return {};
  }
  if (key == "max_rtt") {
    auto text = String(value, key);
    if (!text) return std::unexpected(text.error());
    auto ms = ParseMaxRtt(*text);
    if (!ms) return Fail("max_rtt: " + ms.error().message);
    spec.max_rtt_ms = *ms;
    return {};
  }
  if (key == "requires") return SetRequired(spec, value);
  return Fail("unknown key '" + key + "'");
}

Result<std::vector<wire::JobSpec>> ReadFolder(const std::filesystem::path& folder,
                                              const MemberDefaults& defaults) {
  if (defaults.type.empty()) return Fail("a folder's members need --type");
  std::error_code error;
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(folder, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file(error)) files.push_back(it->path());
  }
  if (error) return Fail("cannot list '" + folder.string() + "': " + error.message());
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    return a.filename().string() < b.filename().string();
  });
  std::vector<wire::JobSpec> members;
  for (const auto& path : files) {
    auto payload = ReadFileBytes(path.string());
    if (!payload) return std::unexpected(payload.error());
    wire::JobSpec spec{.payload = std::move(*payload)};
    ApplyDefaults(spec, defaults);
    members.push_back(std::move(spec));
  }
  return members;
}

}  // namespace

void ApplyDefaults(wire::JobSpec& spec, const MemberDefaults& defaults) {
  if (spec.type.empty()) spec.type = defaults.type;
  if (!spec.priority) spec.priority = defaults.priority;
  if (!spec.timeout_ms) spec.timeout_ms = defaults.timeout_ms;
  if (!spec.max_attempts) spec.max_attempts = defaults.max_attempts;
  if (!spec.backoff_ms) spec.backoff_ms = defaults.backoff_ms;
  if (!spec.max_backoff_ms) spec.max_backoff_ms = defaults.max_backoff_ms;
  if (!spec.hash_key) spec.hash_key = defaults.hash_key;
  if (spec.required.empty()) spec.required = defaults.required;
  if (!spec.zone) spec.zone = defaults.zone;
  if (!spec.locality) spec.locality = defaults.locality;
  if (!spec.max_rtt_ms) spec.max_rtt_ms = defaults.max_rtt_ms;
}

Result<wire::JobSpec> ParseMemberLine(std::string_view line, const MemberDefaults& defaults) {
  const json object = json::parse(line, nullptr, false);
  if (object.is_discarded()) return Fail("not valid JSON");
  if (!object.is_object()) return Fail("not a JSON object");
  wire::JobSpec spec;
  for (const auto& [key, value] : object.items()) {
    if (auto set = SetField(spec, key, value); !set) return std::unexpected(set.error());
  }
  ApplyDefaults(spec, defaults);
  if (spec.type.empty()) return Fail("no type (give one per line, or --type)");
  if (Status names = wire::CheckJobNames(spec); !names) return std::unexpected(names.error());
  return spec;
}

Result<std::vector<wire::JobSpec>> ParseMemberLines(std::string_view text,
                                                    const MemberDefaults& defaults) {
  std::vector<wire::JobSpec> members;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const auto newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto spec = ParseMemberLine(line, defaults);
    if (!spec) return Fail("line " + std::to_string(number) + ": " + spec.error().message);
    members.push_back(std::move(*spec));
  }
  return members;
}

Result<std::vector<wire::JobSpec>> ReadGroupSource(const std::string& path,
                                                   const MemberDefaults& defaults) {
  std::error_code error;
  Result<std::vector<wire::JobSpec>> members;
  if (std::filesystem::is_directory(path, error)) {
    members = ReadFolder(path, defaults);
  } else {
    auto read = ReadFileBytes(path);
    if (!read) return std::unexpected(read.error());
    const std::string text = std::move(*read);
    members = ParseMemberLines(text, defaults);
  }
  if (!members) return Fail(path + ": " + members.error().message);
  if (members->empty()) return Fail(path + ": no members");
  return members;
}

}  // namespace claw::client
