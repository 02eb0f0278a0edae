# shellcheck shell=bash
# Sourced by the interop scripts (interop/run.sh, deliver/interop.sh,
# examples/postfix-tlspolicy/interop.sh): installs the Debian packages of
# the commands they need, when a command is missing.
#
#   . "$ROOT/.ci/lib/need-packages.sh"
#   need_packages LABEL COMMAND:PACKAGE...
#
# Each argument names a command and the Debian package that provides it.
# /usr/sbin and /sbin are appended to PATH first (Debian puts daemons and
# Postfix's commands there, and a non-root or non-login shell may lack
# them), and stay there for the caller. A command is present when it is
# then on PATH. The packages of the missing commands are installed with
# apt-get, which needs root: as another user the function names them and
# returns 1, as it does when a command is still missing after the install.
# LABEL starts every message. Nothing is done when nothing is missing.
need_packages() {
  local label=$1 t pkgs
  shift
  local -a need=() still=()
  case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin ;; esac
  case ":$PATH:" in *:/sbin:*) ;; *) PATH=$PATH:/sbin ;; esac
  export PATH
  for t in "$@"; do
    command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
  done
  if [ ${#need[@]} -eq 0 ]; then
    return 0
  fi
  pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" != 0 ]; then
    echo "$label: missing packages: $pkgs(run as root, or install them)" >&2
    return 1
  fi
  echo "$label: installing $pkgs"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null || {
    echo "$label: apt-get could not install $pkgs" >&2
    return 1
  }
  hash -r
  for t in "$@"; do
    command -v "${t%%:*}" >/dev/null 2>&1 || still+=("${t%%:*}")
  done
  if [ ${#still[@]} -gt 0 ]; then
    echo "$label: still missing after the install: ${still[*]}" >&2
    return 1
  fi
}
