{{/* Names. */}}
{{- define "jobrelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jobrelay.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "jobrelay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "jobrelay.labels" -}}
helm.sh/chart: {{ include "jobrelay.chart" . }}
{{ include "jobrelay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobrelay
{{- end -}}

{{- define "jobrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jobrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "jobrelay.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Lease the replicas elect a leader on (in the release namespace): one per release. */}}
{{- define "jobrelay.leaseName" -}}
{{- printf "%s-leader" (include "jobrelay.fullname" .) -}}
{{- end -}}

{{/* The image reference: repository@digest when a digest is set, else repository:tag (tag defaults to appVersion). */}}
{{- define "jobrelay.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The served namespaces as a JSON list (watchNamespaces, plus the deprecated single watchNamespace),
deduplicated, in order. Empty: every namespace (cluster-wide mode).
*/}}
{{- define "jobrelay.watchNamespaces" -}}
{{- $list := list -}}
{{- range .Values.watchNamespaces -}}
{{- $list = append $list . -}}
{{- end -}}
{{- with .Values.watchNamespace -}}
{{- $list = append $list . -}}
{{- end -}}
{{- $list | uniq | toJson -}}
{{- end -}}

{{/* Refusals of combinations the schema cannot express. */}}
{{- define "jobrelay.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicas > 1 needs leaderElection.enabled=true: two replicas reconciling at once would submit RemoteJobs twice" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled=true needs metrics.service.enabled=true (the ServiceMonitor selects that Service)" -}}
{{- end -}}
{{- end -}}

{{/* The operator's rules, in each served namespace (Role) or cluster-wide (ClusterRole). */}}
{{- /*
What src/ calls, split by where it must hold. jobrelay.crdRules: the operator's own kinds, always
cluster-wide — a namespace being deleted loses its Roles before its RemoteJobs and ApiClients are
finalized, and the operator must still see them and remove its finalizers after cancelling the remote
jobs. jobrelay.namespacedRules: credentials and events, only where the operator serves (one Role per
watchNamespaces entry), or cluster-wide when it serves every namespace.
*/}}
{{- define "jobrelay.crdRules" -}}
# Watches, merge patches (status, finalizers) and the TTL delete; apiclients are patched only for the
# in-use finalizer (jobrelay.io/in-use), held while RemoteJobs need them.
- apiGroups: [jobrelay.io]
  resources: [apiclients]
  verbs: [get, list, watch, patch]
# Setting finalizers on an object it does not own (OwnerReferencesPermissionEnforcement).
- apiGroups: [jobrelay.io]
  resources: [remotejobs/finalizers, apiclients/finalizers]
  verbs: [update]
- apiGroups: [jobrelay.io]
  resources: [apiclients/status, remotejobs/status]
  verbs: [patch]
- apiGroups: [jobrelay.io]
  resources: [remotejobs]
  verbs: [get, list, watch, patch, delete]
{{- if .Values.kueue.enabled }}
# Kueue: the WorkloadPriorityClass a queued RemoteJob names is read for its value.
- apiGroups: [kueue.x-k8s.io]
  resources: [workloadpriorityclasses]
  verbs: [get]
{{- end }}
{{- end -}}
{{- define "jobrelay.namespacedRules" -}}
# Credentials and CA bundles that ApiClients name.
- apiGroups: [""]
  resources: [secrets, configmaps]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.kueue.enabled }}
# Kueue: the Workloads of queued RemoteJobs are created, watched and patched (queue name, Kueue's
# finalizer; status: Finished, PodsReady, the quota released after an eviction), and deleted with
# their RemoteJob once finished and released.
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads/status]
  verbs: [patch]
{{- end }}
{{- end -}}
