package helm

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// apiTokenSet says whether the rendering's values configure an API token (as the
// chart's rebound.apiTokenSet decides).
func apiTokenSet(r *rendering) bool {
	for _, ref := range []string{"auth.apiTokens", "auth.apiToken"} {
		if r.value(ref+".value") != "" || r.value(ref+".existingSecret") != "" {
			return true
		}
	}
	return false
}

// TestAPIStaysPrivate: with the chart's defaults (no API token) the api pods keep /v1
// on loopback and no Service reaches it; with a token the api Service targets the admin
// port, and no Service or Ingress sends anything but /webhooks/ to the webhook port.
func TestAPIStaysPrivate(t *testing.T) {
	t.Parallel()
	for _, file := range valuesFiles(t) {
		t.Run(caseName(file), func(t *testing.T) {
			t.Parallel()
			r := render(t, file)
			_, hasAPIService := r.find("Service", fullname+"-api")
			if hasAPIService != apiTokenSet(r) {
				t.Errorf("api Service rendered = %v with an API token set = %v", hasAPIService, apiTokenSet(r))
			}
			if file == "" && apiTokenSet(r) {
				t.Fatal("the chart's defaults carry an API token")
			}
			for _, d := range r.deployments() {
				c := d.Spec.Template.Spec.Containers[0]
				env := podEnv(t, r, c)
				if slices.Contains(rolesOf(t, r, d), "api") && !apiTokenSet(r) && !strings.HasPrefix(env["REBOUND_ADMIN_ADDR"], "127.0.0.1:") {
					t.Errorf("%s runs the api role without a token on %s", d.Name, env["REBOUND_ADMIN_ADDR"])
				}
			}
			for _, o := range r.all("Service") {
				s := o.typed.(*corev1.Service)
				for _, p := range s.Spec.Ports {
					if p.TargetPort.String() == "http" && s.Name != fullname+"-ingest" {
						t.Errorf("Service %s reaches the webhook port", s.Name)
					}
				}
			}
		})
	}
}
