#!/usr/bin/env bash
# End-to-end on a real cluster, for machines with Docker (`make e2e-kind`):
#   1. create a kind cluster (or reuse one of the same name),
#   2. build the operator's image from operator/Dockerfile and load it into the cluster,
#   3. install the Helm chart (2 replicas, watching namespace `scion`),
#   4. run a tiny PostgreSQL 16 (Deployment + Service) and two fake Hub pods (env only, for drift),
#   5. create the DSN Secret and apply examples/minimal.yaml, switched to the proposal profile with
#      createTable: true (the empty database has no settings table yet) and a Layer 0 check,
#   6. wait for Ready, print `kubectl get hs -o wide`, the drift report and the rows in the database.
# The cluster is deleted at the end unless KEEP_CLUSTER=1 (then it prints how to reach it).
#
# Needs: docker. kind and helm are taken from PATH or built from their Go modules (Go toolchain needed then);
# kubectl is taken from PATH, else the one inside the kind node is used.
#
# Environment: CLUSTER_NAME (hubsettings-e2e), KEEP_CLUSTER (0), KIND_VERSION (v0.33.0), KIND_NODE_IMAGE
# (kind's default), IMAGE (hubsettings-operator:e2e), POSTGRES_IMAGE (postgres:16), TIMEOUT (120s).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_NAME="${CLUSTER_NAME:-hubsettings-e2e}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
KIND_VERSION="${KIND_VERSION:-v0.33.0}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-}"
IMAGE="${IMAGE:-hubsettings-operator:e2e}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-postgres:16}"
TIMEOUT="${TIMEOUT:-120s}"
OPERATOR_NS=hubsettings-system
HUB_NS=scion
RELEASE=hubsettings-operator
CACHE="${HUBSETTINGS_CACHE:-${HOME}/.cache/hubsettings}"

log() { printf '\n[e2e-kind] %s\n' "$*" >&2; }
die() {
  printf '[e2e-kind] error: %s\n' "$*" >&2
  exit 1
}

# --- tools ----------------------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || die "docker is required (this script needs a Docker engine)"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (is it running? are you in the docker group?)"

KIND="$(command -v kind || true)"
if [[ -z "${KIND}" ]]; then
  KIND="${CACHE}/bin/kind-${KIND_VERSION}/kind"
  if [[ ! -x "${KIND}" ]]; then
    GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
    [[ -x "${GO}" ]] || die "kind is not on PATH and there is no Go toolchain to build it"
    log "building kind ${KIND_VERSION} from its Go module"
    mkdir -p "$(dirname "${KIND}")"
    GOBIN="$(dirname "${KIND}")" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0 \
      GOPATH="${CACHE}/go" GOMODCACHE="${CACHE}/go/pkg/mod" GOCACHE="${CACHE}/go/cache" \
      "${GO}" install "sigs.k8s.io/kind@${KIND_VERSION}"
  fi
fi
HELM="$(bash "${REPO_ROOT}/hack/install-helm.sh" --print-path | tail -n 1)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hubsettings-e2e.XXXXXX")"
KUBECONFIG_FILE="${WORK}/kubeconfig"
NODE="${CLUSTER_NAME}-control-plane"

cleanup() {
  local rc=$?
  if [[ ${rc} -ne 0 ]]; then
    log "FAILED (exit ${rc}); diagnostics:"
    kubectl -n "${HUB_NS}" get hs -o yaml 2>/dev/null || true
    kubectl -n "${OPERATOR_NS}" get pods -o wide 2>/dev/null || true
    kubectl -n "${OPERATOR_NS}" logs -l app.kubernetes.io/name=hubsettings-operator --tail=200 --prefix 2>/dev/null || true
    kubectl -n "${HUB_NS}" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 30 || true
  fi
  if [[ "${KEEP_CLUSTER}" == 1 ]]; then
    log "keeping cluster ${CLUSTER_NAME}: export KUBECONFIG=${KUBECONFIG_FILE}"
  else
    log "deleting cluster ${CLUSTER_NAME}"
    "${KIND}" delete cluster --name "${CLUSTER_NAME}" >/dev/null 2>&1 || true
    rm -rf "${WORK}"
  fi
  exit "${rc}"
}

# kubectl from PATH, else the node's own (kind nodes ship kubectl and an admin kubeconfig).
kubectl() {
  if command -v kubectl >/dev/null 2>&1; then
    command kubectl --kubeconfig "${KUBECONFIG_FILE}" "$@"
  else
    docker exec -i "${NODE}" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"
  fi
}

# --- 1. cluster -----------------------------------------------------------------------------------------------
if "${KIND}" get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
  log "reusing kind cluster ${CLUSTER_NAME}"
  "${KIND}" export kubeconfig --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG_FILE}"
else
  log "creating kind cluster ${CLUSTER_NAME}"
  create_args=(create cluster --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG_FILE}" --wait 180s)
  if [[ -n "${KIND_NODE_IMAGE}" ]]; then
    create_args+=(--image "${KIND_NODE_IMAGE}")
  fi
  "${KIND}" "${create_args[@]}"
fi
trap cleanup EXIT

# --- 2. image -------------------------------------------------------------------------------------------------
log "building ${IMAGE} from operator/Dockerfile"
docker build -f "${REPO_ROOT}/operator/Dockerfile" -t "${IMAGE}" \
  --build-arg "REVISION=$(git -C "${REPO_ROOT}" rev-parse HEAD 2>/dev/null || echo unknown)" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "${REPO_ROOT}"
