#!/usr/bin/env bash
# Sets up, builds and runs every test: doctest unit tests and the integration tests that start
# real claw-broker, claw-worker and claw-client processes on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure --timeout 600
