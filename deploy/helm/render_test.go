package helm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "rebound"
	releaseName = "rb"
	namespace   = "rebound"
)

// helmBinary builds helm once (scripts/install-helm.sh caches it under
// ~/.cache/rebound) and returns its path. These checks are the chart's only test, so
// a helm that cannot be built is a failure, never a skip.
var helmBinary = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "scripts", "install-helm.sh"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/install-helm.sh could not provide helm (it builds helm from its Go module through the module proxy, then caches it): %v\n%s", err, stderr.String())
	}
	bin := strings.TrimSpace(stdout.String())
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("scripts/install-helm.sh printed %q, which is not a file: %v", bin, err)
	}
	return bin, nil
})

// runHelm runs helm with its state (repository config, cache) in a private folder, so
// no developer's helm setup changes what the chart renders, and returns its output.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := helmBinary()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), fmt.Errorf("helm %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

// valuesFiles are the cases: "" for the chart's defaults, then every ci/*-values.yaml,
// the files chart-testing installs too.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("ci/ holds %d values files, want the five realistic ones at least", len(files))
	}
	return append([]string{""}, files...)
}

func caseName(file string) string {
	if file == "" {
		return "defaults"
	}
	return strings.TrimSuffix(filepath.Base(file), "-values.yaml")
}

// valuesArgs are helm's -f flags for a case.
func valuesArgs(file string) []string {
	if file == "" {
		return nil
	}
	return []string{"-f", file}
}

// object is one rendered manifest: its kind, name, source and the decoded value
// (a k8s.io/api type, or map[string]any for a custom resource).
type object struct {
	APIVersion, Kind, Name, Source string
	raw                            []byte // the document as JSON
	typed                          any
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.Kind, o.Name, o.Source) }

// rendering is what one values file renders to.
type rendering struct {
	file    string
	values  map[string]any // the chart's values.yaml overlaid with the file's
	objects []object
}

func (r *rendering) all(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r *rendering) find(kind, name string) (object, bool) {
	for _, o := range r.objects {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return object{}, false
}

// deployments returns the rendered Deployments, decoded.
func (r *rendering) deployments() []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, o := range r.all("Deployment") {
		out = append(out, o.typed.(*appsv1.Deployment))
	}
	return out
}

// coreKinds are the kinds the chart may render from the Kubernetes API itself, each
// decoded into its k8s.io/api type.
var coreKinds = map[string]func() any{
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":           func() any { return &networkingv1.Ingress{} },
}

var (
	docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceLine   = regexp.MustCompile(`(?m)^# Source: (.+)$`)
)

var (
	renderMu    sync.Mutex
	renderCache = map[string]*rendering{}
)

// render runs helm template for a values file once per test binary and decodes every
// document strictly: a core kind into its k8s.io/api type with unknown and duplicate
// fields as errors (case-sensitive, as the API server decodes), a custom resource
// against its CRD's schema (crd_test.go). Any other kind is an error: a new kind needs a
// check here first.
func render(t *testing.T, file string) *rendering {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if r, ok := renderCache[file]; ok {
		return r
	}
	out, err := runHelm(t, append([]string{"template", releaseName, chartDir, "--namespace", namespace}, valuesArgs(file)...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := &rendering{file: file, values: mergedValues(t, file)}
	for _, doc := range docSeparator.Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		src := "?"
		if m := sourceLine.FindStringSubmatch(doc); m != nil {
			src = m[1]
		}
		o, err := decode([]byte(doc))
		o.Source = src
		if err != nil {
			t.Errorf("%s: %s: %v", caseName(file), src, err)
			continue
		}
		r.objects = append(r.objects, o)
	}
	if t.Failed() {
		t.FailNow()
	}
	renderCache[file] = r
	return r
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// decode turns one YAML document into an object, strictly.
func decode(doc []byte) (object, error) {
	j, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are errors
	if err != nil {
		return object{}, fmt.Errorf("not YAML: %v", err)
	}
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &head); err != nil {
		return object{}, fmt.Errorf("no apiVersion, kind and metadata: %v", err)
	}
	o := object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, raw: j}
	gvk := head.APIVersion + "/" + head.Kind
	if o.Name == "" {
		return o, fmt.Errorf("%s without metadata.name", gvk)
	}
	if mk, ok := coreKinds[gvk]; ok {
		o.typed = mk()
		if err := strictUnmarshal(j, o.typed); err != nil {
			return o, fmt.Errorf("%s %s does not decode strictly into its k8s.io/api type: %v", gvk, o.Name, err)
		}
		return o, nil
	}
	if _, ok := crdFiles[gvk]; ok {
		m, err := validateCustomResource(gvk, j)
		if err != nil {
			return o, fmt.Errorf("%s %s: %v", gvk, o.Name, err)
		}
		o.typed = m
		return o, nil
	}
	return o, fmt.Errorf("kind %s has no check in deploy/helm: add it to coreKinds or crdFiles", gvk)
}

// strictUnmarshal decodes JSON as the API server does with strict field validation:
// case-sensitive, unknown and duplicate fields reported, wrong types fatal.
func strictUnmarshal(j []byte, into any) error {
	strict, err := kjson.UnmarshalStrict(j, into)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// mergedValues is the chart's values.yaml with the file's values laid over it, as helm
// merges them (maps merge key by key; anything else is replaced).
func mergedValues(t *testing.T, file string) map[string]any {
	t.Helper()
	base := readYAMLMap(t, filepath.Join(chartDir, "values.yaml"))
	if file != "" {
		mergeInto(base, readYAMLMap(t, file))
	}
	return base
}

func readYAMLMap(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeInto(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// value reads a dotted path of the merged values ("keda.enabled").
func (r *rendering) value(path string) any {
	var cur any = r.values
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// inlineSecrets are the secret values given in the values: every {value: …} of a
// secret reference and every alerting.secrets entry.
func (r *rendering) inlineSecrets() []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["value"].(string); ok && s != "" {
				if _, ref := v["existingSecret"]; ref {
					out = append(out, s)
				}
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
	if m, ok := r.value("alerting.secrets").(map[string]any); ok {
		for _, v := range m {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
