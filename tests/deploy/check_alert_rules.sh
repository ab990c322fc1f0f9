#!/usr/bin/env bash
# `promtool check rules` on edged's alert rules, then their unit tests
# (`promtool test rules`). Usage: check_alert_rules.sh DEPLOY_PROMETHEUS_DIR
set -euo pipefail
if ! command -v promtool >/dev/null; then
  echo "promtool not installed (Debian package prometheus; scripts/install-deps.sh)" >&2
  exit 77
fi
cd "$1"
promtool check rules edged-alerts.yml
promtool test rules edged-alerts.test.yml
