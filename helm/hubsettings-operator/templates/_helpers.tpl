{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "hubsettings-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed to the chart name unless it already contains it. */}}
{{- define "hubsettings-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hubsettings-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hubsettings-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hubsettings-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hubsettings-operator.labels" -}}
helm.sh/chart: {{ include "hubsettings-operator.chart" . }}
{{ include "hubsettings-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: scion
{{- end }}

{{- define "hubsettings-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hubsettings-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hubsettings-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The namespaces the operator watches, as a JSON list (empty when cluster-wide):
watch.namespaces if set, else the release namespace unless watch.clusterWide.
*/}}
{{- define "hubsettings-operator.watchNamespaces" -}}
{{- if and .Values.watch.clusterWide .Values.watch.namespaces }}
{{- fail "watch.clusterWide=true and watch.namespaces are mutually exclusive: set one of them" }}
{{- end }}
{{- if .Values.watch.namespaces }}
{{- .Values.watch.namespaces | uniq | toJson }}
{{- else if .Values.watch.clusterWide }}
{{- list | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/*
RBAC rules for what the operator does inside each watched namespace. Shared by the per-namespace Role
(watch.namespaces) and the ClusterRole of cluster-wide mode, so both grant exactly the same verbs.
*/}}
{{- define "hubsettings-operator.namespacedRules" -}}
# The custom resource: kopf watches it and patches finalizers and its progress annotations.
- apiGroups: [scion.dev]
  resources: [hubsettings]
  verbs: [get, list, watch, patch]
# Conditions, drift report, applied keys.
- apiGroups: [scion.dev]
  resources: [hubsettings/status]
  verbs: [get, patch]
# Events for applied changes, rejected specs, conflicts and drift transitions (kopf posts core/v1 events).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# The database DSN (spec.database.secretRef) and secret-backed env vars of Hub pods (fingerprints only).
# get only: the operator reads the Secrets it is pointed at, it never lists or watches Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# ConfigMap-backed env vars of Hub pods (Layer 0 drift).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
# The Hub pods, indexed by label selector for Layer 0 drift.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# kopf peering between the operator replicas (--peering in a namespaced operator).
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}

{{/* Cluster-scoped rules kopf needs in every mode (resource discovery), plus cluster peering when -A. */}}
{{- define "hubsettings-operator.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- if .Values.watch.clusterWide }}
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}

{{/*
A CRD file of the chart (files/crds/, kept byte-identical to the repository's crds/), with the chart's
labels added and, when crds.keep, helm.sh/resource-policy: keep. Argument: (dict "ctx" $ "file" "path").
*/}}
{{- define "hubsettings-operator.crdFromFile" -}}
{{- $ctx := .ctx }}
{{- $crd := $ctx.Files.Get .file | fromYaml }}
{{- if or (not $crd) (hasKey $crd "Error") }}
{{- fail (printf "cannot parse %s as one YAML document" .file) }}
{{- end }}
{{- $meta := $crd.metadata }}
{{- $labels := merge (dict) (default (dict) $meta.labels) (include "hubsettings-operator.labels" $ctx | fromYaml) }}
{{- $_ := set $meta "labels" $labels }}
{{- if $ctx.Values.crds.keep }}
{{- $annotations := merge (dict "helm.sh/resource-policy" "keep") (default (dict) $meta.annotations) }}
{{- $_ := set $meta "annotations" $annotations }}
{{- end }}
{{- toYaml $crd }}
{{- end }}
