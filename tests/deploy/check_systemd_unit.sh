#!/usr/bin/env bash
# Checks deploy/systemd/edged.service with `systemd-analyze verify`, its
# ExecStart pointed at the edged binary just built (verify wants it to
# exist). Any warning fails: systemd-analyze exits 0 on unknown keys.
# Usage: check_systemd_unit.sh UNIT EDGED_BINARY
set -euo pipefail
unit="$1"
edged="$2"
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed" >&2
  exit 77
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=/usr/local/bin/edged|ExecStart=${edged}|" "$unit" > "$dir/edged.service"
grep -q "^ExecStart=${edged}\$" "$dir/edged.service"
output="$(cd "$dir" && systemd-analyze verify ./edged.service 2>&1)" || {
  echo "$output" >&2
  exit 1
}
if [ -n "$output" ]; then
  echo "systemd-analyze verify warned:" >&2
  echo "$output" >&2
  exit 1
fi
# The hardening the unit promises (docs/operations.md).
for setting in NoNewPrivileges=yes ProtectSystem=strict DynamicUser=yes \
               LimitNOFILE=65536 EnvironmentFile=/etc/edged/edged.env; do
  grep -q "^${setting}\$" "$unit" || { echo "missing ${setting}" >&2; exit 1; }
done
echo "edged.service verifies"
