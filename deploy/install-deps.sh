#!/usr/bin/env bash
# Installs every Debian 12 package Service Cloud needs to build, test and run
# locally. Idempotent: when everything is installed already it only asks dpkg
# and exits, so CI can call it on every run.
#
# The distribution's own PostgreSQL cluster and mosquitto service are not
# wanted: our programs and tests run private instances on other ports
# (deploy/sc-local, tests/integration). If this script installs those
# packages, it keeps their services from starting (policy-rc.d during the
# install) and, under systemd, stops and disables them.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  clang libclang-rt-dev       # clang + its runtime: libFuzzer and sanitizers
  libevent-dev libpq-dev libcjson-dev libpaho-mqtt-dev libcmocka-dev libssl-dev
  postgresql-15               # server binaries in /usr/lib/postgresql/15/bin
  mosquitto mosquitto-clients
  openssl curl python3
  chromium                    # headless browser: the zone dashboard test
  dpkg-dev systemd            # the package test: dpkg-shlibdeps, systemd-analyze verify
)

log() { printf 'install-deps: %s\n' "$*" >&2; }

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  log "all ${#packages[@]} packages installed"
  exit 0
fi

if ((EUID != 0)); then
  log "missing: ${missing[*]}; run me as root (or: sudo $0)"
  exit 1
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Keep maintainer scripts from starting services during the install
# (invoke-rc.d and deb-systemd-invoke both honour policy-rc.d; exit 101 means
# "action forbidden"). Only if no policy is in place already, and removed again
# however we exit.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# temporary, from Service Cloud deploy/install-deps.sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

# A fresh machine (or container image) often has no package lists at all;
# otherwise try with the lists we have and update only if that fails.
apt_install() {
  apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
}
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! apt_install; then
  apt-get update -o Dpkg::Use-Pty=0
  apt_install
fi

# Under systemd, a unit enabled by the install would start at the next boot
# and take ports 5432/1883: stop and disable the ones this run installed.
# Without systemd as PID 1 there is no unit to manage (and policy-rc.d kept
# the init scripts from starting anything).
if [[ "$(cat /proc/1/comm 2>/dev/null)" == systemd ]]; then
  units=()
  [[ " ${missing[*]} " == *" postgresql-15 "* ]] && units+=(postgresql.service postgresql@15-main.service)
  [[ " ${missing[*]} " == *" mosquitto "* ]] && units+=(mosquitto.service)
  for u in "${units[@]}"; do
    log "stopping and disabling $u"
    systemctl disable --now "$u" >/dev/null 2>&1 || true
  done
fi

for p in "${packages[@]}"; do
  installed "$p" || { log "still missing after install: $p"; exit 1; }
done
log "done"
