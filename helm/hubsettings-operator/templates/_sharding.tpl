{{- /*
Sharding (docs/scale.md): `sharding.shards: [a, b]` renders one operator Deployment per shard; each handles only
the HubSettings labelled `<sharding.label>=<shard>` (`--shard-selector`, filtered by the API server) and has its
own kopf peering name `<peering.name>-<shard>`, so the replicas of one shard elect their own active one.
*/}}

{{/* The shards as a JSON array: [""] (one Deployment for every HubSettings) when sharding is off. */}}
{{- define "hubsettings-operator.shards" -}}
{{- if .Values.sharding.shards }}{{ toJson .Values.sharding.shards }}{{ else }}[""]{{ end }}
{{- end }}

{{/* The kopf peering names the Deployments use, as a JSON array. */}}
{{- define "hubsettings-operator.peeringNames" -}}
{{- $names := list }}
{{- range include "hubsettings-operator.shards" . | fromJsonArray }}
{{- $names = append $names (ternary $.Values.peering.name (printf "%s-%s" $.Values.peering.name .) (eq . "")) }}
{{- end }}
{{- toJson $names }}
{{- end }}
