{{/*
Names. With a release named tollgate (or containing it) the objects have
the kustomize bases' names (tollgate-gateway, tollgate-injector, ...);
otherwise they carry the release's name first, so two releases can share a
cluster.
*/}}
{{- define "tollgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels of one component: the kustomize bases' two labels, and the
release, so that a second release's pods are not selected.
*/}}
{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Labels of every object: the selector labels and Helm's. */}}
{{- define "tollgate.labels" -}}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "tollgate.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "tollgate.pullPolicy" -}}
{{- with .Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end -}}

{{/* The locked-down container of every pod here (k8s/README.md, Choices). */}}
{{- define "tollgate.containerSecurity" -}}
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "tollgate.podSecurity" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* An env entry from a key of a Secret. */}}
{{- define "tollgate.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* The injector's Service's DNS name, the one the API server calls. */}}
{{- define "tollgate.injectorHost" -}}
{{ include "tollgate.fullname" . }}-injector.{{ .Release.Namespace }}.svc
{{- end -}}

{{- define "tollgate.injectorTLSSecret" -}}
{{- if .Values.injector.certManager.enabled -}}
{{ include "tollgate.fullname" . }}-injector-tls
{{- else -}}
{{ required "injector.tls.existingSecret is required without cert-manager (injector.certManager.enabled false)" .Values.injector.tls.existingSecret }}
{{- end -}}
{{- end -}}
