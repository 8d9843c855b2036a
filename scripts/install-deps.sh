#!/usr/bin/env bash
# Installs what iraewatch needs to build, test and benchmark, from Debian 12's packages only.
# Does nothing when everything is already present. Uses sudo when not run as root.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-dev            # Boost.Asio (header-only)
  libsqlite3-dev          # the store
  libyaml-cpp-dev         # config and rules
  libspdlog-dev           # logging (pulls libfmt-dev)
  nlohmann-json3-dev      # NDJSON records and alert lines
  libcli11-dev            # command line
  catch2                  # tests (v2)
  python3 python3-hl7     # black-box tests: a real third-party MLLP sender
  sqlite3                 # inspecting the store by hand and in tests
  tzdata                  # hl7.time_zone: the IANA time zone database (/usr/share/zoneinfo)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
