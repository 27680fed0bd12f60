// `submit --at` times.
#include <doctest/doctest.h>

#include "client/time_arg.hpp"

namespace claw::client {
namespace {

TEST_CASE("ISO 8601 times in UTC and with offsets become Unix milliseconds") {
  CHECK(*ParseTimestamp("1970-01-01T00:00:00Z") == 0);
  CHECK(*ParseTimestamp("2026-12-01T10:00:00Z") == 1796119200000);
  CHECK(*ParseTimestamp("2026-12-01T11:00:00+01:00") == 1796119200000);
  CHECK(*ParseTimestamp("2026-12-01T05:30:00-04:30") == 1796119200000);
  CHECK(*ParseTimestamp("2026-12-01T10:00:00.250Z") == 1796119200250);
}

TEST_CASE("anything else is refused with the text quoted") {
  for (const char* bad :
       {"", "2026-12-01", "2026-12-01T10:00:00", "2026-13-01T10:00:00Z", "2026-12-01 10:00:00Z",
        "2026-12-01T10:00:00Zjunk", "tomorrow", "2026-12-01T10:00:00+0100", "2026-12-01T10:00:00.",
        "2026-12-01T10:00:00+24:00", "2026-12-01T10:00:00+01:60"}) {
    auto parsed = ParseTimestamp(bad);
    CHECK_MESSAGE(!parsed.has_value(), bad);
    if (!parsed)
      CHECK(parsed.error().message.find(std::string("'") + bad + "'") != std::string::npos);
  }
}

TEST_CASE("a day that does not exist, or a time before 1970, is refused") {
  CHECK(ParseTimestamp("2030-02-31T10:00:00Z").error().message ==
        "bad time '2030-02-31T10:00:00Z': there is no such day");
  CHECK(!ParseTimestamp("2026-04-31T00:00:00Z").has_value());
  CHECK(ParseTimestamp("2028-02-29T00:00:00Z").has_value());  // a leap day
  CHECK(ParseTimestamp("1969-12-31T23:59:59Z").error().message ==
        "bad time '1969-12-31T23:59:59Z': before 1970");
  CHECK(ParseTimestamp("1970-01-01T00:00:00Z") == 0);
}

}  // namespace
}  // namespace claw::client
