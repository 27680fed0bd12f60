// Errors from the world are values: a Result<T> holds a T or an Error with a readable message.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace claw {

struct Error {
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

// For operations that only succeed or fail.
using Status = std::expected<void, Error>;

inline std::unexpected<Error> Fail(std::string message) {
  return std::unexpected(Error{std::move(message)});
}

}  // namespace claw
