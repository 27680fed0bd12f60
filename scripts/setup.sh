#!/usr/bin/env bash
# Installs Claw's build dependencies from Debian 12 packages (as root) and builds the project
# into build/. Safe to run again: it installs only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libzmq3-dev cppzmq-dev libmsgpack-cxx-dev
          libyaml-cpp-dev libsqlite3-dev libspdlog-dev doctest-dev libcli11-dev
          nlohmann-json3-dev python3-zmq python3-msgpack python3-yaml)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j "$(nproc)"
