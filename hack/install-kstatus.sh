#!/usr/bin/env bash
# Builds hack/kstatus (a tiny program around sigs.k8s.io/cli-utils/pkg/kstatus/status, plus Flux-style CEL
# health expressions) through the Go module proxy and caches it under
# ${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/bin/kstatus-<hash of its sources>/kstatus. The e2e tests run it to
# read live HubSettings the way Flux and kstatus waiters do. Rebuilt only when main.go, go.mod or go.sum change.
#
# The path of the binary is the last line on stdout; progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="${HERE}/kstatus"
CACHE="${HUBSETTINGS_CACHE:-${HOME}/.cache/hubsettings}"
BIN_ROOT="${CACHE}/bin"
BUILD_ROOT="${CACHE}/build"
sum="$(cat "${SRC}/main.go" "${SRC}/go.mod" "${SRC}/go.sum" | sha256sum | cut -c1-12)"
KSTATUS_BIN="${BIN_ROOT}/kstatus-${sum}/kstatus"

log() { printf '[install-kstatus] %s\n' "$*" >&2; }

if [[ "${1:-}" == --path-only ]]; then
  printf '%s\n' "${KSTATUS_BIN}"
  exit 0
fi
if [[ -x "${KSTATUS_BIN}" ]]; then
  printf '%s\n' "${KSTATUS_BIN}"
  exit 0
fi

# shellcheck source=hack/go-env.sh
source "${HERE}/go-env.sh"

exec 9>"${CACHE}/.install-kstatus.lock"
flock 9
if [[ -x "${KSTATUS_BIN}" ]]; then
  printf '%s\n' "${KSTATUS_BIN}"
  exit 0
fi
start=${SECONDS}
mkdir -p "$(dirname "${KSTATUS_BIN}")"
tmp="$(mktemp "$(dirname "${KSTATUS_BIN}")/.tmp.XXXXXX")"
trap 'rm -f "${tmp}"' EXIT
log "building ${SRC} ($("${GO}" version))"
(cd "${SRC}" && "${GO}" build -trimpath -ldflags "-s -w" -o "${tmp}" .)
chmod 0755 "${tmp}"
mv -f "${tmp}" "${KSTATUS_BIN}"
log "built in $((SECONDS - start))s -> ${KSTATUS_BIN}"
printf '%s\n' "${KSTATUS_BIN}"
