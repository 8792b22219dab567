package helm

import (
	"encoding/base64"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const fullname = releaseName + "-" + chartDir

var allRoles = []string{"ingest", "process", "api", "notify"}

func TestLintStrict(t *testing.T) {
	t.Parallel()
	for _, file := range valuesFiles(t) {
		t.Run(caseName(file), func(t *testing.T) {
			t.Parallel()
			out, err := runHelm(t, append([]string{"lint", "--strict", chartDir, "--namespace", namespace}, valuesArgs(file)...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestRenderedObjects renders every values file and checks what a platform team would
// check before installing it.
func TestRenderedObjects(t *testing.T) {
	t.Parallel()
	for _, file := range valuesFiles(t) {
		t.Run(caseName(file), func(t *testing.T) {
			t.Parallel()
			r := render(t, file)
			t.Run("deployments", func(t *testing.T) { checkDeployments(t, r) })
			t.Run("secrets", func(t *testing.T) { checkSecrets(t, r) })
			t.Run("references", func(t *testing.T) { checkReferences(t, r) })
			t.Run("scaling", func(t *testing.T) { checkScaling(t, r) })
			t.Run("exposure", func(t *testing.T) { checkExposure(t, r) })
		})
	}
}

// podEnv is a container's environment as the kubelet builds it from the rendered
// ConfigMaps (envFrom) and literal values; values from references are left out.
func podEnv(t *testing.T, r *rendering, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		o, ok := r.find("ConfigMap", from.ConfigMapRef.Name)
		if !ok {
			t.Errorf("container %s: envFrom ConfigMap %s is not rendered", c.Name, from.ConfigMapRef.Name)
			continue
		}
		maps.Copy(env, o.typed.(*corev1.ConfigMap).Data)
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

func rolesOf(t *testing.T, r *rendering, d *appsv1.Deployment) []string {
	t.Helper()
	return strings.Split(podEnv(t, r, d.Spec.Template.Spec.Containers[0])["REBOUND_ROLES"], ",")
}

func checkDeployments(t *testing.T, r *rendering) {
	ds := r.deployments()
	mode, _ := r.value("mode").(string)
	want := map[string][]string{}
	if mode == "combined" {
		want[fullname+"-combined"] = allRoles
	} else {
		for _, role := range allRoles {
			want[fullname+"-"+role] = []string{role}
		}
	}
	if len(ds) != len(want) {
		t.Fatalf("mode %s renders %d Deployments, want %d", mode, len(ds), len(want))
	}
	appVersion := chartAppVersion(t)
	for _, d := range ds {
		t.Run(d.Name, func(t *testing.T) {
			roles, ok := want[d.Name]
			if !ok {
				t.Fatalf("unexpected Deployment %s", d.Name)
			}
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			env := podEnv(t, r, c)
			if got := env["REBOUND_ROLES"]; got != strings.Join(roles, ",") {
				t.Errorf("REBOUND_ROLES = %q, want %q", got, strings.Join(roles, ","))
			}
			if got := env["REBOUND_HTTP_ADDR"]; got != "0.0.0.0:8080" {
				t.Errorf("REBOUND_HTTP_ADDR = %q, want 0.0.0.0:8080", got)
			}
			// The admin port (/v1, /metrics) leaves loopback only where the worker allows
			// it: with an API token, or in a pod without the api role.
			wantAdmin := "0.0.0.0:9090"
			if slices.Contains(roles, "api") && !apiTokenSet(r) {
				wantAdmin = "127.0.0.1:9090"
			}
			if got := env["REBOUND_ADMIN_ADDR"]; got != wantAdmin {
				t.Errorf("REBOUND_ADMIN_ADDR = %q, want %s", got, wantAdmin)
			}
			// GOGC comes from the role block's gogc (the process role's default 400) and
			// only from it: a role without one keeps the runtime's default.
			block := "combined"
			if mode != "combined" {
				block = roles[0]
			}
			wantGOGC := ""
			if v, ok := r.value(block + ".gogc").(float64); ok && v > 0 {
				wantGOGC = strconv.Itoa(int(v))
			}
			if got := env["GOGC"]; got != wantGOGC {
				t.Errorf("GOGC = %q, want %q (%s.gogc)", got, wantGOGC, block)
			}
			if r.value("image.tag") == "" && r.value("image.digest") == "" {
				if want := "ghcr.io/reboundhq/rebound:" + appVersion; c.Image != want {
					t.Errorf("image %q, want %q (the chart's appVersion)", c.Image, want)
				}
			}

			// Hardening: the restricted Pod Security Standard and no API token.
			psc, sc := pod.SecurityContext, c.SecurityContext
			switch {
			case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
				t.Error("pod securityContext.runAsNonRoot is not true")
			case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Error("pod seccompProfile is not RuntimeDefault")
			}
			switch {
			case sc == nil:
				t.Fatal("container has no securityContext")
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Error("readOnlyRootFilesystem is not true")
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Error("allowPrivilegeEscalation is not false")
			case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
				t.Error("capabilities do not drop ALL")
			case len(sc.Capabilities.Add) > 0:
				t.Errorf("capabilities add %v", sc.Capabilities.Add)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken is not false")
			}

			// Probes on the named port the server listens on (the webhook listener serves
			// them, and is never on loopback).
			if len(c.Ports) != 2 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 || c.Ports[1].Name != "admin" || c.Ports[1].ContainerPort != 9090 {
				t.Errorf("ports %+v, want http on 8080 and admin on 9090", c.Ports)
			}
			for _, p := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/readyz"}} {
				switch {
				case p.probe == nil || p.probe.HTTPGet == nil:
					t.Errorf("no HTTP %s probe", p.name)
				case p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http":
					t.Errorf("%s probe GET %s on port %s, want %s on http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
				}
			}

			// Drain time: SIGKILL only after REBOUND_SHUTDOWN_TIMEOUT.
			drain, err := time.ParseDuration(env["REBOUND_SHUTDOWN_TIMEOUT"])
			if err != nil {
				t.Fatalf("REBOUND_SHUTDOWN_TIMEOUT %q: %v", env["REBOUND_SHUTDOWN_TIMEOUT"], err)
			}
			if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain {
				t.Errorf("terminationGracePeriodSeconds %v is not above REBOUND_SHUTDOWN_TIMEOUT %s", g, drain)
			}

			// Every setting naming a file points into a volume this pod mounts.
			for name, value := range env {
				if strings.HasSuffix(name, "_FILE") || name == "REBOUND_ALERT_CONFIG" || name == "REBOUND_CATALOG_RULES" {
					if !fileMounted(pod, c, value) {
						t.Errorf("%s=%s: no volume of the pod provides that file", name, value)
					}
				}
			}

			// Least privilege: a role gets only the secrets it reads.
			for name := range env {
				if owners := secretOwners(name); owners != nil && !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(owners, r) }) {
					t.Errorf("%s is given to roles %v; only %v read it", name, roles, owners)
				}
			}
			if !slices.Contains(roles, "notify") {
				for _, v := range pod.Volumes {
					if v.Name == "alerting-secrets" {
						t.Error("the alert receivers' keys are mounted in a pod without the notify role")
					}
				}
			}
		})
	}
}

// secretOwners are the roles that read a secret setting; nil for other settings.
func secretOwners(env string) []string {
	switch {
	case !strings.HasSuffix(env, "_FILE"), env == "REBOUND_POLICY_FILE", env == "REBOUND_POLICY_SHADOW_FILE":
		return nil
	case env == "REBOUND_API_TOKEN_FILE", env == "REBOUND_API_TOKENS_FILE":
		return []string{"api"}
	case env == "REBOUND_GENERIC_TOKEN_FILE":
		return []string{"ingest"}
	case env == "REBOUND_ADDRESS_HASH_KEY_FILE":
		return []string{"process", "api", "notify"}
	case strings.HasPrefix(env, "REBOUND_ALERT_"):
		return []string{"notify"}
	case strings.HasPrefix(env, "REBOUND_NATS_"), strings.HasPrefix(env, "REBOUND_REDIS_"):
		return allRoles
	}
	for _, esp := range []string{"SENDGRID", "MAILGUN", "POSTMARK", "SPARKPOST", "MAILJET", "SES", "MANDRILL", "RESEND", "MAILERSEND", "BREVO"} {
		if strings.HasPrefix(env, "REBOUND_"+esp+"_") {
			return []string{"ingest"}
		}
	}
	return []string{"(unknown secret setting)"}
}

// fileMounted reports whether file is provided by one of the container's mounts: a
// ConfigMap or Secret item, a projected item, or a whole Secret mounted as a folder.
func fileMounted(pod corev1.PodSpec, c corev1.Container, file string) bool {
	dir, base := path.Split(file)
	dir = strings.TrimSuffix(dir, "/")
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			var items []corev1.KeyToPath
			switch {
			case v.ConfigMap != nil:
				if v.ConfigMap.Items == nil {
					return true
				}
				items = v.ConfigMap.Items
			case v.Secret != nil:
				if v.Secret.Items == nil {
					return true
				}
				items = v.Secret.Items
			case v.Projected != nil:
				for _, s := range v.Projected.Sources {
					if s.Secret != nil {
						items = append(items, s.Secret.Items...)
					}
				}
			}
			for _, it := range items {
				if it.Path == base {
					return true
				}
			}
		}
	}
	return false
}

// checkSecrets: nothing secret in a ConfigMap or an environment value, every inline
// secret in a Secret the chart renders, and secrets reach the pods as files only.
func checkSecrets(t *testing.T, r *rendering) {
	secrets := r.inlineSecrets()
	for _, o := range r.all("Secret") {
		s := o.typed.(*corev1.Secret)
		for _, v := range s.StringData {
			secrets = append(secrets, v)
		}
		for _, v := range s.Data {
			secrets = append(secrets, string(v))
		}
	}
	rendered := map[string]bool{}
	for _, o := range r.all("Secret") {
		for _, v := range o.typed.(*corev1.Secret).StringData {
			rendered[v] = true
		}
	}
	for _, s := range r.inlineSecrets() {
		if !rendered[s] {
			t.Errorf("an inline secret value (%d bytes) is in no rendered Secret", len(s))
		}
	}
	leaks := func(where, text string) {
		for _, s := range secrets {
			if len(s) >= 6 && (strings.Contains(text, s) || strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(s)))) {
				t.Errorf("%s holds a secret value (%d bytes)", where, len(s))
			}
		}
	}
	for _, o := range r.all("ConfigMap") {
		for k, v := range o.typed.(*corev1.ConfigMap).Data {
			leaks("ConfigMap "+o.Name+" key "+k, v)
		}
	}
	for _, d := range r.deployments() {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				leaks("Deployment "+d.Name+" env "+e.Name, e.Value)
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("Deployment %s env %s reads a Secret into the environment; secrets are files (%s_FILE)", d.Name, e.Name, e.Name)
				}
			}
		}
	}
	for _, o := range r.all("ConfigMap") {
		for k, v := range o.typed.(*corev1.ConfigMap).Data {
			if strings.Contains(v, "://") && strings.Contains(v, "@") && strings.Contains(k, "URL") {
				if u := v[strings.Index(v, "://")+3 : strings.Index(v, "@")]; strings.Contains(u, ":") {
					t.Errorf("ConfigMap %s %s carries a password in its URL", o.Name, k)
				}
			}
		}
	}
}

