#!/bin/bash
# Interop of postfix-tlspolicy with a real Postfix (Debian's package).
#
#   bash examples/postfix-tlspolicy/interop.sh      (from anywhere; run as root)
#
# 1. installs postfix with apt-get when it is missing (the only step that
#    changes the machine: the package's own files under /etc/postfix; the
#    package's daemon is not used);
# 2. builds the test binary with the "postfix" build tag and runs
#    TestPostfixPostmap (postmap(1) queries the socketmap) and
#    TestPostfixDelivery (mail through Postfix's smtp(8) to the test kit's
#    SMTP servers, inside private network, mount and PID namespaces).
#
# Postfix runs with its own config_directory and queue_directory in a
# temporary directory that the tests remove; /etc/postfix and
# /etc/resolv.conf of the machine are never changed (the test bind-mounts
# its own resolv.conf inside its mount namespace only). Takes well under
# five minutes. Extra arguments go to the test binary (e.g. -test.v).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-go}

need=()
for t in postfix postmap sendmail postqueue; do
  command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || need+=(postfix)
done
for t in unshare:util-linux mount:mount ip:iproute2; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" != 0 ]; then
    echo "interop: missing packages: $pkgs(run as root, or install them)" >&2
    exit 1
  fi
  echo "interop: installing $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq $pkgs >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/postfix-tlspolicy-interop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

cd "$HERE"
"$GO" test -c -tags postfix -o "$WORK/interop.test" .
# The tests find shared test data relative to the module; run from here.
timeout --kill-after=10 280 "$WORK/interop.test" -test.run '^TestPostfix(Postmap|Delivery)$' -test.count=1 -test.timeout=270s -test.v "$@"
