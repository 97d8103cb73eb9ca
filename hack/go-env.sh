# shellcheck shell=bash
# Sourced by the hack/ scripts that build Go binaries (build-testenv.sh, install-helm.sh, install-kubectl.sh):
# one Go toolchain lookup and one cache layout. Expects CACHE, BIN_ROOT, BUILD_ROOT and
# a `log` function; sets GO and exports the Go environment.

GO="${GO:-$(command -v go || true)}"
if [[ -z "${GO}" && -x /usr/local/go/bin/go ]]; then
  GO=/usr/local/go/bin/go
fi
if [[ -z "${GO}" ]]; then
  log "error: no Go toolchain found (install Go >= 1.26 or set GO=/path/to/go)"
  exit 1
fi

# Module and build caches under our own cache dir, so they survive between runs; GOTOOLCHAIN=local: never
# try to download a toolchain.
export GOPATH="${CACHE}/go"
export GOMODCACHE="${CACHE}/go/pkg/mod"
export GOCACHE="${CACHE}/go/cache"
export GOFLAGS="-buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
mkdir -p "${BIN_ROOT}" "${BUILD_ROOT}" "${GOMODCACHE}" "${GOCACHE}"
