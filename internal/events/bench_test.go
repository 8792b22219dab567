package events

import "testing"

var sample = []byte(`{"id":"generic:abc-123","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"user123@example.com","sender":"news@mail.shop.example","sending_domain":"mail.shop.example","sending_ip":"192.0.2.10","reply":{"text":"550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in virtual mailbox table"}}`)

// BenchmarkDecode is the process role's per-event decode; encoding/json is most of it.
func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(sample); err != nil {
			b.Fatal(err)
		}
	}
}
