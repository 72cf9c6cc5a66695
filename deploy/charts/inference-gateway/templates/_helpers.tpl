{{/* Names, labels and derived settings shared by the templates. */}}

{{- define "ig.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ig.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-epp" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ig.poolName" -}}
{{- default .Release.Name .Values.inferencePool.name -}}
{{- end -}}

{{- define "ig.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ig.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: endpoint-picker
{{- end -}}

{{- define "ig.labels" -}}
{{ include "ig.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: {{ include "ig.poolName" . }}
{{- end -}}

{{- define "ig.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ig.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when leader election is on: explicitly, or automatically with several replicas. */}}
{{- define "ig.leaderElection" -}}
{{- $mode := .Values.epp.leaderElection.enabled -}}
{{- if eq (toString $mode) "auto" -}}
{{- if gt (int .Values.replicas) 1 -}}true{{- end -}}
{{- else if $mode -}}true{{- end -}}
{{- end -}}

{{/* The Lease the replicas elect a leader with (the controller's default name). */}}
{{- define "ig.leaseName" -}}
{{- printf "epp-%s-%s.gateway-api-inference-extension.sigs.k8s.io" .Release.Namespace (include "ig.poolName" .) -}}
{{- end -}}

{{- define "ig.poolVersion" -}}
{{- if eq .Values.inferencePool.group "inference.networking.k8s.io" -}}v1{{- else -}}v1alpha2{{- end -}}
{{- end -}}

{{- define "ig.tlsSecret" -}}
{{- default (printf "%s-tls" (include "ig.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{- define "ig.issuerRef" -}}
{{- if .Values.tls.certManager.issuerRef.name -}}
{{ toYaml .Values.tls.certManager.issuerRef }}
{{- else -}}
name: {{ include "ig.fullname" . }}-ca
kind: Issuer
group: cert-manager.io
{{- end -}}
{{- end -}}
