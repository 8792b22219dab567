package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecoders feeds arbitrary bodies to the decoders of every /v1 request body: they
// must never panic, and whatever they refuse gets a JSON error a client can read.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{
		`{"address":"a@example.com","tenant":"acme","reason":"manual","ttl":"30d"}`,
		`{"tenant":"","addresses":["a@example.com","b@example.net"]}`,
		`{"reply":"550 5.1.1 user unknown"}`,
		`{"replies":["530 5.7.0 Authentication required"]}`,
		`{"address":1}`, `{"addresses":{}}`, `[]`, `null`, `{"unknown":true}`, "{\"reply\":\"\xff\"}", `{"a":` + strings.Repeat("[", 1000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&AddRequest{}, &CheckRequest{}, &ClassifyRequest{}} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/v1/x", strings.NewReader(string(body)))
			if decode(w, r, v) {
				continue
			}
			if w.Code != http.StatusBadRequest {
				t.Fatalf("refused body answered %d", w.Code)
			}
			var e ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != "bad_request" || e.Error.Message == "" {
				t.Fatalf("refusal is not a JSON error: %q", w.Body.String())
			}
		}
	})
}
