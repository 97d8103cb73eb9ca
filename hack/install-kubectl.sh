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

log() { printf '[install-kubectl] %s\n' "$*" >&2; }
# shellcheck source=hack/install-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-lib.sh"
install_args "${KUBECTL_BIN}" "$@"

kubectl_on_path() {
  "$1" version --client >/dev/null 2>&1 && log "using $1 from PATH"
}
use_from_path kubectl "${HUBSETTINGS_KUBECTL_FROM_PATH:-1}" kubectl_on_path

if [[ -x "${KUBECTL_BIN}" ]]; then
  log "cached: kubectl ${KUBECTL_VERSION} at ${KUBECTL_BIN}"
  printf '%s\n' "${KUBECTL_BIN}"
  exit 0
fi

# shellcheck source=hack/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

build_lock kubectl
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
place_binary "${dir}/kubectl.out" "${KUBECTL_BIN}"
log "kubectl ${KUBECTL_VERSION}: built in $((SECONDS - start))s -> ${KUBECTL_BIN}"
printf '%s\n' "${KUBECTL_BIN}"
