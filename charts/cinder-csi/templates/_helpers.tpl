{{/* Base name of every object; the release name unless it already contains the chart name. */}}
{{- define "cinder-csi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cinder-csi.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cinder-csi
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component (controller | node). Usage: include "cinder-csi.selector" (list . "controller") */}}
{{- define "cinder-csi.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "cinder-csi.controllerServiceAccount" -}}
{{- default (printf "%s-controller" (include "cinder-csi.fullname" .)) .Values.serviceAccount.controller.name -}}
{{- end -}}

{{- define "cinder-csi.nodeServiceAccount" -}}
{{- default (printf "%s-node" (include "cinder-csi.fullname" .)) .Values.serviceAccount.node.name -}}
{{- end -}}

{{- define "cinder-csi.cloudConfigSecret" -}}
{{- default (printf "%s-cloud-config" (include "cinder-csi.fullname" .)) .Values.cloudConfig.existingSecret -}}
{{- end -}}

{{/* The driver image reference. */}}
{{- define "cinder-csi.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* A sidecar image reference from {repository, tag}. */}}
{{- define "cinder-csi.sidecarImage" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* Where kubelet finds the node plugin's socket. */}}
{{- define "cinder-csi.pluginDir" -}}
{{- printf "%s/plugins/%s" (trimSuffix "/" .Values.hostPaths.kubeletDir) .Values.driverName -}}
{{- end -}}

{{/* Security context of the sidecars and the unprivileged driver container. */}}
{{- define "cinder-csi.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
