package loadgen_test

import (
	"testing"

	"github.com/reboundhq/rebound/internal/loadgen"
)

func TestCPURatio(t *testing.T) {
	for _, c := range []struct {
		name        string
		role, ideal map[string]float64
		want        float64
	}{
		{"not measured", nil, nil, 0},
		{"the ideal worker not run", map[string]float64{"self": 2}, nil, 0},
		{"the same parts", map[string]float64{"self": 2, "redis": 4, "nats": 2}, map[string]float64{"self": 1, "redis": 2, "nats": 1}, 0.5},
		{"different parts", map[string]float64{"self": 2, "redis": 4}, map[string]float64{"self": 1, "nats": 1}, 0},
		{"a part missing", map[string]float64{"self": 2, "redis": 4}, map[string]float64{"self": 1}, 0},
	} {
		r := loadgen.Report{ProcessCPU: c.role, IdealCPU: c.ideal}
		if got := r.CPURatio(); got != c.want {
			t.Errorf("%s: CPURatio() = %v, want %v", c.name, got, c.want)
		}
	}
}
