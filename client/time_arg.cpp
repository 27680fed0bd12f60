#include "client/time_arg.hpp"

#include <charconv>
#include <ctime>
#include <string>

namespace claw::client {
namespace {

// Reads exactly `digits` digits at `pos`.
bool Digits(std::string_view text, std::size_t& pos, std::size_t digits, int& out) {
  if (pos + digits > text.size()) return false;
  const auto [end, ec] = std::from_chars(text.data() + pos, text.data() + pos + digits, out);
  if (ec != std::errc() || end != text.data() + pos + digits) return false;
  pos += digits;
  return true;
}

bool Expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

}  // namespace

Result<std::int64_t> ParseTimestamp(std::string_view text) {
  const auto bad = [&] {
    return Fail("bad time '" + std::string(text) +
                "': expected ISO 8601 like 2026-12-01T10:00:00Z or 2026-12-01T11:00:00+01:00");
  };
  std::tm tm{};
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(text, pos, 4, year) || !Expect(text, pos, '-') || !Digits(text, pos, 2, month) ||
      !Expect(text, pos, '-') || !Digits(text, pos, 2, day) ||
      !(Expect(text, pos, 'T') || Expect(text, pos, 't')) || !Digits(text, pos, 2, hour) ||
      !Expect(text, pos, ':') || !Digits(text, pos, 2, minute) || !Expect(text, pos, ':') ||
      !Digits(text, pos, 2, second)) {
    return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  std::int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::int64_t scale = 100;
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  std::int64_t offset_minutes = 0;
  const bool utc = Expect(text, pos, 'Z') || Expect(text, pos, 'z');
  if (!utc && pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '+' ? 1 : -1;
    ++pos;
    int oh = 0, om = 0;
    if (!Digits(text, pos, 2, oh) || !Expect(text, pos, ':') || !Digits(text, pos, 2, om) ||
        oh > 23 || om > 59) {
      return bad();
    }
    offset_minutes = sign * (oh * 60 + om);
  } else if (!utc) {
    return bad();
  }
  if (pos != text.size()) return bad();
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t seconds = ::timegm(&tm);
  // timegm rolls an impossible date over (February 31 -> March 3): refuse it instead.
  if (tm.tm_mday != day || tm.tm_mon != month - 1) {
    return Fail("bad time '" + std::string(text) + "': there is no such day");
  }
  const std::int64_t ms =
      (static_cast<std::int64_t>(seconds) - offset_minutes * 60) * 1000 + millis;
  if (ms < 0) return Fail("bad time '" + std::string(text) + "': before 1970");
  return ms;
}

}  // namespace claw::client
