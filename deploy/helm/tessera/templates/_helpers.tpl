{{/* The chart's name, overridable with nameOverride. */}}
{{- define "tessera.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's object name: RELEASE-tessera, or the release name if it already says tessera. */}}
{{- define "tessera.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "tessera.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "tessera.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tessera.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tessera.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tessera.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tessera.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tessera.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tessera.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret this chart creates (only for the values given inline). */}}
{{- define "tessera.secretName" -}}
{{- include "tessera.fullname" . -}}
{{- end -}}

{{- define "tessera.masterKeySecret" -}}
{{- default (include "tessera.secretName" .) .Values.masterKey.existingSecret -}}
{{- end -}}

{{- define "tessera.databaseSecret" -}}
{{- default (include "tessera.secretName" .) .Values.database.existingSecret -}}
{{- end -}}

{{- define "tessera.bootstrapSecret" -}}
{{- default (include "tessera.secretName" .) .Values.bootstrap.existingSecret -}}
{{- end -}}

{{/* True when the chart must create its own Secret. */}}
{{- define "tessera.createSecret" -}}
{{- if or (and .Values.masterKey.value (not .Values.masterKey.existingSecret)) (and .Values.database.url (not .Values.database.existingSecret)) (and .Values.bootstrap.enabled .Values.bootstrap.token (not .Values.bootstrap.existingSecret)) -}}
true
{{- end -}}
{{- end -}}

{{/* Refuses a configuration that cannot work, naming the value to set. */}}
{{- define "tessera.validate" -}}
{{- if not (or .Values.masterKey.value .Values.masterKey.existingSecret) -}}
{{- fail "set masterKey.existingSecret (a Secret holding the base64 of 32 random bytes) or masterKey.value" -}}
{{- end -}}
{{- if and .Values.masterKey.value (ne (len (b64dec .Values.masterKey.value)) 32) -}}
{{- fail "masterKey.value must be the base64 of 32 bytes (openssl rand -base64 32)" -}}
{{- end -}}
{{- if not (or .Values.database.url .Values.database.existingSecret) -}}
{{- fail "set database.url (postgres://USER:PASSWORD@HOST:5432/DB) or database.existingSecret: replicas share one PostgreSQL database" -}}
{{- end -}}
{{- if and .Values.database.url (not (or (hasPrefix "postgres://" .Values.database.url) (hasPrefix "postgresql://" .Values.database.url))) -}}
{{- fail "database.url must be a postgres:// URL: replicas cannot share an embedded SQLite database" -}}
{{- end -}}
{{- if and .Values.bootstrap.enabled (not (or .Values.bootstrap.token .Values.bootstrap.existingSecret)) -}}
{{- fail "bootstrap.enabled needs bootstrap.token or bootstrap.existingSecret" -}}
{{- end -}}
{{- end -}}

{{/* The scheme the probes use: HTTPS when the server has a certificate. */}}
{{- define "tessera.scheme" -}}
{{- if .Values.tls.existingSecret -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
