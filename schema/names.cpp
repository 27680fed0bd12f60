#include "schema/names.hpp"

#include <algorithm>

#include "schema/codec.hpp"
#include "schema/protocol_constants.hpp"

namespace claw::wire {

bool IsName(std::string_view text, std::size_t max_bytes) {
  if (text.empty() || text.size() > max_bytes) return false;
  return std::ranges::all_of(text, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  });
}

Status CheckName(std::string_view what, std::string_view text, std::size_t max_bytes) {
  if (IsName(text, max_bytes)) return {};
  return Fail(std::string(what) + " must be 1-" + std::to_string(max_bytes) +
              " bytes of A-Z a-z 0-9 _ . : -");
}

Status CheckJobNames(const JobSpec& spec) {
  if (Status type = CheckName("type", spec.type, limits::kMaxTypeBytes); !type) return type;
  if (spec.zone) return CheckName("zone", *spec.zone, limits::kMaxTypeBytes);
  return {};
}

Status CheckLabel(std::string_view key, std::string_view value) {
  if (key.empty()) return Fail("the key is empty");
  if (key.find('=') != std::string_view::npos) return Fail("the key holds '='");
  if (key.find('\n') != std::string_view::npos || value.find('\n') != std::string_view::npos) {
    return Fail("no newlines");
  }
  return {};
}

Result<std::pair<std::string, std::string>> ParseLabel(std::string_view text) {
  const auto equals = text.find('=');
  if (equals == std::string_view::npos) return Fail("expected key=value");
  const std::string_view key = text.substr(0, equals);
  const std::string_view value = text.substr(equals + 1);
  if (Status checked = CheckLabel(key, value); !checked) return std::unexpected(checked.error());
  return std::pair{std::string(key), std::string(value)};
}

}  // namespace claw::wire
