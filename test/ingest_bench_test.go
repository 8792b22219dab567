package test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/sendgrid"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// eventsPerRequest is the batch size of every request in BenchmarkHTTPIngest.
const eventsPerRequest = 100

// BenchmarkHTTPIngest measures the HTTP ingest path in-process: the real ingest
// handler (authenticate, parse, normalise) and stream.Publisher, served by an httptest
// server on 127.0.0.1 and publishing to a private stream on the real JetStream, with
// `clients` goroutines posting requests of 100 events over loopback keep-alive
// connections. One iteration is one request; events/s counts accepted events. The
// issue's bar is 20,000 events/s on the shared 2-core machine.
//
//	go test ./test -run '^$' -bench HTTPIngest -benchtime 300x
func BenchmarkHTTPIngest(b *testing.B) {
	for _, clients := range []int{4} {
		b.Run(fmt.Sprintf("generic/clients=%d", clients), func(b *testing.B) {
			benchIngest(b, clients, newGenericLoad())
		})
		b.Run(fmt.Sprintf("sendgrid/clients=%d", clients), func(b *testing.B) {
			benchIngest(b, clients, newSendGridLoad(b))
		})
	}
}

// benchReplies are the reply texts of the generated events (their classification
// does not matter here: ingest does not classify).
var benchReplies = []string{
	"550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
	"452 4.2.2 The email account that you tried to reach is over quota",
	"550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy - gsmtp",
	"421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints",
}

// load makes the requests of one benchmark variant: the adapter on the server side and
// a request of eventsPerRequest fresh events (unique IDs) on the client side.
type load struct {
	adapter ingest.Adapter
	request func(base, run string, n int64) *http.Request
}

func newGenericLoad() load {
	const token = "bench-token"
	return load{
		adapter: ingest.NewGeneric(token),
		request: func(base, run string, n int64) *http.Request {
			var body bytes.Buffer
			body.WriteByte('[')
			for i := range eventsPerRequest {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"id":"generic:%s-%d-%d","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"user%d@example.com","sender":"news@mail.shop.example","sending_ip":"192.0.2.10","reply":{"code":550,"enhanced":"5.1.1","text":%q}}`,
					run, n, i, i, benchReplies[i%len(benchReplies)])
			}
			body.WriteByte(']')
			r, _ := http.NewRequest(http.MethodPost, base+"/webhooks/generic", &body)
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Content-Type", "application/json")
			return r
		},
	}
}

// newSendGridLoad is the signed variant: SendGrid batches, each signed with ECDSA
// P-256 by the client and verified by the adapter.
func newSendGridLoad(b *testing.B) load {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	vars := map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": base64.StdEncoding.EncodeToString(der)}
	a, err := sendgrid.New(ingest.Env{Getenv: func(k string) string { return vars[k] }, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	return load{
		adapter: a,
		request: func(base, run string, n int64) *http.Request {
			var body bytes.Buffer
			body.WriteByte('[')
			for i := range eventsPerRequest {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"email":"user%d@example.com","timestamp":1767225600,"event":"bounce","type":"bounce","status":"5.1.1","reason":%q,"sg_event_id":"%s-%d-%d","sg_message_id":"m%d.filterdrecv","ip":"203.0.113.41","pool":{"name":"transactional","id":1}}`,
					i, benchReplies[i%len(benchReplies)], run, n, i, n)
			}
			body.WriteByte(']')
			stamp := strconv.FormatInt(time.Now().Unix(), 10)
			sum := sha256.Sum256(append([]byte(stamp), body.Bytes()...))
			sig, _ := ecdsa.SignASN1(rand.Reader, priv, sum[:])
			r, _ := http.NewRequest(http.MethodPost, base+"/webhooks/sendgrid", &body)
			r.Header.Set(sendgrid.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
			r.Header.Set(sendgrid.HeaderTimestamp, stamp)
			r.Header.Set("Content-Type", "application/json")
			return r
		},
	}
}

func benchIngest(b *testing.B, clients int, l load) {
	_, js := testsvc.JetStream(b)
	names := testsvc.Names(b, js)
	if _, err := stream.Provision(context.Background(), js, names, stream.DefaultSettings()); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.NewHandler(stream.NewPublisher(js, names, 10*time.Second), metrics.New(), zap.NewNop(), 8<<20, l.adapter).Register(mux)
	srv := httptest.NewServer(mux) // 127.0.0.1
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	b.Cleanup(client.CloseIdleConnections)
	run := testsvc.ID()

	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= int64(b.N) || failed.Load() != nil {
					return
				}
				resp, err := client.Do(l.request(srv.URL, run, n))
				if err != nil {
					failed.Store(err.Error())
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"accepted":100`)) {
					failed.Store(fmt.Sprintf("status %d: %s", resp.StatusCode, body))
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatalf("request failed: %v", f)
	}
	b.ReportMetric(float64(b.N*eventsPerRequest)/elapsed.Seconds(), "events/s")

	// Every accepted event is in the stream, once.
	info, err := js.Stream(context.Background(), names.Stream)
	if err != nil {
		b.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != uint64(b.N*eventsPerRequest) {
		b.Fatalf("stream holds %d events, want %d", got, b.N*eventsPerRequest)
	}
}
