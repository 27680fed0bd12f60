// The `submit --payload` argument, curl style: "DATA" is the payload itself, "@FILE" the bytes
// of a file, "@-" everything on standard input. Bytes are read unchanged (binary-safe).
#pragma once

#include <istream>
#include <string>
#include <string_view>

#include "schema/result.hpp"

namespace claw::client {

// Every byte of the file at `path`; the error is "cannot read 'PATH': why".
Result<std::string> ReadFileBytes(const std::string& path);

// The payload `arg` names; an unreadable file is an error that names it. `input` is read for
// "@-".
Result<std::string> ReadPayloadArg(std::string_view arg, std::istream& input);

}  // namespace claw::client