"${KIND}" load docker-image "${IMAGE}" --name "${CLUSTER_NAME}"

# --- 3. operator ----------------------------------------------------------------------------------------------
# The watched namespace must exist before the chart puts its Role and KopfPeering there.
kubectl create namespace "${HUB_NS}" --dry-run=client -o yaml | kubectl apply -f -
log "installing the chart (watching namespace ${HUB_NS})"
"${HELM}" upgrade --install "${RELEASE}" "${REPO_ROOT}/helm/hubsettings-operator" \
  --kubeconfig "${KUBECONFIG_FILE}" --namespace "${OPERATOR_NS}" --create-namespace \
  --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}" --set image.pullPolicy=Never \
  --set "watch.namespaces={${HUB_NS}}" \
  --wait --timeout 5m

# --- 4. PostgreSQL and fake Hub pods --------------------------------------------------------------------------
PG_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
log "starting ${POSTGRES_IMAGE} in namespace ${HUB_NS}"
kubectl -n "${HUB_NS}" create secret generic postgres-auth --from-literal=password="${PG_PASSWORD}" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: postgres, namespace: ${HUB_NS}, labels: {app: postgres}}
spec:
  replicas: 1
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      containers:
        - name: postgres
          image: ${POSTGRES_IMAGE}
          env:
            - {name: POSTGRES_USER, value: hub}
            - {name: POSTGRES_DB, value: hub}
            - name: POSTGRES_PASSWORD
              valueFrom: {secretKeyRef: {name: postgres-auth, key: password}}
            - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
          ports: [{name: postgres, containerPort: 5432}]
          readinessProbe:
            exec: {command: [pg_isready, -U, hub, -d, hub]}
            periodSeconds: 2
          volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: postgres, namespace: ${HUB_NS}}
spec:
  selector: {app: postgres}
  ports: [{name: postgres, port: 5432, targetPort: postgres}]
---
# Two stand-ins for Hub replicas: only their environment matters (Layer 0 drift); one logs at debug.
apiVersion: v1
kind: Pod
metadata: {name: hub-a, namespace: ${HUB_NS}, labels: {app.kubernetes.io/name: scion-hub}}
spec:
  containers:
    - name: hub
      image: registry.k8s.io/pause:3.10
      env: [{name: SCION_SERVER_LOGLEVEL, value: info}]
---
apiVersion: v1
kind: Pod
metadata: {name: hub-b, namespace: ${HUB_NS}, labels: {app.kubernetes.io/name: scion-hub}}
spec:
  containers:
    - name: hub
      image: registry.k8s.io/pause:3.10
      env: [{name: SCION_SERVER_LOGLEVEL, value: debug}]
EOF
kubectl -n "${HUB_NS}" rollout status deployment/postgres --timeout=180s

# --- 5. DSN Secret and HubSettings ----------------------------------------------------------------------------
kubectl -n "${HUB_NS}" create secret generic hub-db \
  --from-literal=url="postgresql://hub:${PG_PASSWORD}@postgres.${HUB_NS}.svc:5432/hub?sslmode=disable" \
  --dry-run=client -o yaml | kubectl apply -f -

# examples/minimal.yaml, with the proposal profile creating the table, and a Layer 0 check on the Hub pods.
HS_FILE="${WORK}/hub.yaml"
awk '{ print } /^    secretRef: [{]name: hub-db, key: url[}]/ { print "    profile: proposal"; print "    createTable: true" }' \
  "${REPO_ROOT}/examples/minimal.yaml" >"${HS_FILE}"
cat >>"${HS_FILE}" <<'EOF'
  bootstrap:
    podSelector:
      matchLabels: {app.kubernetes.io/name: scion-hub}
    expected:
      server.log_level: info
EOF
grep -q '^    createTable: true$' "${HS_FILE}" || die "could not adapt examples/minimal.yaml (its database block changed?)"
grep -q '^  namespace: scion$' "${HS_FILE}" || die "examples/minimal.yaml is no longer in namespace scion"
log "applying examples/minimal.yaml (proposal profile, createTable: true)"
cat "${HS_FILE}" >&2
kubectl apply -f - <"${HS_FILE}"

# --- 6. wait and report ---------------------------------------------------------------------------------------
log "waiting for hs/hub to be Ready (${TIMEOUT})"
kubectl -n "${HUB_NS}" wait --for=condition=Ready hs/hub --timeout="${TIMEOUT}"
# The drift check runs on its own timer: give it a moment to report the debug pod.
for _ in $(seq 1 30); do
  if [[ "$(kubectl -n "${HUB_NS}" get hs hub -o jsonpath='{.status.drift.checkedPods}')" == 2 ]]; then
    break
  fi
  sleep 2
done

log "kubectl get hs -o wide"
kubectl -n "${HUB_NS}" get hs -o wide
log "conditions"
kubectl -n "${HUB_NS}" get hs hub \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}) {.message}{"\n"}{end}'
log "drift status"
kubectl -n "${HUB_NS}" get hs hub -o jsonpath='{.status.drift}{"\n"}'
log "rows in the database"
kubectl -n "${HUB_NS}" exec deploy/postgres -- \
  psql -U hub -d hub -c 'SELECT key, value, updated_by FROM hub_settings ORDER BY key'
log "OK"
