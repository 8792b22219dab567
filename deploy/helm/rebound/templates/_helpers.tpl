{{/* Names and labels. */}}
{{- define "rebound.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rebound.fullname" -}}
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

{{- define "rebound.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rebound.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rebound.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rebound.labels" -}}
helm.sh/chart: {{ include "rebound.chart" . }}
{{ include "rebound.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rebound
{{- end }}

{{/* Labels of one workload's objects; call with (dict "ctx" $ "component" "ingest"). */}}
{{- define "rebound.componentLabels" -}}
{{ include "rebound.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "rebound.componentSelector" -}}
{{ include "rebound.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "rebound.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rebound.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rebound.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The Deployments: a JSON list of {name, roles, v} where v is the values block sizing it.
split: one per role; combined: one running every role.
*/}}
{{- define "rebound.workloads" -}}
{{- $out := list }}
{{- if eq .Values.mode "combined" }}
{{- $out = append $out (dict "name" "combined" "roles" (list "ingest" "process" "api" "notify") "v" .Values.combined) }}
{{- else }}
{{- range $role := list "ingest" "process" "api" "notify" }}
{{- $out = append $out (dict "name" $role "roles" (list $role) "v" (get $.Values $role)) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The component label of the pods that run a role: the role, or "combined". */}}
{{- define "rebound.componentOf" -}}
{{- if eq .ctx.Values.mode "combined" }}combined{{ else }}{{ .role }}{{ end }}
{{- end }}

{{/* Whether the chart runs an HPA or KEDA for a workload: "hpa", "keda" or "". */}}
{{- define "rebound.scaler" -}}
{{- if and .ctx.Values.keda.enabled (has "process" .w.roles) }}keda
{{- else if .w.v.autoscaling.enabled }}hpa
{{- end }}
{{- end }}

{{/* Most process replicas there can be: what REBOUND_MAX_ACK_PENDING must cover. */}}
{{- define "rebound.maxProcessReplicas" -}}
{{- $w := ternary .Values.combined .Values.process (eq .Values.mode "combined") }}
{{- if .Values.keda.enabled }}{{ .Values.keda.maxReplicaCount }}
{{- else if $w.autoscaling.enabled }}{{ $w.autoscaling.maxReplicas }}
{{- else }}{{ $w.replicas }}
{{- end }}
{{- end }}

{{- define "rebound.maxAckPending" -}}
{{- $c := .Values.config }}
{{- $need := mul (add $c.processConcurrency 1) $c.batchSize (include "rebound.maxProcessReplicas" . | int) }}
{{- if eq (int $c.maxAckPending) 0 }}{{ max $need 2000 }}
{{- else if lt (int $c.maxAckPending) (int $need) }}
{{- fail (printf "config.maxAckPending %d is below (processConcurrency+1) x batchSize x %s process replicas = %d: process replicas would starve (set 0 to compute it)" (int $c.maxAckPending) (include "rebound.maxProcessReplicas" .) (int $need)) }}
{{- else }}{{ int64 $c.maxAckPending }}
{{- end }}
{{- end }}

{{/* Public base URL of the webhooks, without a trailing slash; "" when unknown. */}}
{{- define "rebound.publicURL" -}}
{{- if .Values.publicURL }}{{ trimSuffix "/" .Values.publicURL }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := first .Values.ingress.hosts }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}{{ if has $host .hosts }}{{ $tls = true }}{{ end }}{{ end }}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host }}
{{- else if and .Values.httpRoute.enabled .Values.httpRoute.hostnames }}
{{- printf "https://%s" (first .Values.httpRoute.hostnames) }}
{{- end }}
{{- end }}

{{/*
Every secret the pods may read: a JSON list of {env, file, ref, roles}. env is set to
/var/run/secrets/rebound/<file> in the pods of the roles listed; ref is the values'
{existingSecret, key, value}. Only roles that use a secret get it, so the public ingest
pods never hold the API token or the receivers' keys.
*/}}
{{- define "rebound.secretEntries" -}}
{{- $v := .Values }}
{{- $all := list "ingest" "process" "api" "notify" }}
{{- $e := list }}
{{- $e = append $e (dict "env" "REBOUND_NATS_CREDS_FILE" "file" "nats.creds" "ref" $v.nats.auth.creds "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_NATS_NKEY_FILE" "file" "nats.nkey" "ref" $v.nats.auth.nkey "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_NATS_PASSWORD_FILE" "file" "nats-password" "ref" $v.nats.auth.password "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_NATS_CA_FILE" "file" "nats-ca.crt" "ref" $v.nats.tls.ca "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_NATS_CERT_FILE" "file" "nats-tls.crt" "ref" $v.nats.tls.cert "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_NATS_KEY_FILE" "file" "nats-tls.key" "ref" $v.nats.tls.key "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_REDIS_PASSWORD_FILE" "file" "redis-password" "ref" $v.redis.password "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_REDIS_CA_FILE" "file" "redis-ca.crt" "ref" $v.redis.tls.ca "roles" $all) }}
{{- $e = append $e (dict "env" "REBOUND_API_TOKEN_FILE" "file" "api-token" "ref" $v.auth.apiToken "roles" (list "api")) }}
{{- $e = append $e (dict "env" "REBOUND_API_TOKENS_FILE" "file" "api-tokens" "ref" $v.auth.apiTokens "roles" (list "api")) }}
{{- $e = append $e (dict "env" "REBOUND_GENERIC_TOKEN_FILE" "file" "generic-token" "ref" $v.auth.genericToken "roles" (list "ingest")) }}
{{- $e = append $e (dict "env" "REBOUND_ADDRESS_HASH_KEY_FILE" "file" "address-hash-key" "ref" $v.auth.addressHashKey "roles" (list "process" "api" "notify")) }}
{{- $e = append $e (dict "env" "REBOUND_ALERT_WEBHOOK_URL_FILE" "file" "alert-webhook-url" "ref" $v.alerting.webhookURL "roles" (list "notify")) }}
{{- $e = append $e (dict "env" "REBOUND_ALERT_WEBHOOK_SECRET_FILE" "file" "alert-webhook-secret" "ref" $v.alerting.webhookSecret "roles" (list "notify")) }}
{{- range $esp, $field := dict "sendgrid" "publicKey" "mailgun" "signingKey" "postmark" "basicAuth" "sparkpost" "basicAuth" "mailjet" "basicAuth" "ses" "basicAuth" "mandrill" "webhookKey" "resend" "signingSecret" "mailersend" "signingSecret" "brevo" "token" }}
{{- $env := printf "REBOUND_%s_%s_FILE" (upper $esp) ($field | snakecase | upper) }}
{{- $e = append $e (dict "env" $env "file" (printf "%s-%s" $esp ($field | kebabcase)) "ref" (get (get $v.esp $esp) $field) "roles" (list "ingest")) }}
{{- end }}
{{- toJson $e }}
{{- end }}

{{/* Whether a secret reference is set: "true" or "". */}}
{{- define "rebound.secretSet" -}}
{{- if or .existingSecret .value }}true{{ end }}
{{- end }}

{{/* The ESPs whose secret (or, for SES, topic list) is configured. */}}
{{- define "rebound.configuredESPs" -}}
{{- $out := list }}
{{- range $esp, $cfg := .Values.esp }}
{{- $set := false }}
{{- if eq $esp "ses" }}
{{- /* SES is on when topics are listed; its basic auth is optional. */}}
{{- $set = not (empty $cfg.topicARNs) }}
{{- else }}
{{- range $k, $ref := $cfg }}
{{- if and (kindIs "map" $ref) (include "rebound.secretSet" $ref) }}{{ $set = true }}{{ end }}
{{- end }}
{{- end }}
{{- if $set }}{{ $out = append $out $esp }}{{ end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Non-secret REBOUND_* settings every pod reads through envFrom. */}}
{{- define "rebound.envData" -}}
{{- $v := .Values }}
{{- $c := $v.config }}
{{- $d := dict
  "REBOUND_LOG_LEVEL" $c.logLevel
  "REBOUND_LOG_FORMAT" $c.logFormat
  "REBOUND_SHUTDOWN_TIMEOUT" $c.shutdownTimeout
  "REBOUND_MAX_BODY_BYTES" (toString (int64 $c.maxBodyBytes))
  "REBOUND_BATCH_SIZE" (toString (int64 $c.batchSize))
  "REBOUND_PROCESS_CONCURRENCY" (toString (int64 $c.processConcurrency))
  "REBOUND_MAX_ACK_PENDING" (include "rebound.maxAckPending" .)
  "REBOUND_ACK_WAIT" $c.ackWait
  "REBOUND_MAX_DELIVER" (toString (int64 $c.maxDeliver))
  "REBOUND_IDEMPOTENCY_TTL" $c.idempotencyTTL
  "REBOUND_NATS_URL" $v.nats.url
  "REBOUND_SUBJECT_PREFIX" $v.nats.subjectPrefix
  "REBOUND_STREAM" $v.nats.stream
  "REBOUND_DEADLETTER_STREAM" $v.nats.deadletterStream
  "REBOUND_CONSUMER" $v.nats.consumer
  "REBOUND_STREAM_REPLICAS" (toString (int64 $v.nats.streamReplicas))
  "REBOUND_STREAM_MAX_AGE" $v.nats.streamMaxAge
  "REBOUND_DEDUP_WINDOW" $v.nats.dedupWindow
  "REBOUND_REDIS_URL" $v.redis.url
  "REBOUND_REDIS_PREFIX" $v.redis.prefix
}}
{{- with $v.nats.auth.user }}{{ $_ := set $d "REBOUND_NATS_USER" . }}{{ end }}
{{- with $v.redis.sentinel.addrs }}{{ $_ := set $d "REBOUND_REDIS_SENTINEL_ADDRS" (join "," .) }}{{ end }}
{{- with $v.redis.sentinel.master }}{{ $_ := set $d "REBOUND_REDIS_SENTINEL_MASTER" . }}{{ end }}
{{- with $v.redis.cluster.addrs }}{{ $_ := set $d "REBOUND_REDIS_CLUSTER_ADDRS" (join "," .) }}{{ end }}
{{- if $v.policy }}{{ $_ := set $d "REBOUND_POLICY_FILE" "/etc/rebound/policy/policy.yaml" }}{{ end }}
{{- if $v.shadowPolicy }}{{ $_ := set $d "REBOUND_POLICY_SHADOW_FILE" "/etc/rebound/policy/shadow-policy.yaml" }}{{ end }}
{{- if $v.catalogRules }}{{ $_ := set $d "REBOUND_CATALOG_RULES" "/etc/rebound/config/catalog-rules.yaml" }}{{ end }}
{{- range $esp, $cfg := $v.esp }}
{{- with $cfg.tenantFrom }}{{ $_ := set $d (printf "REBOUND_%s_TENANT_FROM" (upper $esp)) . }}{{ end }}
{{- end }}
{{- with $v.esp.ses.topicARNs }}{{ $_ := set $d "REBOUND_SES_TOPIC_ARNS" (join "," .) }}{{ end }}
{{- if include "rebound.secretSet" $v.esp.mandrill.webhookKey }}
{{- $url := $v.esp.mandrill.webhookURL | default (printf "%s/webhooks/mandrill" (include "rebound.publicURL" .)) }}
{{- if not (hasPrefix "http" $url) }}
{{- fail "esp.mandrill.webhookURL: Mandrill signs the URL it posts to: set it, or publicURL, ingress.hosts or httpRoute.hostnames" }}
{{- end }}
{{- $_ := set $d "REBOUND_MANDRILL_WEBHOOK_URL" $url }}
{{- end }}
{{- range $k, $val := $c.extraEnv }}{{ $_ := set $d $k (toString $val) }}{{ end }}
{{- toYaml $d }}
{{- end }}

{{/*
Checks across values that the schema cannot express. Included once, from the
Deployment template, so a wrong combination fails the install with a message.
*/}}
{{- define "rebound.validate" -}}
{{- $v := .Values }}
{{- range $name, $url := dict "nats.url" $v.nats.url "redis.url" $v.redis.url }}
{{- range splitList "," $url }}
{{- if (urlParse (trim .)).userinfo | regexMatch ":" }}
{{- fail (printf "%s carries a password: give it as a secret (%s) so it stays out of the ConfigMap" $name (ternary "redis.password" "nats.auth.password" (eq $name "redis.url"))) }}
{{- end }}
{{- end }}
{{- end }}
{{- $auth := 0 }}
{{- if include "rebound.secretSet" $v.nats.auth.creds }}{{ $auth = add1 $auth }}{{ end }}
{{- if include "rebound.secretSet" $v.nats.auth.nkey }}{{ $auth = add1 $auth }}{{ end }}
{{- if $v.nats.auth.user }}{{ $auth = add1 $auth }}{{ end }}
{{- if gt $auth 1 }}{{ fail "nats.auth: set only one of creds, nkey, user (+ password)" }}{{ end }}
{{- if and (include "rebound.secretSet" $v.nats.auth.password) (not $v.nats.auth.user) }}{{ fail "nats.auth.password needs nats.auth.user" }}{{ end }}
{{- if ne (include "rebound.secretSet" $v.nats.tls.cert) (include "rebound.secretSet" $v.nats.tls.key) }}{{ fail "nats.tls.cert and nats.tls.key: set both or neither" }}{{ end }}
{{- if and (include "rebound.secretSet" $v.redis.tls.ca) (not (hasPrefix "rediss://" $v.redis.url)) }}{{ fail "redis.tls.ca needs TLS: a rediss:// redis.url" }}{{ end }}
{{- if and $v.redis.sentinel.addrs $v.redis.cluster.addrs }}{{ fail "redis: sentinel and cluster cannot both be set" }}{{ end }}
{{- if and $v.redis.sentinel.addrs (not $v.redis.sentinel.master) }}{{ fail "redis.sentinel.master is required with redis.sentinel.addrs" }}{{ end }}
{{- if $v.keda.enabled }}
{{- if not $v.keda.natsServerMonitoringEndpoint }}{{ fail "keda.natsServerMonitoringEndpoint is required with keda.enabled (host:port of NATS monitoring, e.g. nats.nats.svc:8222)" }}{{ end }}
{{- $w := ternary $v.combined $v.process (eq $v.mode "combined") }}
{{- if $w.autoscaling.enabled }}{{ fail (printf "keda.enabled and %s.autoscaling.enabled: KEDA owns the HPA of the process Deployment, turn one off" (ternary "combined" "process" (eq $v.mode "combined"))) }}{{ end }}
{{- end }}
{{- range include "rebound.secretEntries" . | fromJsonArray }}
{{- if and .ref.existingSecret .ref.value }}{{ fail (printf "%s: set existingSecret or value, not both" .env) }}{{ end }}
{{- end }}
{{- if and $v.alerting.existingSecret $v.alerting.secrets }}{{ fail "alerting: set existingSecret or secrets, not both" }}{{ end }}
{{- if and $v.httpRoute.enabled (not $v.httpRoute.parentRefs) }}{{ fail "httpRoute.parentRefs: name the Gateway the route attaches to" }}{{ end }}
{{- if and $v.ingress.enabled (not $v.ingress.hosts) }}{{ fail "ingress.hosts: give at least one host" }}{{ end }}
{{- if and $v.serviceMonitor.enabled (not (include "rebound.apiTokenSet" .)) }}
{{- fail "serviceMonitor.enabled needs auth.apiTokens (or auth.apiToken): the api role's pods serve /metrics on the admin port next to /v1, and without a token that port listens on the pod's loopback only" }}
{{- end }}
{{- end }}

{{/*
Whether an API token is configured: "true" or "". Without one, the pods that run the
api role keep their admin port (/v1, /metrics) on loopback, as the worker requires:
the API is then reachable through kubectl port-forward only.
*/}}
{{- define "rebound.apiTokenSet" -}}
{{- if or (include "rebound.secretSet" .Values.auth.apiTokens) (include "rebound.secretSet" .Values.auth.apiToken) }}true{{ end }}
{{- end }}

{{/* Seconds in a duration of the form 1h2m3s (the schema allows only h, m and s). */}}
{{- define "rebound.seconds" -}}
{{- $h := regexFind "[0-9]+h" . | trimSuffix "h" | default "0" | int }}
{{- $m := regexFind "[0-9]+m" . | trimSuffix "m" | default "0" | int }}
{{- $s := regexFind "[0-9]+s" . | trimSuffix "s" | default "0" | int }}
{{- add (mul $h 3600) (mul $m 60) $s }}
{{- end }}

{{/* Data of the Secret the chart creates: the inline values (stringData). */}}
{{- define "rebound.chartSecretData" -}}
{{- $d := dict }}
{{- range include "rebound.secretEntries" . | fromJsonArray }}
{{- if and .ref.value (not .ref.existingSecret) }}{{ $_ := set $d .file .ref.value }}{{ end }}
{{- end }}
{{- if $d }}{{ toYaml $d }}{{ end }}
{{- end }}
