package suppress

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/reboundhq/rebound/internal/events"
)

// addrKey is how an address appears in Redis: as it is, or — with an address hash key
// configured — as "h:" and a keyed hash of it, so Redis holds no clear-text address.
// Look-ups hash the address they are given the same way.
func (s *Store) addrKey(addr string) string {
	if len(s.opt.AddressHashKey) == 0 {
		return addr
	}
	mac := hmac.New(sha256.New, s.opt.AddressHashKey)
	mac.Write([]byte(addr))
	return "h:" + hex.EncodeToString(mac.Sum(nil)[:20])
}

// Protect turns a change's address into its Redis form and, when addresses are
// hashed, removes addresses from the reply text too. Apply calls it; the mass-bounce
// guard calls it on the changes it keeps pending, so Redis holds no clear address there
// either. It is idempotent (Protected marks a protected change), because a held change
// is protected once when held and again when it is applied.
func (s *Store) Protect(c *Change) {
	if c.Protected {
		return
	}
	c.Address = s.addrKey(c.Address)
	if len(s.opt.AddressHashKey) > 0 {
		c.Reply = events.RedactAddresses(c.Reply)
	}
	c.Protected = true
}

// EventID returns the form of an event ID that may be stored and logged. Some ESPs'
// IDs carry the recipient (SES "ses:<feedback id>:<recipient>", Resend's per-recipient
// IDs, a generic sender's own): with an address hash key configured, every part of the
// ID that holds an '@' becomes a keyed hash of it, so the recipient log, the soft-bounce
// window, the incident's counted events, held suppressions and info logs hold no clear
// address. The result is stable, so redeliveries still match, and distinct addresses
// stay distinct. Without a key, the ID is returned as it is.
//
// Composite IDs (ingest.CompositeID, "<esp>:h<hex>", for ESPs that give no ID) hash
// fields that include the address without a key: anyone holding the ESP's message IDs
// and timestamps could test candidate addresses against them. With a key they are
// hashed again under it ("<esp>:k<hex>").
func (s *Store) EventID(id string) string {
	if len(s.opt.AddressHashKey) == 0 {
		return id
	}
	if esp, digest, ok := compositeDigest(id); ok {
		mac := hmac.New(sha256.New, s.opt.AddressHashKey)
		mac.Write([]byte(digest))
		return esp + ":k" + hex.EncodeToString(mac.Sum(nil)[:16])
	}
	if !strings.Contains(id, "@") {
		return id
	}
	parts := strings.Split(id, ":")
	for i, p := range parts {
		if strings.Contains(p, "@") {
			parts[i] = s.addrKey(strings.ToLower(p))
		}
	}
	return strings.Join(parts, ":")
}

// compositeDigest splits an ID made by ingest.CompositeID ("<esp>:h" and 32 hex
// digits) into the ESP and the digest.
func compositeDigest(id string) (esp, digest string, ok bool) {
	esp, rest, found := strings.Cut(id, ":h")
	if !found || esp == "" || strings.Contains(esp, ":") || len(rest) != 32 {
		return "", "", false
	}
	if _, err := hex.DecodeString(rest); err != nil {
		return "", "", false
	}
	return esp, rest, true
}
