package transfer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
	"github.com/reboundhq/rebound/internal/transfer"
)

// BenchmarkImportExport imports a 100,000-line SendGrid unsubscribe list into real
// Redis, then exports it as CSV; it reports lines/s of each (docs/performance.md).
//
//	go test -run '^$' -bench ImportExport -benchtime 1x ./internal/transfer/
func BenchmarkImportExport(b *testing.B) {
	const lines = 100000
	var in strings.Builder
	in.WriteString("email,created\n")
	for i := range lines {
		fmt.Fprintf(&in, "user%06d@example.com,2026-02-04 12:00:00\n", i)
	}
	data := in.String()
	for n := 0; n < b.N; n++ {
		rdb := testsvc.RedisClient(b)
		st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(b, rdb)})
		ctx := context.Background()
		if err := st.Load(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum, err := transfer.Import(ctx, st, transfer.NewReader(strings.NewReader(data), transfer.FormatAuto), transfer.Options{Tenant: "bench"})
		if err != nil || sum.Imported != lines {
			b.Fatalf("import: %+v, %v", sum, err)
		}
		b.ReportMetric(lines/time.Since(start).Seconds(), "import-lines/s")
		start = time.Now()
		var out bytes.Buffer
		written, err := transfer.Export(ctx, st, "bench", io.Writer(&out), transfer.FormatCSV, nil)
		if err != nil || written != lines {
			b.Fatalf("export: %d, %v", written, err)
		}
		b.ReportMetric(lines/time.Since(start).Seconds(), "export-lines/s")
	}
}