// checkReferences: what the objects point at exists and matches.
func checkReferences(t *testing.T, r *rendering) {
	ds := r.deployments()
	podsMatching := func(sel map[string]string) []*appsv1.Deployment {
		var out []*appsv1.Deployment
		for _, d := range ds {
			if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
				out = append(out, d)
			}
		}
		return out
	}
	existing := existingSecretNames(r)
	for _, d := range ds {
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector does not match its own pods", d.Name)
		}
		if got := podsMatching(d.Spec.Selector.MatchLabels); len(got) != 1 {
			t.Errorf("Deployment %s: selector matches the pods of %d Deployments", d.Name, len(got))
		}
		pod := d.Spec.Template.Spec
		if _, ok := r.find("ServiceAccount", pod.ServiceAccountName); !ok && r.value("serviceAccount.create") == true {
			t.Errorf("Deployment %s: ServiceAccount %s is not rendered", d.Name, pod.ServiceAccountName)
		}
		vols := map[string]bool{}
		for _, v := range pod.Volumes {
			vols[v.Name] = true
			if v.ConfigMap != nil {
				if _, ok := r.find("ConfigMap", v.ConfigMap.Name); !ok {
					t.Errorf("Deployment %s: ConfigMap %s is not rendered", d.Name, v.ConfigMap.Name)
				}
			}
			var secretNames []string
			if v.Secret != nil {
				secretNames = append(secretNames, v.Secret.SecretName)
			}
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.Secret != nil {
						secretNames = append(secretNames, s.Secret.Name)
					}
				}
			}
			for _, n := range secretNames {
				if _, ok := r.find("Secret", n); !ok && !existing[n] {
					t.Errorf("Deployment %s: Secret %s is neither rendered nor an existingSecret of the values", d.Name, n)
				}
			}
		}
		for _, c := range pod.Containers {
			for _, m := range c.VolumeMounts {
				if !vols[m.Name] {
					t.Errorf("Deployment %s: mount %s has no volume", d.Name, m.Name)
				}
			}
		}
	}
	for _, o := range r.all("Service") {
		s := o.typed.(*corev1.Service)
		matched := podsMatching(s.Spec.Selector)
		if len(matched) == 0 {
			t.Errorf("Service %s selects no pods", s.Name)
		}
		for _, role := range []string{"ingest", "api"} {
			if s.Name == fullname+"-"+role {
				for _, d := range matched {
					if !slices.Contains(rolesOf(t, r, d), role) {
						t.Errorf("Service %s selects %s, which does not run %s", s.Name, d.Name, role)
					}
				}
				if role == "api" && s.Spec.Type != corev1.ServiceTypeClusterIP {
					t.Errorf("Service %s is %s: /v1 stays inside the cluster", s.Name, s.Spec.Type)
				}
			}
		}
		// Webhooks on the http port; /v1 and /metrics on the admin port, never the other way.
		wantPort := "admin"
		if s.Name == fullname+"-ingest" {
			wantPort = "http"
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.String() != wantPort {
				t.Errorf("Service %s targets port %s, want %s", s.Name, p.TargetPort.String(), wantPort)
			}
		}
		if s.Name == fullname+"-api" && !apiTokenSet(r) {
			t.Errorf("Service %s rendered without an API token: the api pods' admin port is on loopback", s.Name)
		}
	}
	for _, o := range r.all("PodDisruptionBudget") {
		p := o.typed.(*policyv1.PodDisruptionBudget)
		if got := podsMatching(p.Spec.Selector.MatchLabels); len(got) != 1 {
			t.Errorf("PodDisruptionBudget %s covers %d Deployments, want 1", p.Name, len(got))
		}
	}
	for _, o := range r.all("NetworkPolicy") {
		n := o.typed.(*networkingv1.NetworkPolicy)
		if got := podsMatching(n.Spec.PodSelector.MatchLabels); len(got) != 1 {
			t.Errorf("NetworkPolicy %s applies to %d Deployments, want 1", n.Name, len(got))
		}
	}
	for _, o := range r.all("ServiceMonitor") {
		sel := nested[map[string]any](o.typed, "spec", "selector", "matchLabels")
		want := map[string]string{}
		for k, v := range sel {
			want[k], _ = v.(string)
		}
		found := false
		for _, so := range r.all("Service") {
			if labels.SelectorFromSet(want).Matches(labels.Set(so.typed.(*corev1.Service).Labels)) {
				found = true
				if len(podsMatching(so.typed.(*corev1.Service).Spec.Selector)) != len(ds) {
					t.Errorf("ServiceMonitor %s scrapes Service %s, which does not cover every Deployment", o.Name, so.Name)
				}
			}
		}
		if !found {
			t.Errorf("ServiceMonitor %s selects no Service", o.Name)
		}
	}
	var nDeploy, nPDB int
	nDeploy, nPDB = len(ds), len(r.all("PodDisruptionBudget"))
	if r.value("podDisruptionBudget.enabled") == true && nPDB != nDeploy {
		t.Errorf("%d PodDisruptionBudgets for %d Deployments", nPDB, nDeploy)
	}
}

