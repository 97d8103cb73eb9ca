#!/usr/bin/env bash
# A real, throwaway Kubernetes control plane for tests (the same idea as controller-runtime's envtest):
# etcd + kube-apiserver on 127.0.0.1, free ports, freshly generated certificates, RBAC enforced, no
# controllers, no nodes. Binaries come from hack/build-testenv.sh (built from the Go modules, cached).
#
# Usage: hack/testenv.sh prepare
#   prepare            generate certificates, kubeconfig and the argument files
#                      (<state>/etcd.args, <state>/kube-apiserver.args: the binary then one argument a line).
# Bash prepares; tests/support/kubeenv.py starts and supervises the processes (the tests, and
# `make testenv-up` / `testenv-down` through a detached supervisor: tests/support/supervise.py).
#
# State (certs, kubeconfig, etcd data, logs, pidfiles) lives in ${HUBSETTINGS_TESTENV_DIR:-/tmp/hubsettings-testenv}.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${HUBSETTINGS_TESTENV_DIR:-/tmp/hubsettings-testenv}"
# `down` deletes the state dir only if this marker is in it, so a mistyped HUBSETTINGS_TESTENV_DIR is safe.
MARKER="${STATE}/.hubsettings-testenv"
KUBECONFIG_PATH="${STATE}/kubeconfig"

log() { printf '[testenv] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n 's/^# \{0,1\}//; 6,10p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Generates every key and certificate with the openssl CLI. ECDSA P-256 keys: fast to generate and accepted
# by kube-apiserver for serving, client authentication and service-account token signing (ES256).
generate_certs() {
  local pki="${STATE}/pki"
  mkdir -p "${pki}"
  chmod 0700 "${pki}"
  local days=3650
  local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

  openssl req -x509 "${newkey[@]}" -keyout "${pki}/ca.key" -out "${pki}/ca.crt" -days "${days}" \
    -subj "/CN=hubsettings-testenv-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null

  # Serving certificate: the names clients use on loopback plus the in-cluster service names/IP, so that a
  # pod-side client configuration (10.0.0.1 is the first IP of --service-cluster-ip-range) verifies too.
  openssl req -new "${newkey[@]}" -keyout "${pki}/apiserver.key" -out "${pki}/apiserver.csr" \
    -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in "${pki}/apiserver.csr" -CA "${pki}/ca.crt" -CAkey "${pki}/ca.key" -CAcreateserial \
    -out "${pki}/apiserver.crt" -days "${days}" -extfile <(printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local") \
    2>/dev/null

  # Admin client certificate: O=system:masters is bound to cluster-admin and bypasses RBAC.
  openssl req -new "${newkey[@]}" -keyout "${pki}/admin.key" -out "${pki}/admin.csr" \
    -subj "/O=system:masters/CN=hubsettings-testenv-admin" 2>/dev/null
  openssl x509 -req -in "${pki}/admin.csr" -CA "${pki}/ca.crt" -CAkey "${pki}/ca.key" -CAcreateserial \
    -out "${pki}/admin.crt" -days "${days}" -extfile <(printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=clientAuth") 2>/dev/null

  # Service-account token signing key pair (TokenRequest works without any controller).
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "${pki}/sa.key" 2>/dev/null
  openssl pkey -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2>/dev/null

  rm -f "${pki}"/*.csr
  chmod 0600 "${pki}"/*.key
}

write_kubeconfig() {
  local server="$1" pki="${STATE}/pki" tmp ca_data cert_data key_data
  ca_data="$(base64 -w0 <"${pki}/ca.crt")"
  cert_data="$(base64 -w0 <"${pki}/admin.crt")"
  key_data="$(base64 -w0 <"${pki}/admin.key")"
  tmp="$(mktemp "${STATE}/.kubeconfig.XXXXXX")"
  # Certificates are embedded so the kubeconfig stays valid when copied elsewhere.
  cat >"${tmp}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hubsettings-testenv
  cluster:
    server: ${server}
    certificate-authority-data: ${ca_data}
users:
- name: hubsettings-testenv-admin
  user:
    client-certificate-data: ${cert_data}
    client-key-data: ${key_data}
contexts:
- name: hubsettings-testenv
  context:
    cluster: hubsettings-testenv
    user: hubsettings-testenv-admin
    namespace: default
current-context: hubsettings-testenv
EOF
  chmod 0600 "${tmp}"
  mv -f "${tmp}" "${KUBECONFIG_PATH}"
}

# Writes "<binary>\n<arg>\n<arg>..." atomically.
write_args() {
  local file="$1" tmp
  shift
  tmp="$(mktemp "${STATE}/.args.XXXXXX")"
  printf '%s\n' "$@" >"${tmp}"
  mv -f "${tmp}" "${file}"
}

prepare() {
  if [[ -f "${STATE}/kube-apiserver.args" && -f "${STATE}/etcd.args" && -f "${KUBECONFIG_PATH}" ]]; then
    return
  fi
  mkdir -p "${STATE}"
  touch "${MARKER}"

  local paths kube_apiserver etcd
  paths="$(bash "${HACK_DIR}/build-testenv.sh" --print-paths)"
  kube_apiserver="$(sed -n 's/^KUBE_APISERVER=//p' <<<"${paths}")"
  etcd="$(sed -n 's/^ETCD=//p' <<<"${paths}")"
  [[ -x "${kube_apiserver}" && -x "${etcd}" ]] || die "build-testenv.sh did not produce binaries"

  log "generating certificates in ${STATE}/pki"
  generate_certs

  local etcd_port etcd_peer_port api_port
  etcd_port="$(free_port)"
  etcd_peer_port="$(free_port)"
  api_port="$(free_port)"
  local etcd_url="http://127.0.0.1:${etcd_port}" peer_url="http://127.0.0.1:${etcd_peer_port}"
  local server="https://127.0.0.1:${api_port}" pki="${STATE}/pki"

  # etcd over plain HTTP on loopback (as envtest does); fsync off because the data is throwaway and fsync
  # dominates write latency on CI disks.
  write_args "${STATE}/etcd.args" "${etcd}" \
    --name=default \
    --data-dir="${STATE}/etcd-data" \
    --listen-client-urls="${etcd_url}" \
    --advertise-client-urls="${etcd_url}" \
    --listen-peer-urls="${peer_url}" \
    --initial-advertise-peer-urls="${peer_url}" \
    --initial-cluster="default=${peer_url}" \
    --unsafe-no-fsync=true \
    --log-level=warn

  # No controller-manager runs, so the ServiceAccount admission plugin (which requires the default SA and
  # token controllers) is disabled: pods can then be created without service-account tokens.
  write_args "${STATE}/kube-apiserver.args" "${kube_apiserver}" \
    --advertise-address=127.0.0.1 \
    --bind-address=127.0.0.1 \
    --secure-port="${api_port}" \
    --etcd-servers="${etcd_url}" \
    --cert-dir="${STATE}/apiserver-certs" \
    --tls-cert-file="${pki}/apiserver.crt" \
    --tls-private-key-file="${pki}/apiserver.key" \
    --client-ca-file="${pki}/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer="${server}" \
    --service-account-key-file="${pki}/sa.pub" \
    --service-account-signing-key-file="${pki}/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --endpoint-reconciler-type=none \
    --v=1

  printf '%s\n' "${server}" >"${STATE}/server"
  write_kubeconfig "${server}"
}


case "${1:-}" in
  prepare) prepare ;;
  *) usage ;;
esac
