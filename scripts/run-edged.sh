#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs edged on embedded
# defaults (an in-process Kafka broker, the local tracker, plaintext gRPC on
# :50051, metrics on :9464). Any variable of docs/configuration.md can be set
# in the environment first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec "${BUILD_DIR:-build}/edged/edged"