func existingSecretNames(r *rendering) map[string]bool {
	out := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["existingSecret"].(string); ok && s != "" {
				out[s] = true
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(r.values)
	return out
}

// checkScaling: one autoscaler at most per Deployment, pointing at a rendered one,
// and no fixed replica count on a Deployment an autoscaler owns.
func checkScaling(t *testing.T, r *rendering) {
	owned := map[string]string{}
	own := func(kind, target string) {
		if prev, ok := owned[target]; ok {
			t.Errorf("Deployment %s is scaled by both %s and %s", target, prev, kind)
		}
		owned[target] = kind
		if _, ok := r.find("Deployment", target); !ok {
			t.Errorf("%s targets Deployment %s, which is not rendered", kind, target)
		}
	}
	for _, o := range r.all("HorizontalPodAutoscaler") {
		h := o.typed.(*autoscalingv2.HorizontalPodAutoscaler)
		if h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s targets a %s", h.Name, h.Spec.ScaleTargetRef.Kind)
		}
		own("HPA "+h.Name, h.Spec.ScaleTargetRef.Name)
		if len(h.Spec.Metrics) == 0 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HPA %s does not scale on CPU", h.Name)
		}
	}
	for _, o := range r.all("ScaledObject") {
		target := nested[string](o.typed, "spec", "scaleTargetRef", "name")
		own("ScaledObject "+o.Name, target)
		d, _ := r.find("Deployment", target)
		if d.typed != nil && !slices.Contains(rolesOf(t, r, d.typed.(*appsv1.Deployment)), "process") {
			t.Errorf("ScaledObject %s scales %s, which does not run the process role", o.Name, target)
		}
		triggers := nested[[]any](o.typed, "spec", "triggers")
		if len(triggers) != 1 {
			t.Fatalf("ScaledObject %s has %d triggers, want the JetStream one", o.Name, len(triggers))
		}
		trig, _ := triggers[0].(map[string]any)
		md, _ := trig["metadata"].(map[string]any)
		if trig["type"] != "nats-jetstream" || md["stream"] != r.value("nats.stream") || md["consumer"] != r.value("nats.consumer") {
			t.Errorf("ScaledObject %s trigger %v, want nats-jetstream on stream %v consumer %v", o.Name, trig, r.value("nats.stream"), r.value("nats.consumer"))
		}
	}
	for _, d := range r.deployments() {
		_, scaled := owned[d.Name]
		if scaled != (d.Spec.Replicas == nil) {
			t.Errorf("Deployment %s: replicas %v while autoscaled=%v (an autoscaled Deployment must leave replicas to it)", d.Name, d.Spec.Replicas, scaled)
		}
	}
}

