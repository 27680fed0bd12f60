// Time stamps and statistics: see the header.
#include "bench/measure.hpp"

#include <time.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

namespace claw::bench {

std::uint64_t MonoNanos() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(now.tv_nsec);
}

std::string EncodeStamp(std::uint64_t nanos) {
  std::string bytes(kStampBytes, '\0');
  std::memcpy(bytes.data(), &nanos, kStampBytes);
  return bytes;
}

std::optional<std::uint64_t> ReadStamp(std::string_view bytes) {
  if (bytes.size() < kStampBytes) return std::nullopt;
  std::uint64_t nanos = 0;
  std::memcpy(&nanos, bytes.data(), kStampBytes);
  return nanos;
}

std::string MakePayload(std::size_t size, std::uint64_t nanos) {
  assert(size >= kStampBytes);
  std::string payload(size, 'x');
  std::memcpy(payload.data(), &nanos, kStampBytes);
  return payload;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * values.size()));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

}  // namespace claw::bench
