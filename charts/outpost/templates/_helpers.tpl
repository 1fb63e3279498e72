{{/* REPOSITORY:TAG of an image value. */}}
{{- define "outpost.image" -}}
{{ .repository }}:{{ .tag }}
{{- end }}

{{/*
The operator's policy and limit flags from .Values.operator: only those set,
so the binary's defaults (operator/operator.go) stay the single source.
*/}}
{{- define "outpost.operatorArgs" -}}
{{- $lists := dict "denied-cidrs" .policy.deniedCIDRs "service-cidr" .policy.serviceCIDRs "pod-cidr" .policy.podCIDRs "denied-hostnames" .policy.deniedHostnames "allowed-service-types" .policy.allowedServiceTypes }}
{{- range $flag, $list := $lists }}
{{- if $list }}
- --{{ $flag }}={{ join "," $list }}
{{- end }}
{{- end }}
{{- with .policy.clusterDomain }}
- --cluster-domain={{ . }}
{{- end }}
{{- if not .policy.learnClusterRanges }}
- --learn-cluster-ranges=false
{{- end }}
{{- $limits := dict "max-endpoints-per-backend" .limits.maxEndpointsPerBackend "max-records-per-answer" .limits.maxRecordsPerAnswer "max-endpoint-ports" .limits.maxEndpointPorts "max-concurrent-reconciles" .limits.maxConcurrentReconciles }}
{{- range $flag, $value := $limits }}
{{- if not (kindIs "invalid" $value) }}
- --{{ $flag }}={{ int64 $value }}
{{- end }}
{{- end }}
{{- with .extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}
