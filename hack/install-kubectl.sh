#!/usr/bin/env bash
# Provides kubectl for the e2e tier (`kubectl apply --server-side --dry-run=server`, `kubectl explain`, ...).
#
# A kubectl already on PATH is used as is. Otherwise kubectl is built from the published Go modules
# k8s.io/kubectl + k8s.io/component-base (the same code as k8s.io/kubernetes/cmd/kubectl) through the Go
# module proxy, at the version of the test API server, and cached under
# ${HUBSETTINGS_CACHE:-~/.cache/hubsettings}/bin/kubectl-<version>/kubectl.
#
# The path of the binary is always the last line on stdout; progress goes to stderr.
#
# Usage: hack/install-kubectl.sh [--print-path|--path-only]
# Environment: KUBECTL_VERSION (default below), HUBSETTINGS_KUBECTL_FROM_PATH=0 to ignore a kubectl on PATH.
set -euo pipefail

# --- pinned version (change here only; matches KUBERNETES_VERSION of hack/build-testenv.sh) ----------------
KUBECTL_VERSION="${KUBECTL_VERSION:-v1.35.4}"
# -----------------------------------------------------------------------------------------------------------

CACHE="${HUBSETTINGS_CACHE:-${HOME}/.cache/hubsettings}"
BIN_ROOT="${CACHE}/bin"
BUILD_ROOT="${CACHE}/build"
KUBECTL_BIN="${BIN_ROOT}/kubectl-${KUBECTL_VERSION}/kubectl"

case "${1:-}" in
  "" | --print-path) ;;
  --path-only)
    printf '%s\n' "${KUBECTL_BIN}"
    exit 0
    ;;
  *)
    echo "usage: $0 [--print-path|--path-only]" >&2
    exit 2
    ;;
esac

log() { printf '[install-kubectl] %s\n' "$*" >&2; }

if [[ "${HUBSETTINGS_KUBECTL_FROM_PATH:-1}" != 0 ]]; then
  path_kubectl="$(command -v kubectl || true)"
  if [[ -n "${path_kubectl}" ]] && "${path_kubectl}" version --client >/dev/null 2>&1; then
    log "using ${path_kubectl} from PATH"
    printf '%s\n' "${path_kubectl}"
    exit 0
  fi
fi

if [[ -x "${KUBECTL_BIN}" ]]; then
  log "cached: kubectl ${KUBECTL_VERSION} at ${KUBECTL_BIN}"
  printf '%s\n' "${KUBECTL_BIN}"
  exit 0
fi

# shellcheck source=hack/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

exec 9>"${CACHE}/.install-kubectl.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if [[ -x "${KUBECTL_BIN}" ]]; then
  printf '%s\n' "${KUBECTL_BIN}"
  exit 0
fi

start=${SECONDS}
staging="v0.${KUBECTL_VERSION#v1.}"
dir="$(mktemp -d "${BUILD_ROOT}/kubectl-${KUBECTL_VERSION}.XXXXXX")"
trap 'rm -rf "${dir}"' EXIT
cat >"${dir}/go.mod" <<GOMOD
module hubsettings.local/testenv/kubectl

go 1.24
GOMOD
# k8s.io/kubernetes/cmd/kubectl/kubectl.go, verbatim in substance.
cat >"${dir}/main.go" <<'GOSRC'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
GOSRC
log "kubectl ${KUBECTL_VERSION}: resolving k8s.io/kubectl@${staging} (first build takes a few minutes)"
(cd "${dir}" && "${GO}" get "k8s.io/kubectl@${staging}" "k8s.io/component-base@${staging}" >&2 && "${GO}" mod tidy >&2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBECTL_VERSION}"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${KUBECTL_VERSION}"
(cd "${dir}" && "${GO}" build -trimpath -ldflags "${ldflags}" -o "${dir}/kubectl.out" .)
mkdir -p "$(dirname "${KUBECTL_BIN}")"
tmp="$(mktemp "$(dirname "${KUBECTL_BIN}")/.tmp.XXXXXX")"
cp "${dir}/kubectl.out" "${tmp}"
chmod 0755 "${tmp}"
mv -f "${tmp}" "${KUBECTL_BIN}"
log "kubectl ${KUBECTL_VERSION}: built in $((SECONDS - start))s -> ${KUBECTL_BIN}"
printf '%s\n' "${KUBECTL_BIN}"
