#!/bin/bash
# Interop suite for resolver.Validating: real signer, real authoritative
# server, real validators.
#
#   bash interop/run.sh            (from the module root, or from anywhere)
#
# 1. installs ldnsutils, nsd, unbound, unbound-host and bind9-dnsutils with
#    apt-get when a tool is missing (the only step that needs root);
# 2. signs a private root ".", a TLD "test." (NSEC3 opt-out, like real TLDs)
#    and some sixty zones below it with ldns-signzone, in a fresh temporary
#    directory: every algorithm, NSEC and NSEC3 (opt-out, salt, iterations
#    up to and above RFC 9276's limit), wildcards, CNAME and DNAME chains,
#    DS sets with unknown and mixed algorithms and digests, revoked and
#    unknown-algorithm keys, keys sharing one tag (tagclash/), signatures
#    expired or not yet valid by hours and days, delegations without DS,
#    and signed zones edited by hand afterwards (tamper.test);
# 3. serves every zone from one nsd on a loopback port, and runs an unbound
#    with module-config "iterator" (no validation) forwarding to it: the
#    ordinary recursive resolver that Validating uses as its upstream;
# 4. runs the Go tests of ./interop (SMTPTLS_INTEROP_DIR set), which ask
#    every scenario of questions.txt of Validating, of unbound-host
#    (validating libunbound, forwarding to nsd) and of delv, print the
#    verdict table (security and outcome: secure/DATA, insecure/NXDOMAIN,
#    bogus/SERVFAIL ...), and fail on any disagreement not listed in
#    interop/expected-differences.txt; questions-anchors.txt (trust anchors
#    below the root) once Validating supports them; then tampered-response
#    scenarios through a Go proxy (our verdict only).
#
# SMTPTLS_INTEROP_KEEP=1 leaves the lab running instead of testing and
# prints the environment for "go test ./interop/" and how to stop it.
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
# Every zone is built here; questions.txt names, for each scenario, what it
# tests. A child's DS lines go into its parent, so zones are built leaves
# first, then test., then the root.
K=$WORK/keys Z=$WORK/zones
mkdir -p "$K" "$Z"
cd "$K"
NOW=$(date -u +%s)
H=3600 D=86400
INC=$((NOW - H))             # inception an hour ago
EXP=$((NOW + 30*D))          # expiration in 30 days

