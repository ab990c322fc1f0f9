#!/usr/bin/env bash
# Installs the Debian 12 packages edged needs to build, run and be tested,
# if any is missing. Idempotent and non-interactive.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librdkafka-dev libssl-dev
  libsimdjson-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus-cpp-dev libcurl4-openssl-dev
  etcd-server etcd-client kcat openssl
  clang libclang-rt-14-dev
  # scripts/check-format.sh (the formatting CI enforces).
  clang-format
  # promtool (checks deploy/prometheus' alert rules); systemd-analyze
  # (verifies deploy/systemd's unit).
  prometheus systemd
  # Raw HTTP/2 attacks in tests/grpc (hostile_h2.py).
  python3-h2
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
