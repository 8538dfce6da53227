{{/* Names, labels and shared pieces of the revoked chart. */}}

{{- define "revoked.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "revoked.component" -}}
{{- printf "%s-%s" (include "revoked.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "revoked.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "revoked.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "revoked.image" -}}
{{- $v := .root.Values.image -}}
{{- $repo := index $v .name -}}
{{- if $v.registry }}{{ $repo = printf "%s/%s" $v.registry $repo }}{{ end -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion $v.tag) -}}
{{- end -}}

{{- define "revoked.secretName" -}}
{{- if .Values.secrets.create -}}
{{- printf "%s-keys" (include "revoked.fullname" .) -}}
{{- else -}}
{{- required "secrets.existingSecret or secrets.create is required" .Values.secrets.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "revoked.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "revoked.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Kafka settings of a reader or writer, as environment variables with
     the given prefix (REVOKED_KAFKA or REVOKED_PUBLISH). */}}
{{- define "revoked.kafkaEnv" -}}
{{- $k := .root.Values.kafka -}}
{{ .prefix }}_BROKERS: {{ join "," $k.brokers | quote }}
{{- if $k.tls.enabled }}
{{ .prefix }}_TLS_ENABLED: "true"
{{ .prefix }}_TLS_CA_FILE: /etc/revoked/kafka-tls/ca.crt
{{- if $k.tls.mutual }}
{{ .prefix }}_TLS_CERT_FILE: /etc/revoked/kafka-tls/tls.crt
{{ .prefix }}_TLS_KEY_FILE: /etc/revoked/kafka-tls/tls.key
{{- end }}
{{- end }}
{{- if $k.sasl.mechanism }}
{{ .prefix }}_SASL_MECHANISM: {{ $k.sasl.mechanism | quote }}
{{ .prefix }}_SASL_USERNAME: {{ $k.sasl.username | quote }}
{{ .prefix }}_SASL_PASSWORD_FILE: /etc/revoked/keys/kafka-sasl-password
{{- end }}
{{- end -}}

{{/* Settings every command shares. */}}
{{- define "revoked.commonEnv" -}}
REVOKED_LOG_LEVEL: {{ .Values.log.level | quote }}
REVOKED_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- if .Values.tokenIDPattern }}
REVOKED_TOKEN_ID_PATTERN: {{ .Values.tokenIDPattern | quote }}
{{- end }}
{{- end -}}

{{/* The keys secret mounted read-only at /etc/revoked/keys, and the Kafka
     TLS secret at /etc/revoked/kafka-tls. */}}
{{- define "revoked.secretVolumes" -}}
- name: keys
  secret:
    secretName: {{ include "revoked.secretName" . }}
    defaultMode: 0440
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.secretName }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.secretName }}
    defaultMode: 0440
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{- define "revoked.secretVolumeMounts" -}}
- name: keys
  mountPath: /etc/revoked/keys
  readOnly: true
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.secretName }}
- name: kafka-tls
  mountPath: /etc/revoked/kafka-tls
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Probes on the ops server's /livez and /readyz. */}}
{{- define "revoked.probes" -}}
startupProbe:
  httpGet: {path: /livez, port: http}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /livez, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}