// checkExposure: only /webhooks/ leaves the cluster, to the ingest Service.
func checkExposure(t *testing.T, r *rendering) {
	for _, o := range r.all("Ingress") {
		in := o.typed.(*networkingv1.Ingress)
		for _, rule := range in.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				if p.Path != "/webhooks/" || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix ||
					p.Backend.Service == nil || p.Backend.Service.Name != fullname+"-ingest" {
					t.Errorf("Ingress %s exposes %s to %+v; only /webhooks/ to the ingest Service", in.Name, p.Path, p.Backend)
				}
			}
		}
	}
	for _, o := range r.all("HTTPRoute") {
		for _, rule := range nested[[]any](o.typed, "spec", "rules") {
			rm, _ := rule.(map[string]any)
			matches, _ := rm["matches"].([]any)
			if len(matches) == 0 {
				t.Errorf("HTTPRoute %s has a rule without matches: it would route every path", o.Name)
			}
			for _, m := range matches {
				if nested[string](m, "path", "value") != "/webhooks/" {
					t.Errorf("HTTPRoute %s matches %v; only /webhooks/", o.Name, m)
				}
			}
			refs, _ := rm["backendRefs"].([]any)
			for _, b := range refs {
				if nested[string](b, "name") != fullname+"-ingest" {
					t.Errorf("HTTPRoute %s sends to %v, not the ingest Service", o.Name, b)
				}
			}
		}
	}
}

// nested reads a path of maps in a decoded custom resource.
func nested[T any](v any, keys ...string) T {
	var zero T
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return zero
		}
		v = m[k]
	}
	out, _ := v.(T)
	return out
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	m := readYAMLMap(t, path.Join(chartDir, "Chart.yaml"))
	v, _ := m["appVersion"].(string)
	if v == "" {
		t.Fatal("Chart.yaml has no appVersion")
	}
	return v
}

// yamlOf is a test helper for values written inline.
func yamlOf(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
