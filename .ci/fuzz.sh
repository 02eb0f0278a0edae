#!/usr/bin/env bash
# Runs every native fuzz target of the module briefly, one at a time:
# the targets are discovered with `go test -list '^Fuzz'` in each package,
# so new ones are picked up without editing this script.
#
#   .ci/fuzz.sh              # 2000 executions per target
#   FUZZTIME=2m .ci/fuzz.sh  # longer runs (a duration: see below)
#   .ci/fuzz.sh ./mtasts     # only these packages
#
# A crasher is written by `go test` to <package>/testdata/fuzz/<Target>/;
# commit it (after fixing the bug): `go test` then runs it as a seed. The
# script exits non-zero if any target failed, after running all of them.
set -uo pipefail
cd "$(dirname "$0")/.."

# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure when the time runs
# out while a worker is busy on a loaded machine (golang/go#75804, fixed in
# Go 1.27). A count has no deadline to race. 2000 executions take from
# well under a second to about 20 s (the DNSSEC validator target).
fuzztime=${FUZZTIME:-2000x}
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  mapfile -t pkgs < <(go list ./...)
fi

failed=()
count=0
for pkg in "${pkgs[@]}"; do
  # -list prints the matching names, then "ok <pkg>" (or "?" without tests).
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep -E '^Fuzz[A-Za-z0-9_]*$' || true)
  for t in $targets; do
    count=$((count + 1))
    printf '\n=== %s %s (%s)\n' "$pkg" "$t" "$fuzztime"
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg"; then
      failed+=("$pkg $t")
    fi
  done
done

printf '\n=== %d fuzz targets run\n' "$count"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
