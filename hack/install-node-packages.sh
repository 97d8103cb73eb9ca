#!/usr/bin/env bash
# Installs the Debian packages the node tier needs (tests/cluster, `make cluster-up`, `make image`), only those
# that are missing: containerd + runc (the container runtime), containernetworking-plugins (the bridge and
# host-local CNI plugins), iptables (only to prove that the tier adds no rule), socat (the TCP relays on the
# node), debootstrap (the registry-free image build).
#
# Usage: hack/install-node-packages.sh [--check]   --check: exit 1 (listing them) if any is missing.
set -euo pipefail

PACKAGES=(containerd runc containernetworking-plugins iptables socat debootstrap)

log() { printf '[node-packages] %s\n' "$*" >&2; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("${pkg}")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "installed: ${PACKAGES[*]}"
  exit 0
fi
if [[ "${1:-}" == --check ]]; then
  log "missing: ${missing[*]} (make deps installs them)"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "error: missing ${missing[*]} and no apt-get; install them with the system's package manager"
  exit 1
fi
sudo=()
[[ "$(id -u)" == 0 ]] || sudo=(sudo)
log "installing Debian packages: ${missing[*]}"
"${sudo[@]}" apt-get update -q >&2
# The node tier starts containerd itself (tests/support/nodeenv.py); the package's own service must not run.
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then
  "${sudo[@]}" systemctl disable --now containerd >&2 || true
fi
log "installed: ${missing[*]}"
