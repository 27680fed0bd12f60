// Time stamps carried in job payloads and the statistics the benchmark reports.
//
// Every benchmark job's payload starts with the submit time: CLOCK_MONOTONIC in nanoseconds as 8
// bytes in the machine's byte order (producer, broker and workers share one machine, so one
// clock and one byte order). The rest of the payload is filler up to the requested size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace claw::bench {

inline constexpr std::size_t kStampBytes = 8;

// CLOCK_MONOTONIC in nanoseconds.
std::uint64_t MonoNanos();

// The 8 bytes of a time stamp.
std::string EncodeStamp(std::uint64_t nanos);
// The time stamp at the start of `bytes`, or nullopt when there are fewer than 8 bytes.
std::optional<std::uint64_t> ReadStamp(std::string_view bytes);
// A payload of `size` bytes (at least kStampBytes) that starts with `nanos`.
std::string MakePayload(std::size_t size, std::uint64_t nanos);

// Nearest-rank percentile (0 < p <= 100) of `values`; 0 for no values.
double Percentile(std::vector<double> values, double p);
// The median (the mean of the two middle values for an even count); 0 for no values.
double Median(std::vector<double> values);

}  // namespace claw::bench
