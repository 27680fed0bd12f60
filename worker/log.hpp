// The worker component's one named spdlog logger, "worker".
#pragma once

#include <spdlog/spdlog.h>

#include <memory>

namespace claw::worker {

// The logger named "worker", created (on stderr) the first time it is asked for unless the
// program registered its own under that name.
std::shared_ptr<spdlog::logger> Logger();

}  // namespace claw::worker
