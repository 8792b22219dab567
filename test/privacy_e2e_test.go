package test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestAddressHashingLeavesNoAddressBehind posts every ESP's hard bounce and sender-side
// refusal to a worker with REBOUND_ADDRESS_HASH_KEY set, then reads every key and value
// under its prefix and every log line at info and above: no recipient address may be
// in any of them. SES's and Resend's event IDs carry the address, which is the case this
// guards.
func TestAddressHashingLeavesNoAddressBehind(t *testing.T) {
	t.Parallel()
	keys := newESPKeys(t)
	d := newDeployment(t)
	w := d.start(t, append(keys.env(t), "REBOUND_ADDRESS_HASH_KEY=e2e-hash-key-0123456789abcdef", "REBOUND_LOG_LEVEL=info")...)
	sns := newSNSServer(t, keys.sns)
	sesBase := sesIngest(t, d.names, sns)
	run := testsvc.ID()

	post := func(esp string, body []byte) {
		t.Helper()
		var r *http.Request
		if esp == "ses" {
			b, h := snsNotification(t, keys.sns, sns.certURL, body)
			r, _ = http.NewRequest(http.MethodPost, sesBase+"/webhooks/ses", bytes.NewReader(b))
			r.Header = h
		} else {
			r = keys.signedRequest(t, w.base, esp, body)
		}
		if code, resp := do(t, r); code != http.StatusOK || strings.Contains(resp, `"accepted":0`) {
			t.Fatalf("POST /webhooks/%s = %d %s", esp, code, resp)
		}
	}
	var all []string
	for _, c := range espCases {
		body, hard := espFixture(t, c.esp, c.hard, c.hardRcpts, run)
		post(c.esp, body)
		body, block := espFixture(t, c.esp, c.block, []string{c.blockRcpt}, run)
		post(c.esp, body)
		all = append(append(all, hard...), block...)
		for _, rcpt := range hard {
			eventually(t, rcpt+" to be suppressed (looked up by its clear address)", func() bool {
				code, _ := w.get(t, "/v1/suppressions/"+rcpt)
				return code == http.StatusOK
			})
		}
	}
	eventually(t, "the sender-side refusals counted", func() bool {
		_, body := w.get(t, "/v1/alerts")
		total := 0
		alerts, _ := body["alerts"].([]any)
		for _, a := range alerts {
			total += int(a.(map[string]any)["messages"].(float64))
		}
		return total == len(espCases)
	})

	// Every local part is unique to this run, so finding one anywhere is a leak.
	locals := make([]string, len(all))
	for i, a := range all {
		locals[i] = strings.ToLower(a[:strings.IndexByte(a, '@')])
	}
	leak := func(where, text string) {
		low := strings.ToLower(text)
		for _, l := range locals {
			if strings.Contains(low, l) {
				t.Errorf("%s holds a recipient address (%s…): %.300s", where, l, text)
			}
		}
	}
	rdb := testsvc.RedisClient(t)
	ctx := context.Background()
	n := 0
	iter := rdb.Scan(ctx, 0, d.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		n++
		leak("key "+k, k)
		leak("value of "+k, dump(ctx, rdb, k))
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d keys under the prefix: the scan would prove nothing", n)
	}
	// Stop the worker before reading its log: the buffer is written by its copier.
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	err := <-w.exit
	w.exit <- err
	for _, line := range strings.Split(w.log.String(), "\n") {
		if strings.Contains(line, `"level":"debug"`) {
			continue // debug may name addresses; info and above must not
		}
		leak("log line", line)
	}
}

// dump renders a key's whole value as text, whatever its type.
func dump(ctx context.Context, rdb *redis.Client, k string) string {
	var b strings.Builder
	switch rdb.Type(ctx, k).Val() {
	case "string":
		b.WriteString(rdb.Get(ctx, k).Val())
	case "hash":
		for f, v := range rdb.HGetAll(ctx, k).Val() {
			b.WriteString(f + "=" + v + "\n")
		}
	case "zset":
		for _, m := range rdb.ZRange(ctx, k, 0, -1).Val() {
			b.WriteString(m + "\n")
		}
	case "set":
		for _, m := range rdb.SMembers(ctx, k).Val() {
			b.WriteString(m + "\n")
		}
	case "list":
		for _, m := range rdb.LRange(ctx, k, 0, -1).Val() {
			b.WriteString(m + "\n")
		}
	}
	return b.String()
}
