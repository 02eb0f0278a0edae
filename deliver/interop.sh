#!/bin/bash
# Interop of package deliver with a real Postfix smtpd (Debian's package)
# as the receiving server.
#
#   bash deliver/interop.sh      (from anywhere; run as root)
#
# 1. installs postfix with apt-get when it is missing (the only step that
#    changes the machine: the package's own files; its daemon is not used);
# 2. builds the test binary with the "postfix" build tag and runs
#    TestPostfixReceives: deliveries through deliver.Client to Postfix with
#    DANE-EE and MTA-STS enforce (the message must arrive in Postfix's
#    mailbox), and with STARTTLS stripped and wrong certificates (deferred),
#    inside private network, mount and PID namespaces.
#
# Postfix runs with its own config_directory and queue_directory in a
# temporary directory that the test removes. Takes well under a minute once
# Postfix is installed. Extra arguments go to the test binary.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-go}

need=()
for t in postfix postconf; do
  command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || need+=(postfix)
done
for t in unshare:util-linux mount:mount ip:iproute2; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" != 0 ]; then
    echo "deliver interop: missing packages: $pkgs(run as root, or install them)" >&2
    exit 1
  fi
  echo "deliver interop: installing $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq $pkgs >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deliver-interop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

cd "$HERE/interop"
"$GO" test -c -tags postfix -o "$WORK/interop.test" .
timeout --kill-after=10 170 "$WORK/interop.test" -test.run '^TestPostfixReceives$' -test.count=1 -test.timeout=160s -test.v "$@"
