{{/* The release's name for its objects: the release name, with the chart's name added unless
it is in it already (a release called "choreo" names its objects choreo-orders, ...). */}}
{{- define "choreo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "choreo.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: choreo
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* What selects one service's pods: never changes across upgrades. */}}
{{- define "choreo.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "choreo.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The non-secret settings every container gets, as a YAML map: the ConfigMap's data, and the
setup hook's env (a pre-install hook runs before the ConfigMap exists). */}}
{{- define "choreo.settings" -}}
{{- if gt (int .Values.keda.maxReplicas) (int .Values.partitions) }}
{{- fail (printf "keda.maxReplicas (%v) is more than partitions (%v): the extra instances would get no partition" .Values.keda.maxReplicas .Values.partitions) }}
{{- end }}
{{- range $name, $_ := .Values.kafka.config }}
{{- if or (contains "password" $name) (contains "secret" $name) (eq $name "sasl.username") (contains "sasl.oauthbearer.config" $name) }}
{{- fail (printf "kafka.config.%s would put a secret in a ConfigMap: give it through kafka.sasl.existingSecret or extraEnv from a Secret" $name) }}
{{- end }}
{{- end }}
{{- if and (not .Values.schemaRegistry.urlSecret.name) (contains "@" .Values.schemaRegistry.url) }}
{{- fail "schemaRegistry.url holds credentials (user:password@): give it through schemaRegistry.urlSecret instead" }}
{{- end }}
{{- range $name, $_ := .Values.settings }}
{{- if has $name (list "KAFKA_BOOTSTRAP_SERVERS" "SCHEMA_REGISTRY_URL" "CHOREO_METRICS_HOST" "CHOREO_STATE_DIR" "CHOREO_TOPIC_PREFIX" "CHOREO_PARTITIONS" "CHOREO_REPLICATION_FACTOR") }}
{{- fail (printf "settings.%s is set by the chart from its own value (see values.yaml): set that instead" $name) }}
{{- end }}
{{- if hasPrefix "CHOREO_KAFKA_" $name }}
{{- fail (printf "settings.%s: librdkafka settings go in kafka.config (secrets in kafka.sasl.existingSecret)" $name) }}
{{- end }}
{{- end }}
KAFKA_BOOTSTRAP_SERVERS: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
{{- if not .Values.schemaRegistry.urlSecret.name }}
SCHEMA_REGISTRY_URL: {{ required "schemaRegistry.url is required" .Values.schemaRegistry.url | quote }}
{{- end }}
CHOREO_METRICS_HOST: "0.0.0.0"
CHOREO_STATE_DIR: /var/lib/choreo/state
CHOREO_TOPIC_PREFIX: {{ .Values.topicPrefix | quote }}
CHOREO_PARTITIONS: {{ .Values.partitions | quote }}
CHOREO_REPLICATION_FACTOR: {{ .Values.replicationFactor | quote }}
{{- if .Values.kafka.tls.caSecret }}
CHOREO_KAFKA_SSL_CA_LOCATION: /etc/choreo/kafka-ca/ca.crt
{{- end }}
{{- range $name, $value := .Values.kafka.config }}
{{ printf "CHOREO_KAFKA_%s" ($name | upper | replace "." "_") }}: {{ $value | toString | quote }}
{{- end }}
{{- range $name, $value := .Values.settings }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The variables that come from Secrets, and the extra ones. */}}
{{- define "choreo.secretEnv" -}}
{{- with .Values.kafka.sasl.existingSecret }}
- name: CHOREO_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.kafka.sasl.usernameKey }}
- name: CHOREO_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.kafka.sasl.passwordKey }}
{{- end }}
{{- with .Values.schemaRegistry.urlSecret.name }}
- name: SCHEMA_REGISTRY_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.schemaRegistry.urlSecret.key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "choreo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "choreo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* One service's worker values: the defaults of `worker` with the service's own on top. */}}
{{- define "choreo.worker" -}}
{{- $merged := mergeOverwrite (deepCopy .root.Values.worker) (omit .service "name") -}}
{{- toYaml $merged -}}
{{- end -}}