keygen() { # ALG NAME [bits] -> "KSK ZSK" (key file bases)
  local alg=$1 name=$2 bits=${3:-} b=()
  [ -n "$bits" ] && b=(-b "$bits")
  echo "$(ldns-keygen -a "$alg" "${b[@]}" -k -r /dev/urandom "$name") $(ldns-keygen -a "$alg" "${b[@]}" -r /dev/urandom "$name")"
}
ds() { ldns-key2ds -f -n "-${2:-2}" "$1.key"; }  # DS of a key (digest 2 = SHA-256)
soa() {
  printf '$TTL 300\n%s IN SOA ns-leaf.test. hostmaster.test. 1 3600 600 86400 300\n%s IN NS ns-leaf.test.\n' "$1" "$1"
}
leaf_zone() { # NAME: the generic content of a leaf
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
sign() { # ZONE IN OUT KEY... [-- ldns-signzone args...]: later -i/-e override
  local z=$1 in=$2 out=$3 keys=() ; shift 3
  while [ $# -gt 0 ] && [ "$1" != -- ]; do keys+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  ldns-signzone -i "$INC" -e "$EXP" "$@" -o "$z" -f "$out" "$in" "${keys[@]}"
}
# DS[zone]: the DS lines a parent publishes; DELEG[parent]: its delegations;
# LATE[parent]: delegations added after signing, outside the NSEC3 chain, as
# an opt-out signer leaves insecure delegations (ldns-signzone -p still
# gives them NSEC3 records).
declare -A DS DELEG LATE KSK ZSK
delegate() { # PARENT CHILD [DS lines]
  DELEG[$1]+="$2. IN NS ns-leaf.test."$'\n'
  [ -n "${3:-}" ] && DELEG[$1]+="$3"$'\n'
  return 0
}
delegate_late() { LATE[$1]+="$2. 300 IN NS ns-leaf.test."$'\n'; }
# mkleaf NAME ALG EXTRA [ldns-signzone args]: a signed leaf with the generic
# content, EXTRA lines and its delegations; DS[NAME] = SHA-256 DS of the KSK.
mkleaf() {
  local n=$1 alg=$2 extra=$3 kk kz; shift 3
  read -r kk kz < <(keygen "$alg" "$n.")
  KSK[$n]=$kk ZSK[$n]=$kz
  { leaf_zone "$n."; printf '%s\n' "$extra"; printf '%s' "${DELEG[$n]:-}"; } > "$Z/$n.zone"
  sign "$n." "$Z/$n.zone" "$Z/$n.signed" "$kk" "$kz" -- "$@"
  printf '%s' "${LATE[$n]:-}" >> "$Z/$n.signed"
  DS[$n]=$(ds "$kk")
}
unsigned_leaf() { # NAME EXTRA: served unsigned
  { leaf_zone "$1."; printf '%s\n' "$2"; printf '%s' "${DELEG[$1]:-}"; } > "$Z/$1.signed"
}
# child LABEL [DS lines]: a child of test.; without DS outside the NSEC3 chain
child() { if [ -n "${2:-}" ]; then delegate test "$1.test" "$2"; else delegate_late test "$1.test"; fi; }
# Rewrite a signed zone with awk (hand-made tampering after signing).
edit() { # ZONE AWKPROG
  awk -v OFS='\t' "$2" "$Z/$1.signed" > "$Z/$1.tmp" && mv "$Z/$1.tmp" "$Z/$1.signed"
}

# ---- grandchildren: delegations below the leaves ----
mkleaf sub.example.test 13 ""                 # signed, but example.test has no DS for it
delegate example.test sub.example.test
mkleaf secsub.example.test 13 ""
delegate example.test secsub.example.test "${DS[secsub.example.test]}"
unsigned_leaf sub.alg13.test ""               # unsigned, NSEC proof of no DS in alg13.test
delegate alg13.test sub.alg13.test
mkleaf secsub.alg13.test 13 "" -n -t 0        # NSEC3 child of an NSEC parent
delegate alg13.test secsub.alg13.test "${DS[secsub.alg13.test]}"
unsigned_leaf ins.optout.test ""              # unsigned delegation inside an opt-out span
delegate_late optout.test ins.optout.test
unsigned_leaf ins3.optout.test ""             # unsigned delegation with an (opt-out) NSEC3 of its own
delegate optout.test ins3.optout.test
mkleaf sec.optout.test 13 ""
delegate optout.test sec.optout.test "${DS[sec.optout.test]}"
mkleaf gone.tamper.test 13 ""                 # the parent's NSEC for this cut is removed after signing
delegate tamper.test gone.tamper.test
mkleaf dsgone.tamper.test 13 ""               # the parent's DS is removed after signing
delegate tamper.test dsgone.tamper.test "${DS[dsgone.tamper.test]}"
mkleaf dsadd.tamper.test 13 ""                # a DS is added to the parent after signing
delegate tamper.test dsadd.tamper.test "${DS[dsadd.tamper.test]}"

# ---- example.test: NSEC3, no opt-out, no extra iterations, empty salt
# (RFC 9276); CNAME and DNAME chains out of an NSEC3 zone.
mkleaf example.test 13 "bad.example.test. IN CNAME mail.expired.test.
dn.example.test. IN DNAME wild.alg13.test.
x2.example.test. IN CNAME mail.alg13.test.
nx.example.test. IN CNAME nosuch.alg13.test.
dnu.example.test. IN DNAME unsigned.test.
dnx.example.test. IN DNAME nosuch.alg13.test.
dnb.example.test. IN DNAME expired.test.
dni.example.test. IN DNAME example.test." -n -t 0
child example "${DS[example.test]}"

# ---- one zone per algorithm, NSEC; alg13.test also holds chains (NSEC).
ALG13_EXTRA="cx.alg13.test. IN CNAME mail.example.test.
cu.alg13.test. IN CNAME host.unsigned.test.
cb.alg13.test. IN CNAME mail.future.test.
cns.alg13.test. IN CNAME mail.nosig.test.
cnx.alg13.test. IN CNAME nosuch.example.test.
cw.alg13.test. IN CNAME foo.wild.example.test.
c3.alg13.test. IN CNAME x2.example.test.
co.alg13.test. IN CNAME nosuch.test.
ci.alg13.test. IN CNAME nosuch.iter200.test.
cua.alg13.test. IN CNAME mail.unknownalg.test.
isl.alg13.test. IN CNAME mail.island.test.
loop1.alg13.test. IN CNAME loop2.alg13.test.
loop2.alg13.test. IN CNAME loop1.alg13.test.
*.wc.alg13.test. IN CNAME mail.alg13.test.
dx.alg13.test. IN DNAME example.test.
dself.alg13.test. IN DNAME wild.alg13.test.
txt.alg13.test. IN TXT \"v=spf1 -all\""
for a in 5:RSASHA1:1024 7:RSASHA1-NSEC3-SHA1:1024 8:RSASHA256:2048 10:RSASHA512:2048 13:ECDSAP256SHA256: \
         14:ECDSAP384SHA384: 15:ED25519: 16:ED448:; do
  IFS=: read -r num alg bits <<<"$a"
  read -r kk kz < <(keygen "$alg" "alg$num.test." "$bits")
  { leaf_zone "alg$num.test."; [ "$num" = 13 ] && printf '%s\n' "$ALG13_EXTRA"; printf '%s' "${DELEG[alg$num.test]:-}"; } > "$Z/alg$num.test.zone"
  n3=(); [ "$num" = 7 ] && n3=(-n -t 0)
  sign "alg$num.test." "$Z/alg$num.test.zone" "$Z/alg$num.test.signed" "$kk" "$kz" -- "${n3[@]}"
  child "alg$num" "$(ds "$kk")"
done
# RSA key sizes: 512 bits (below what Go verifies) and 1024 bits
for b in 512 1024; do
  read -r kk kz < <(keygen RSASHA256 "rsa$b.test." "$b")
  leaf_zone "rsa$b.test." > "$Z/rsa$b.test.zone"
  sign "rsa$b.test." "$Z/rsa$b.test.zone" "$Z/rsa$b.test.signed" "$kk" "$kz"
  child "rsa$b" "$(ds "$kk")"
done
# two algorithms in one zone: 13 and 15 (both validated), 13 and 16 (Ed448)
for p in 15:ED25519 16:ED448; do
  IFS=: read -r num alg <<<"$p"
  n=dual$num.test
  read -r kk kz < <(keygen ECDSAP256SHA256 "$n.")
  read -r k2 z2 < <(keygen "$alg" "$n.")
  leaf_zone "$n." > "$Z/$n.zone"
  sign "$n." "$Z/$n.zone" "$Z/$n.signed" "$kk" "$kz" "$k2" "$z2"
  child "dual$num" "$(ds "$kk")"$'\n'"$(ds "$k2")"
done

# ---- signature validity: well beyond any clock skew a validator allows
# (unbound: 10% of the validity period, at least 1 hour, at most 1 day).
timed() { # NAME INCEPTION EXPIRATION
  mkleaf "$1" 13 "" -i "$2" -e "$3"; child "${1%.test}" "${DS[$1]}"
}
timed expired.test 20200101000000 20200201000000
timed future.test $((NOW + 10*D)) $((NOW + 40*D))
timed exp2d.test $((NOW - 10*D)) $((NOW - 2*D))
timed exp3h.test $((NOW - 13*H)) $((NOW - 3*H))
timed fut3h.test $((NOW + 3*H)) $((NOW + 13*H))
timed fut2d.test $((NOW + 2*D)) $((NOW + 12*D))
timed longvalid.test 20200101000000 20370101000000
# parts of a zone expired: sign twice with the same keys and mix the files
mixsigned() { # NAME NSEC3? AWK-FILTER-FOR-EXPIRED-LINES
  local n=$1 kk kz; shift
  read -r kk kz < <(keygen ECDSAP256SHA256 "$n.")
  leaf_zone "$n." > "$Z/$n.zone"
  sign "$n." "$Z/$n.zone" "$Z/$n.fresh" "$kk" "$kz"
  sign "$n." "$Z/$n.zone" "$Z/$n.old" "$kk" "$kz" -- -i $((NOW - 10*D)) -e $((NOW - 2*D))
  { awk -v OFS='\t' "!($1)" "$Z/$n.fresh"; awk -v OFS='\t' "$1" "$Z/$n.old"; } > "$Z/$n.signed"
  child "${n%.test}" "$(ds "$kk")"
}
rrsig_of() { echo "\$4==\"RRSIG\" && \$5==\"$1\""; }
mixsigned expdata.test "$(rrsig_of MX) || $(rrsig_of A) || $(rrsig_of AAAA) || $(rrsig_of TLSA) || $(rrsig_of CNAME) || $(rrsig_of SOA) || $(rrsig_of NS)"
mixsigned expkey.test "$(rrsig_of DNSKEY)"
mixsigned expnsec.test "$(rrsig_of NSEC)"
# expone.test: the apex MX has two signatures, one by each ZSK; one expired
read -r kk kz < <(keygen ECDSAP256SHA256 expone.test.)
z2=$(ldns-keygen -a ECDSAP256SHA256 -r /dev/urandom expone.test.)
leaf_zone expone.test. > "$Z/expone.test.zone"
sign expone.test. "$Z/expone.test.zone" "$Z/expone.test.fresh" "$kk" "$kz" "$z2"
sign expone.test. "$Z/expone.test.zone" "$Z/expone.test.old" "$kk" "$kz" "$z2" -- -i $((NOW - 10*D)) -e $((NOW - 2*D))
t1=${kz##*+}; t1=$((10#$t1))
sel="\$1==\"expone.test.\" && $(rrsig_of MX) && \$11==$t1"
{ awk -v OFS='\t' "!($sel)" "$Z/expone.test.fresh"; awk -v OFS='\t' "$sel" "$Z/expone.test.old"; } > "$Z/expone.test.signed"
child expone "$(ds "$kk")"

# ---- DS sets: algorithms and digests, known and unknown, mixed
dsleaf() { # NAME DS-LINES-COMMAND(uses $kk, $kz): signed leaf, custom DS set
  local n=$1 kk kz; shift
  read -r kk kz < <(keygen ECDSAP256SHA256 "$n.")
  KSK[$n]=$kk
  leaf_zone "$n." > "$Z/$n.zone"
  sign "$n." "$Z/$n.zone" "$Z/$n.signed" "$kk" "$kz"
  child "${n%.test}" "$(eval "$1")"
}
setf() { awk -v f="$1" -v v="$2" '{$(NF-f)=v; print}' OFS='\t'; }   # set field NF-f
flipd() { awk '{d=$NF; $NF=(substr(d,1,1)=="0"?"1":"0") substr(d,2); print}' OFS='\t'; }
otherkey() { ldns-keygen -a ECDSAP256SHA256 -k -r /dev/urandom "$1."; }
dsleaf baddigest.test 'ds $kk | flipd'
dsleaf unknownalg.test 'ds $kk | setf 2 200'
dsleaf unknowndigest.test 'ds $kk | setf 1 200'
dsleaf dsalg1.test 'ds $kk | setf 2 1'
dsleaf dsgost.test 'ds $kk | setf 1 3'
dsleaf dsmixalg.test 'ds $kk; ds $kk | setf 2 200'
dsleaf dsmixdig.test 'ds $kk; ds $kk | setf 1 200'
dsleaf dssha1.test 'ds $kk 1'
dsleaf dssha384.test 'ds $kk 4'
dsleaf dssha1bad.test 'ds $kk; ds $kk 1 | flipd'
dsleaf dssha256bad.test 'ds $kk | flipd; ds $kk 1'
dsleaf dstwo.test 'ds $kk | flipd; ds $kk'
dsleaf dsother.test 'ds "$(otherkey dsother.test)"'
dsleaf dsother2.test 'ds "$(otherkey dsother2.test)"; ds $kk'
dsleaf dsalgwrong.test 'ds $kk | setf 2 8'
dsleaf dszsk.test 'ds $kz'
dsleaf nosig.test 'ds $kk'
cp "$Z/nosig.test.zone" "$Z/nosig.test.signed"   # the parent has a DS, the child is served unsigned

# ---- keys: revoked (RFC 5011 flag 0x80), unknown algorithm, one tag
revoke_key() { # BASE: set the REVOKE bit in the .key file ldns-signzone reads
  awk -v OFS='\t' '{for (i = 1; i < NF; i++) if ($i == "DNSKEY") { $(i+1) += 128; break }; print}' "$1.key" > "$1.tmp" &&
    mv "$1.tmp" "$1.key"
}
read -r kk kz < <(keygen ECDSAP256SHA256 revoked.test.)
revoke_key "$kk"
leaf_zone revoked.test. > "$Z/revoked.test.zone"
sign revoked.test. "$Z/revoked.test.zone" "$Z/revoked.test.signed" "$kk" "$kz"
child revoked "$(ds "$kk")"
read -r kk kz < <(keygen ECDSAP256SHA256 revokedplus.test.)
k2=$(ldns-keygen -a ECDSAP256SHA256 -k -r /dev/urandom revokedplus.test.)
revoke_key "$k2"
leaf_zone revokedplus.test. > "$Z/revokedplus.test.zone"
sign revokedplus.test. "$Z/revokedplus.test.zone" "$Z/revokedplus.test.signed" "$kk" "$k2" "$kz"
child revokedplus "$(ds "$kk")"$'\n'"$(ds "$k2")"
read -r kk kz < <(keygen ECDSAP256SHA256 revokedzsk.test.)
revoke_key "$kz"
leaf_zone revokedzsk.test. > "$Z/revokedzsk.test.zone"
sign revokedzsk.test. "$Z/revokedzsk.test.zone" "$Z/revokedzsk.test.signed" "$kk" "$kz"
child revokedzsk "$(ds "$kk")"
# unknown-algorithm DNSKEY (algorithm 200) in the key set, with and without a DS
UNKKEY="IN DNSKEY 257 3 200 AwEAAbOFAxl+Lkt0UMglZizKEC1AxUu8zlj65KYatR5wBWMrh18TYzK/ig6Y1t5YTWCO68bynorpNu9fqNFALX7bVl9/gybA0v0EhF+dgXmoUfRX7ksMGgBvtfa2/Y9a3klXNLqkTszIQ4PEMVCjtryl19Be9/PkFeC9ITjgMRQsQhmB39eyMYnal+f3bUxKk4fq7cuEU0dbRpue4H/N6jPucXWOwiMAkTJhghqgy+o9FfIp+tR/emKao94/wpVXDcPf5B18j7xz2SvTTxiuqCzCMtsxnikZHcoh1j4g+Y1B8zIMIvrEM+pZGhh/Yuf4RwCBgaYCi9hpiMWVvS4WBzx0/lU="
for n in unkkey unkkeyds; do
  read -r kk kz < <(keygen ECDSAP256SHA256 "$n.test.")
  { leaf_zone "$n.test."; echo "$n.test. $UNKKEY"; } > "$Z/$n.test.zone"
  sign "$n.test." "$Z/$n.test.zone" "$Z/$n.test.signed" "$kk" "$kz"
  d=$(ds "$kk")
  [ $n = unkkeyds ] && d+=$'\n'"$n.test. 3600 IN DS 40000 200 2 $(printf '%064d' 7)"
  child $n "$d"
done
# keys with one tag (generated by tagclash: two KSKs and a ZSK, one tag)
(cd "$ROOT" && "$GO" build -o "$WORK/tagclash" ./interop/tagclash)
clash() { # NAME -> "A B C" bases (KSK, KSK, ZSK)
  echo $("$WORK/tagclash" "$1." "$K/$1")
}
# ldns-signzone publishes one DNSKEY per key tag, so the keys are put in the
# zone file and it is signed with -d.
read -r ka kb kc < <(clash tagclash.test)        # KSK A and ZSK C share the tag; DS for A
{ leaf_zone tagclash.test.; cat "$ka.key" "$kc.key"; } > "$Z/tagclash.test.zone"
sign tagclash.test. "$Z/tagclash.test.zone" "$Z/tagclash.test.signed" "$ka" "$kc" -- -d
child tagclash "$(ds "$ka")"
read -r ka kb kc < <(clash tagclash2.test)       # KSKs A and B and ZSK C share the tag; DS for B
{ leaf_zone tagclash2.test.; cat "$ka.key" "$kb.key" "$kc.key"; } > "$Z/tagclash2.test.zone"
sign tagclash2.test. "$Z/tagclash2.test.zone" "$Z/tagclash2.test.signed" "$ka" "$kb" "$kc" -- -d
child tagclash2 "$(ds "$kb")"
read -r ka kb kc < <(clash tagclash3.test)       # DS for A; A, B and C published, only B signs the keys
{ leaf_zone tagclash3.test.; cat "$ka.key" "$kb.key" "$kc.key"; } > "$Z/tagclash3.test.zone"
sign tagclash3.test. "$Z/tagclash3.test.zone" "$Z/tagclash3.test.signed" "$kb" "$kc" -- -d
child tagclash3 "$(ds "$ka")"

# ---- NSEC3 parameters
mkleaf iter150.test 13 "" -n -t 150 -s abcd; child iter150 "${DS[iter150.test]}"
mkleaf iter151.test 13 "" -n -t 151 -s abcd; child iter151 "${DS[iter151.test]}"
mkleaf iter200.test 13 "" -n -t 200 -s abcd; child iter200 "${DS[iter200.test]}"
mkleaf salt.test 13 "" -n -t 0 -s "$(printf 'c0ffee%.0s' $(seq 20))"; child salt "${DS[salt.test]}"
mkleaf optout.test 13 "" -n -p -t 0; child optout "${DS[optout.test]}"
mkleaf wcapex.test 13 "*.wcapex.test. IN A 127.0.0.4
*.wcapex.test. IN MX 10 mail.wcapex.test." -n -t 0
child wcapex "${DS[wcapex.test]}"
mkleaf wcnsec.test 13 "*.wcnsec.test. IN A 127.0.0.4
*.wcnsec.test. IN MX 10 mail.wcnsec.test."
child wcnsec "${DS[wcnsec.test]}"

# ---- tamper.test: NSEC zone edited after signing, one name per edit
mkleaf tamper.test 13 "$(for h in ok swap nosig alter lbl signer algsig unkalg expext dupsig wrongtype ttl extra; do
  echo "$h.tamper.test. IN A 127.0.0.5"; done)"
child tamper "${DS[tamper.test]}"
edit tamper.test '
  $4=="RRSIG" && $5=="A" && $1=="ok.tamper.test." { oksig=$0 }
  $1=="swap.tamper.test." && $4=="RRSIG" && $5=="A" { next }            # its RRSIG is replaced below
  $1=="nosig.tamper.test." && $4=="RRSIG" && $5=="A" { next }           # its RRSIG is removed
  $1=="alter.tamper.test." && $4=="A" { $5="127.0.0.66" }               # data changed after signing
  $1=="lbl.tamper.test." && $4=="RRSIG" && $5=="A" { $7=$7-1 }          # Labels: claims a wildcard
  $1=="signer.tamper.test." && $4=="RRSIG" && $5=="A" { $12="alg13.test." }
  $1=="algsig.tamper.test." && $4=="RRSIG" && $5=="A" { print; $6=200 } # plus an algorithm-200 copy
  $1=="unkalg.tamper.test." && $4=="RRSIG" && $5=="A" { $6=200 }        # the only RRSIG: algorithm 200
  $1=="expext.tamper.test." && $4=="RRSIG" && $5=="A" { $9="20371231000000" }
  $1=="dupsig.tamper.test." && $4=="RRSIG" && $5=="A" { s=$13; print; $13=(substr(s,1,1)=="A"?"B":"A") substr(s,2) }
  $1=="wrongtype.tamper.test." && $4=="RRSIG" && $5=="A" { $5="TXT" }
  $1=="ttl.tamper.test." && $4=="A" { $2=86400 }                        # TTL above the Original TTL
  $1=="gone.tamper.test." && ($4=="NSEC" || ($4=="RRSIG" && $5=="NSEC")) { next }
  $1=="dsgone.tamper.test." && ($4=="DS" || ($4=="RRSIG" && $5=="DS")) { next }
  $1=="dsadd.tamper.test." && $4=="DS" && !added { print; $5=40000; $6=200; added=1 }
  { print }
  END {
    split(oksig, f, "\t"); f[1]="swap.tamper.test."; s=f[1]; for (i=2; i in f; i++) s=s "\t" f[i]; print s
    print "extra.tamper.test.\t300\tIN\tTXT\t\"added after signing\""
    print "new.tamper.test.\t300\tIN\tA\t127.0.0.9"
  }'

# ---- anchors beyond the root (questions-anchors.txt): island.test is
# signed but its parent has no DS for it
mkleaf island.test 13 ""; child island
ds "${KSK[island.test]}" > "$WORK/anchor-island.ds"
ds "${KSK[island.test]}" | flipd > "$WORK/anchor-islandbad.ds"
ds "${KSK[example.test]}" > "$WORK/anchor-example.ds"
ds "$(otherkey alg8.test)" > "$WORK/anchor-alg8wrong.ds"
ds "${KSK[baddigest.test]}" > "$WORK/anchor-baddigest.ds"

# ---- unsigned.test: unsigned, no DS; chains back into signed zones
{ soa unsigned.test.; cat <<'EOF'
unsigned.test. IN MX 10 host.unsigned.test.
host.unsigned.test. IN A 127.0.0.3
_25._tcp.host.unsigned.test. IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
back.unsigned.test. IN CNAME mail.example.test.
backbad.unsigned.test. IN CNAME mail.expired.test.
dnback.unsigned.test. IN DNAME example.test.
EOF
} > "$Z/unsigned.test.signed"
child unsigned

# ---- test.: NSEC3 opt-out, like real TLDs
read -r TK TS < <(keygen ECDSAP256SHA256 test.)
{ printf '$TTL 300\ntest. IN SOA ns-tld.test. hostmaster.test. 1 3600 600 86400 300\ntest. IN NS ns-tld.test.\n'
  printf 'ns-tld.test. IN A 127.0.0.11\nns-leaf.test. IN A 127.0.0.12\n'
  printf '%s' "${DELEG[test]}"; } > "$Z/test.zone"
sign test. "$Z/test.zone" "$Z/test.signed" "$TK" "$TS" -- -n -p -t 0
printf '%s' "${LATE[test]}" >> "$Z/test.signed"
ds "$TK" > "$WORK/anchor-test.ds"

# ---- the root (NSEC, like the real one)
read -r RK RS < <(keygen ECDSAP256SHA256 .)
{ printf '$TTL 300\n. IN SOA ns-root.test. hostmaster.test. 1 3600 600 86400 300\n. IN NS ns-root.test.\n'
  printf 'test. IN NS ns-tld.test.\nns-root.test. IN A 127.0.0.10\nns-tld.test. IN A 127.0.0.11\n'
  cat "$WORK/anchor-test.ds"; } > "$Z/root.zone"
sign . "$Z/root.zone" "$Z/root.signed" "$RK" "$RS"
ds "$RK" > "$WORK/root.ds"
cp "$WORK/root.ds" "$WORK/anchor-root.ds"
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
EOF
  for f in "$Z"/*.test.signed "$Z"/test.signed; do
    f=$(basename "$f")
    printf 'zone:\n  name: "%s"\n  zonefile: "%s"\n' "${f%.signed}." "$f"
  done
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
if [ -n "${SMTPTLS_INTEROP_KEEP:-}" ]; then
  # Leave the lab running for manual runs of "go test ./interop/".
  trap - EXIT INT TERM
  echo "export SMTPTLS_INTEROP_DIR=$WORK SMTPTLS_INTEROP_AUTH=127.0.0.1:$PORT SMTPTLS_INTEROP_UPSTREAM=127.0.0.1:$((PORT + 1))"
  echo "to stop: kill $(cat "$WORK"/*.pid | tr '\n' ' ')&& rm -rf $WORK"
  exit 0
fi
SMTPTLS_INTEROP_DIR=$WORK SMTPTLS_INTEROP_AUTH=127.0.0.1:$PORT SMTPTLS_INTEROP_UPSTREAM=127.0.0.1:$((PORT + 1)) \
  "$GO" test -count=1 -v "$@" ./interop/
