package catalog

import (
	"slices"
	"testing"
)

func TestScore(t *testing.T) {
	t.Parallel()
	c := setup(t)
	rows := []LabelledReply{
		{1, "suppress", "550 5.1.1 <ana@example.org>: Recipient address rejected: User unknown"},
		{2, "soft", "452 4.2.2 Mailbox full"},
		{3, "alert", "530 5.7.0 Authentication required"},
		{4, "none", "552 5.3.4 Message size exceeds fixed limit"},
		{5, "none", "550 5.1.1 User unknown"},        // a label the catalog contradicts: a false suppression
		{6, "suppress", "421 4.7.0 Try again later"}, // a hard bounce it misses
		{7, "alert", "550 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"},
	}
	s := c.Score(rows)
	if s.Rows != 7 || s.Right != 5 || s.FalseSuppressions != 1 || s.HardBounces != 2 || s.MissedHardBounces != 1 ||
		s.TransientSuppressed != 0 || s.SenderSide != 2 || s.SenderCaught != 2 {
		t.Errorf("scorecard = %+v", s)
	}
	if s.Confusion[[2]string{"none", "suppress"}] != 1 || s.Confusion[[2]string{"suppress", "suppress"}] != 1 {
		t.Errorf("confusion = %v", s.Confusion)
	}
	var lines []int
	for _, m := range s.Misses {
		lines = append(lines, m.Line)
	}
	if !slices.Equal(lines, []int{5, 6}) || s.Misses[0].Got != "suppress" || s.Misses[0].Rule == "" {
		t.Errorf("misses = %+v, want lines 5 and 6 with what was decided and by which rule", s.Misses)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		cl   Classification
		want string
	}{
		{Classification{Scope: ScopeRecipient, Permanent: true}, "suppress"},
		{Classification{Scope: ScopeRecipient}, "soft"},
		{Classification{Scope: ScopeSender, Permanent: true}, "alert"},
		{Classification{Scope: ScopeMessage, Permanent: true}, "none"},
		{Classification{Scope: ScopeUnknown, Permanent: true}, "none"},
	} {
		if got := Verdict(tc.cl); got != tc.want {
			t.Errorf("Verdict(%+v) = %s, want %s", tc.cl, got, tc.want)
		}
	}
}
