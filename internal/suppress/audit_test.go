package suppress_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func TestAuditLogNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.store.Audit(b.ctx, suppress.AuditEntry{Actor: "support", Action: suppress.AuditSuppressionAdd, Target: "ana@example.com", Reason: "asked by phone"}, true); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Second)
	if err := b.store.Audit(b.ctx, suppress.AuditEntry{Actor: "oncall", Action: suppress.AuditMassBounceApply, Target: "example.com", Count: 3}, false); err != nil {
		t.Fatal(err)
	}
	log, err := b.store.AuditLog(b.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Actor != "oncall" || log[0].Count != 3 || log[1].Actor != "support" || log[1].Target != "ana@example.com" || log[1].Reason != "asked by phone" {
		t.Fatalf("audit log = %+v", log)
	}
	if !log[0].At.Equal(b.clock.Now().UTC()) || !log[0].At.After(log[1].At) {
		t.Fatalf("times = %s, %s: want the injected clock's", log[0].At, log[1].At)
	}
	if one, _ := b.store.AuditLog(b.ctx, 1); len(one) != 1 || one[0].Actor != "oncall" {
		t.Fatalf("limit 1 = %+v", one)
	}
}

func TestAuditKeepsAnAddressInItsRedisForm(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb), AddressHashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err := st.Audit(t.Context(), suppress.AuditEntry{Actor: "support", Action: suppress.AuditSuppressionRemove, Target: "ana@example.com"}, true); err != nil {
		t.Fatal(err)
	}
	log, err := st.AuditLog(t.Context(), 10)
	if err != nil || len(log) != 1 {
		t.Fatalf("audit log = %+v, %v", log, err)
	}
	if strings.Contains(log[0].Target, "ana") || !strings.HasPrefix(log[0].Target, "h:") {
		t.Fatalf("target = %q: want the keyed hash, not the address", log[0].Target)
	}
}
