#!/bin/bash
# Interop suite for resolver.Validating: real signer, real authoritative
# server, real validators.
#
#   bash interop/run.sh            (from the module root, or from anywhere)
#
# 1. installs ldnsutils, nsd, unbound, unbound-host and bind9-dnsutils with
#    apt-get when a tool is missing (the only step that needs root);
# 2. signs a private root ".", a TLD "test." (NSEC3 opt-out, like real TLDs)
#    and its children with ldns-signzone, in a fresh temporary directory;
# 3. serves every zone from one nsd on a loopback port, and runs an unbound
#    with module-config "iterator" (no validation) forwarding to it: the
#    ordinary recursive resolver that Validating uses as its upstream;
# 4. runs the Go tests of ./interop (SMTPTLS_INTEROP_DIR set), which ask
#    every question of Validating, of unbound-host (validating libunbound,
#    forwarding to nsd) and of delv, print the verdict matrix, and fail on
#    any disagreement not listed in interop/expected-differences.txt; then
#    tampered-response scenarios through a Go proxy (our verdict only).
#
# Idempotent: every run builds from scratch in a temporary directory and
# stops its daemons on exit. Extra arguments go to "go test".
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
GO=${GO:-go}

# --- 1. tools ---------------------------------------------------------------
need=()
for t in ldns-keygen:ldnsutils ldns-signzone:ldnsutils ldns-key2ds:ldnsutils nsd:nsd \
         nsd-checkzone:nsd unbound:unbound unbound-host:unbound-host delv:bind9-dnsutils dig:bind9-dnsutils; do
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
# Debian starts the packaged daemons on install; they are not ours and do
# not matter (we use our own ports), so they are left alone.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/smtptls-interop.XXXXXX")
cleanup() {
  for p in "$WORK"/*.pid; do
    [ -s "$p" ] || continue
    pid=$(cat "$p")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- 2. zones -----------------------------------------------------------------
K=$WORK/keys Z=$WORK/zones
mkdir -p "$K" "$Z"
cd "$K"
NOW=$(date -u +%s)
INC=$((NOW - 3600))          # inception an hour ago
EXP=$((NOW + 30*86400))      # expiration in 30 days

keygen() { # ALG NAME [bits] -> "KSK ZSK" (key file bases)
  local alg=$1 name=$2 bits=${3:-} b=()
  [ -n "$bits" ] && b=(-b "$bits")
  echo "$(ldns-keygen -a "$alg" "${b[@]}" -k -r /dev/urandom "$name") $(ldns-keygen -a "$alg" "${b[@]}" -r /dev/urandom "$name")"
}
ds() { ldns-key2ds -n -2 "$1.key"; }          # SHA-256 DS of a KSK
soa() {
  printf '$TTL 300\n%s IN SOA ns-leaf.test. hostmaster.test. 1 3600 600 86400 300\n%s IN NS ns-leaf.test.\n' "$1" "$1"
}
leaf_zone() { # NAME: the generic content of a signed leaf
  local n=$1
  soa "$n"
  cat <<EOF
$n IN MX 10 mail.$n
mail.$n IN A 127.0.0.1
mail.$n IN AAAA ::1
_25._tcp.mail.$n IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
www.$n IN CNAME mail.$n
out.$n IN CNAME host.unsigned.test.
*.wild.$n IN MX 10 mail.$n
*.wild.$n IN A 127.0.0.2
EOF
}
sign() { # ZONE IN OUT KSK ZSK [ldns-signzone args...]
  local z=$1 in=$2 out=$3 k=$4 s=$5; shift 5
  ldns-signzone "$@" -i "$INC" -e "$EXP" -o "$z" -f "$out" "$in" "$k" "$s"
}
declare -A DSREC

# example.test: NSEC3 without opt-out, no extra iterations, empty salt
# (RFC 9276), plus a CNAME into a bogus zone and a DNAME to a wildcard.
read -r KK KZ < <(keygen ECDSAP256SHA256 example.test.)
{ leaf_zone example.test.
  echo "bad.example.test. IN CNAME mail.expired.test."
  echo "dn.example.test. IN DNAME wild.alg13.test."; } > "$Z/example.test.zone"
sign example.test. "$Z/example.test.zone" "$Z/example.test.signed" "$KK" "$KZ" -n -t 0
DSREC[example]=$(ds "$KK")

# one zone per algorithm, NSEC
for a in 8:RSASHA256:2048 10:RSASHA512:2048 13:ECDSAP256SHA256: 14:ECDSAP384SHA384: 15:ED25519: 16:ED448:; do
  IFS=: read -r num alg bits <<<"$a"
  read -r KK KZ < <(keygen "$alg" "alg$num.test." "$bits")
  leaf_zone "alg$num.test." > "$Z/alg$num.test.zone"
  sign "alg$num.test." "$Z/alg$num.test.zone" "$Z/alg$num.test.signed" "$KK" "$KZ"
  DSREC[alg$num]=$(ds "$KK")
done

# expired.test: signatures valid 2020-01-01 .. 2020-02-01
read -r KK KZ < <(keygen ECDSAP256SHA256 expired.test.)
leaf_zone expired.test. > "$Z/expired.test.zone"
ldns-signzone -i 20200101000000 -e 20200201000000 -o expired.test. -f "$Z/expired.test.signed" "$Z/expired.test.zone" "$KK" "$KZ"
DSREC[expired]=$(ds "$KK")

# future.test: inception ten days ahead
read -r KK KZ < <(keygen ECDSAP256SHA256 future.test.)
leaf_zone future.test. > "$Z/future.test.zone"
ldns-signzone -i $((NOW + 10*86400)) -e $((NOW + 40*86400)) -o future.test. -f "$Z/future.test.signed" "$Z/future.test.zone" "$KK" "$KZ"
DSREC[future]=$(ds "$KK")

# baddigest.test: signed; the parent's DS digest is altered
read -r KK KZ < <(keygen ECDSAP256SHA256 baddigest.test.)
leaf_zone baddigest.test. > "$Z/baddigest.test.zone"
sign baddigest.test. "$Z/baddigest.test.zone" "$Z/baddigest.test.signed" "$KK" "$KZ"
DSREC[baddigest]=$(ds "$KK" | awk '{d=$NF; $NF=(substr(d,1,1)=="0"?"1":"0") substr(d,2); print}' OFS='\t')

# nosig.test: the parent has a DS, the child is served unsigned
read -r KK KZ < <(keygen ECDSAP256SHA256 nosig.test.)
leaf_zone nosig.test. > "$Z/nosig.test.signed"
DSREC[nosig]=$(ds "$KK")

# unknownalg.test / unknowndigest.test: the only DS has algorithm 200 /
# digest type 200
read -r KK KZ < <(keygen ECDSAP256SHA256 unknownalg.test.)
leaf_zone unknownalg.test. > "$Z/unknownalg.test.zone"
sign unknownalg.test. "$Z/unknownalg.test.zone" "$Z/unknownalg.test.signed" "$KK" "$KZ"
DSREC[unknownalg]=$(ds "$KK" | awk '{$(NF-2)=200; print}' OFS='\t')
read -r KK KZ < <(keygen ECDSAP256SHA256 unknowndigest.test.)
leaf_zone unknowndigest.test. > "$Z/unknowndigest.test.zone"
sign unknowndigest.test. "$Z/unknowndigest.test.zone" "$Z/unknowndigest.test.signed" "$KK" "$KZ"
DSREC[unknowndigest]=$(ds "$KK" | awk '{$(NF-1)=200; print}' OFS='\t')

# iter200.test: NSEC3 with 200 extra iterations (above RFC 9276's limit)
read -r KK KZ < <(keygen ECDSAP256SHA256 iter200.test.)
leaf_zone iter200.test. > "$Z/iter200.test.zone"
sign iter200.test. "$Z/iter200.test.zone" "$Z/iter200.test.signed" "$KK" "$KZ" -n -t 200 -s abcd
DSREC[iter200]=$(ds "$KK")

# unsigned.test: unsigned, no DS
{ soa unsigned.test.; cat <<'EOF'
unsigned.test. IN MX 10 host.unsigned.test.
host.unsigned.test. IN A 127.0.0.3
_25._tcp.host.unsigned.test. IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
back.unsigned.test. IN CNAME mail.example.test.
EOF
} > "$Z/unsigned.test.signed"

CHILDREN="example alg8 alg10 alg13 alg14 alg15 alg16 expired future baddigest nosig unknownalg unknowndigest iter200 unsigned"

# test.: NSEC3 opt-out
read -r TK TS < <(keygen ECDSAP256SHA256 test.)
{ printf '$TTL 300\ntest. IN SOA ns-tld.test. hostmaster.test. 1 3600 600 86400 300\ntest. IN NS ns-tld.test.\n'
  printf 'ns-tld.test. IN A 127.0.0.11\nns-leaf.test. IN A 127.0.0.12\n'
  for c in $CHILDREN; do
    echo "$c.test. IN NS ns-leaf.test."
    [ -n "${DSREC[$c]:-}" ] && echo "${DSREC[$c]}"
  done; } > "$Z/test.zone"
sign test. "$Z/test.zone" "$Z/test.signed" "$TK" "$TS" -n -p -t 0
TESTDS=$(ds "$TK")

# the root (NSEC, like the real one)
read -r RK RS < <(keygen ECDSAP256SHA256 .)
{ printf '$TTL 300\n. IN SOA ns-root.test. hostmaster.test. 1 3600 600 86400 300\n. IN NS ns-root.test.\n'
  printf 'test. IN NS ns-tld.test.\nns-root.test. IN A 127.0.0.10\nns-tld.test. IN A 127.0.0.11\n'
  echo "$TESTDS"; } > "$Z/root.zone"
sign . "$Z/root.zone" "$Z/root.signed" "$RK" "$RS"
ds "$RK" > "$WORK/root.ds"
awk '{printf "trust-anchors {\n  . static-ds %s %s %s \"%s\";\n};\n",$5,$6,$7,$8}' "$WORK/root.ds" > "$WORK/delv-anchor.conf"
nsd-checkzone . "$Z/root.signed" >/dev/null
for f in "$Z"/*.test.signed; do nsd-checkzone "$(basename "$f" .signed)." "$f" >/dev/null; done

# --- 3. daemons -----------------------------------------------------------------
nsd_conf() { # PORT
  cat <<EOF
server:
  ip-address: 127.0.0.1@$1
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "$Z"
  database: ""
  zonelistfile: "$WORK/nsd.zonelist"
  xfrdfile: "$WORK/nsd.xfrd"
  xfrdir: "$WORK"
  pidfile: "$WORK/nsd.pid"
  logfile: "$WORK/nsd.log"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: "."
  zonefile: "root.signed"
zone:
  name: "test."
  zonefile: "test.signed"
EOF
  for c in $CHILDREN; do printf 'zone:\n  name: "%s.test."\n  zonefile: "%s.test.signed"\n' "$c" "$c"; done
}
common="  username: \"\"
  chroot: \"\"
  directory: \"$WORK\"
  use-syslog: no
  do-ip6: no
  do-not-query-localhost: no
  local-zone: \"test.\" nodefault
  qname-minimisation: no
  aggressive-nsec: no"

wait_dns() { # PORT: until it answers
  for _ in $(seq 100); do
    dig +time=1 +tries=1 +short @127.0.0.1 -p "$1" . SOA >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

started=
for _ in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 30000))
  nsd_conf "$PORT" > "$WORK/nsd.conf"
  nsd-checkconf "$WORK/nsd.conf"
  # The upstream of Validating: an ordinary recursive resolver that does
  # not validate (module-config "iterator") and passes DNSSEC records on.
  cat > "$WORK/unbound-iter.conf" <<EOF
server:
  interface: 127.0.0.1@$((PORT + 1))
  pidfile: "$WORK/unbound-iter.pid"
  logfile: "$WORK/unbound-iter.log"
  module-config: "iterator"
$common
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$PORT
EOF
  unbound-checkconf "$WORK/unbound-iter.conf" >/dev/null
  if nsd -c "$WORK/nsd.conf" 2>>"$WORK/start.log" && wait_dns "$PORT" &&
     unbound -c "$WORK/unbound-iter.conf" 2>>"$WORK/start.log" && wait_dns $((PORT + 1)); then
    started=1; break
  fi
  for p in "$WORK"/*.pid; do [ -s "$p" ] && kill "$(cat "$p")" 2>/dev/null; rm -f "$p"; done
done
[ -n "$started" ] || { echo "interop: could not start nsd/unbound" >&2; cat "$WORK/start.log" >&2; exit 1; }

# libunbound configuration for unbound-host: a validating stub forwarding
# straight to nsd, like our Validating over its upstream.
cat > "$WORK/unbound-host.conf" <<EOF
server:
  trust-anchor-file: "$WORK/root.ds"
  val-log-level: 2
$common
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$PORT
EOF
unbound-checkconf "$WORK/unbound-host.conf" >/dev/null

echo "interop: zones in $WORK, nsd on 127.0.0.1:$PORT, unbound (iterator) on 127.0.0.1:$((PORT + 1))"

# --- 4. the suite -----------------------------------------------------------------
cd "$ROOT"
SMTPTLS_INTEROP_DIR=$WORK SMTPTLS_INTEROP_AUTH=127.0.0.1:$PORT SMTPTLS_INTEROP_UPSTREAM=127.0.0.1:$((PORT + 1)) \
  "$GO" test -count=1 -v "$@" ./interop/
