package ingest

import (
	"fmt"

	"go.uber.org/zap"
)

// Verifier is the one place that decides whether an adapter checks a request. The rule
// is the same for every ESP: a configured secret is always checked; with no secret the
// endpoint refuses every request, unless the operator explicitly opted out of
// verification (REBOUND_<ESP>_INSECURE_SKIP_VERIFY=true), which therefore only applies
// while no secret is set. An opt-out next to a configured secret is ignored, with a
// warning at start: the safe reading of a contradictory setting.
type Verifier struct {
	mode    verifyMode
	refusal error // the Disabled error, built once
}

type verifyMode int

const (
	modeRefuse verifyMode = iota // no secret, no opt-out: the zero Verifier refuses
	modeCheck                    // a secret is configured: check every request
	modeSkip                     // no secret, explicit opt-out: accept unchecked
)

// Verifier returns the esp's Verifier. setting names the secret as Secret and Var do
// ("SIGNING_KEY" for REBOUND_<ESP>_SIGNING_KEY), for the log and the refusal;
// configured says whether the adapter has a usable secret.
func (e Env) Verifier(esp, setting string, configured bool) Verifier {
	log := e.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("esp", esp))
	insecure := e.Insecure(esp)
	switch {
	case configured:
		if insecure {
			log.Warn("webhook verification opt-out ignored: a secret is configured, so every request is checked",
				zap.String("setting", varName(esp, setting)), zap.String("ignored", varName(esp, "INSECURE_SKIP_VERIFY")))
		}
		return Verifier{mode: modeCheck}
	case insecure:
		log.Warn("webhook verification is turned off: every request is accepted unchecked",
			zap.String("setting", varName(esp, setting)))
		return Verifier{mode: modeSkip}
	default:
		return Verifier{mode: modeRefuse, refusal: Disabled(esp, varName(esp, setting))}
	}
}

// Authenticate applies the rule: check's result when a secret is configured, nil when
// verification was turned off, the Disabled error otherwise. check is the ESP's own
// verification of the request and runs only in the first case.
func (v Verifier) Authenticate(check func() error) error {
	switch v.mode {
	case modeCheck:
		return check()
	case modeSkip:
		return nil
	}
	if v.refusal == nil {
		return fmt.Errorf("%w: webhook not configured", ErrUnauthenticated)
	}
	return v.refusal
}

// Unchecked reports whether requests are accepted without the ESP's check (no secret,
// explicit opt-out).
func (v Verifier) Unchecked() bool { return v.mode == modeSkip }

// Checks reports whether requests are checked against a configured secret: only then
// is a one-time token in them the ESP's (see Replayable).
func (v Verifier) Checks() bool { return v.mode == modeCheck }
