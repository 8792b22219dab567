package console

import (
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/stats"
)

func TestChartStacksSeriesAndLabelsDays(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	hours := make([]stats.Hour, 4) // 22:00 and 23:00 on the 29th, 00:00 and 01:00 on the 30th
	for i := range hours {
		hours[i] = stats.Hour{Start: start.Add(time.Duration(i) * time.Hour), ByAction: map[string]int64{}}
	}
	hours[0].ByAction = map[string]int64{"suppress": 4, "soft": 2}
	hours[2].ByAction = map[string]int64{"suppress": 2, "a": 1, "b": 1, "c": 1, "d": 1, "e": 1}
	ch := buildChart("x", "t", hours, func(h stats.Hour) map[string]int64 { return h.ByAction })
	if ch.Max != 7 {
		t.Errorf("max = %d, want 7 (the tallest hour)", ch.Max)
	}
	if len(ch.Series) != chartSeriesMax+1 || ch.Series[0].Name != "suppress" || ch.Series[0].Total != 6 || ch.Series[chartSeriesMax].Name != "other" {
		t.Errorf("series = %+v: want suppress first, five named and other", ch.Series)
	}
	if len(ch.Days) != 2 || ch.Days[0].Total != 6 || ch.Days[1].Total != 7 {
		t.Fatalf("days = %+v", ch.Days)
	}
	if a := ch.Days[0].Aria; !strings.Contains(a, "2026-11-29: 6 events") || !strings.Contains(a, "suppress 4") || !strings.Contains(a, "soft 2") {
		t.Errorf("day label = %q", a)
	}
	// The tallest bar fills the plot exactly; segments stack without overlap.
	bar := ch.Days[1].Bars[0]
	top, bottom := bar.Segs[len(bar.Segs)-1].Y, bar.Segs[0].Y+bar.Segs[0].H
	if diff := (bottom - top) - ch.PlotH; diff > 0.01 || diff < -0.01 {
		t.Errorf("tallest bar spans %.2f, want the plot's %.2f", bottom-top, ch.PlotH)
	}
	for i := 1; i < len(bar.Segs); i++ {
		if d := bar.Segs[i].Y + bar.Segs[i].H - bar.Segs[i-1].Y; d > 0.01 || d < -0.01 {
			t.Errorf("segment %d does not sit on the one below", i)
		}
	}
	if !strings.Contains(ch.Days[1].Bars[1].Title, "0 events") {
		t.Errorf("an empty hour's title = %q", ch.Days[1].Bars[1].Title)
	}
}
