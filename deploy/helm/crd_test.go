package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// crdFiles name, for each custom resource the chart renders, the CRD in testdata/crds
// whose schema it must satisfy (scripts/update-test-crds.sh copies them from the
// projects' Go modules; nothing is fetched at test time).
var crdFiles = map[string]string{
	"monitoring.coreos.com/v1/ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
	"monitoring.coreos.com/v1/PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
	"keda.sh/v1alpha1/ScaledObject":           "keda.sh_scaledobjects.yaml",
	"gateway.networking.k8s.io/v1/HTTPRoute":  "gateway.networking.k8s.io_httproutes.yaml",
}

var (
	schemaMu sync.Mutex
	schemas  = map[string]*jsonschema.Schema{}
)

// validateCustomResource checks a custom resource (as JSON) against its CRD's
// openAPIV3Schema, made strict the way the API server's strict field validation is
// (below), and decodes its metadata strictly into ObjectMeta. It returns the object.
func validateCustomResource(gvk string, j []byte) (map[string]any, error) {
	sch, err := crdSchema(gvk)
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, err
	}
	if err := sch.Validate(inst); err != nil {
		return nil, fmt.Errorf("does not satisfy the CRD schema (%s): %v", crdFiles[gvk], err)
	}
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	var top map[string]any
	if err := yaml.Unmarshal(j, &top); err != nil {
		return nil, err
	}
	mj, err := yaml.Marshal(map[string]any{"metadata": top["metadata"]})
	if err != nil {
		return nil, err
	}
	if mj, err = yaml.YAMLToJSON(mj); err != nil {
		return nil, err
	}
	if err := strictUnmarshal(mj, &meta); err != nil {
		return nil, fmt.Errorf("metadata: %v", err)
	}
	return top, nil
}

// crdSchema compiles, once, the schema of the CRD version that serves gvk.
func crdSchema(gvk string) (*jsonschema.Schema, error) {
	schemaMu.Lock()
	defer schemaMu.Unlock()
	if s, ok := schemas[gvk]; ok {
		return s, nil
	}
	file := filepath.Join("testdata", "crds", crdFiles[gvk])
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var crd struct {
		Spec struct {
			Group    string                `json:"group"`
			Names    struct{ Kind string } `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Served bool   `json:"served"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	i := strings.LastIndex(gvk, "/")
	apiVersion, kind := gvk[:i], gvk[i+1:]
	var root map[string]any
	for _, v := range crd.Spec.Versions {
		if crd.Spec.Group+"/"+v.Name == apiVersion && crd.Spec.Names.Kind == kind && v.Served {
			root = v.Schema.OpenAPIV3Schema
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%s serves no %s", file, gvk)
	}
	strictSchema(root)
	// metadata is validated as ObjectMeta, as the API server does: CRDs only say object.
	if props, ok := root["properties"].(map[string]any); ok {
		props["metadata"] = map[string]any{"type": "object"}
	}
	rj, err := json.Marshal(root)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(rj))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	// OpenAPI v3.0 schemas follow draft 4 (e.g. a boolean exclusiveMinimum).
	c.DefaultDraft(jsonschema.Draft4)
	url := "file:///crds/" + strings.NewReplacer("/", "_", ".", "_").Replace(gvk) + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	schemas[gvk] = s
	return s, nil
}

// strictSchema makes a structural CRD schema reject what the API server would report
// as unknown fields under strict field validation (it prunes them otherwise): an object
// schema without additionalProperties or x-kubernetes-preserve-unknown-fields accepts
// only its properties. It also maps OpenAPI's nullable onto JSON Schema, and drops
// format, whose Kubernetes names (int32, byte, …) mean other things, or nothing, in
// JSON Schema.
func strictSchema(s map[string]any) {
	delete(s, "format")
	if s["nullable"] == true {
		if t, ok := s["type"].(string); ok {
			s["type"] = []any{t, "null"}
		}
	}
	delete(s, "nullable")
	_, hasAdditional := s["additionalProperties"]
	if s["type"] == "object" && !hasAdditional && s["x-kubernetes-preserve-unknown-fields"] != true {
		s["additionalProperties"] = false
	}
	for _, key := range []string{"properties", "patternProperties"} {
		if props, ok := s[key].(map[string]any); ok {
			for _, p := range props {
				if ps, ok := p.(map[string]any); ok {
					strictSchema(ps)
				}
			}
		}
	}
	for _, key := range []string{"items", "additionalProperties"} {
		if sub, ok := s[key].(map[string]any); ok {
			strictSchema(sub)
		}
	}
	// allOf, anyOf and oneOf branches of a structural schema only add value checks to
	// the object's own fields (int-or-string, one of two required): made strict, a
	// branch would reject the object's other fields, so they are left as they are.
}
