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

# shellcheck source=../../.ci/lib/need-packages.sh
. "$HERE/../../.ci/lib/need-packages.sh"
need_packages interop postfix:postfix postmap:postfix sendmail:postfix postqueue:postfix \
  unshare:util-linux mount:mount ip:iproute2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/postfix-tlspolicy-interop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

cd "$HERE"
"$GO" test -c -tags postfix -o "$WORK/interop.test" .
# The tests find shared test data relative to the module; run from here.
timeout --kill-after=10 280 "$WORK/interop.test" -test.run '^TestPostfix(Postmap|Delivery)$' -test.count=1 -test.timeout=270s -test.v "$@"
