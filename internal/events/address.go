package events

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// maxAddressLen is RFC 5321's limit on a forward-path (256 octets less the angle brackets).
const maxAddressLen = 254

// idnaProfile converts internationalised domains to their ASCII (punycode) form so that
// "user@bücher.example" and "user@xn--bcher-kva.example" are one suppression, not two.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// NormalizeAddress trims an address, drops enclosing angle brackets, lower-cases the
// domain and converts it to punycode. The local part keeps its case: RFC 5321 leaves it
// to the receiving system, and folding it could merge two real mailboxes.
func NormalizeAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return "", errors.New("required")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", errors.New("not an email address")
	}
	local, domain := s[:at], s[at+1:]
	for i := 0; i < len(local); i++ {
		if c := local[i]; c <= ' ' || c == 0x7f {
			return "", errors.New("not an email address: white space or control character in local part")
		}
	}
	domain = strings.TrimSuffix(domain, ".")
	ascii, err := idnaProfile.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("not an email address: domain %q: %v", domain, err)
	}
	ascii = strings.ToLower(ascii)
	if ascii == "" || strings.ContainsAny(ascii, " \t@<>{}") {
		return "", fmt.Errorf("not an email address: bad domain %q", domain)
	}
	if !strings.Contains(ascii, ".") && !strings.HasPrefix(ascii, "[") {
		return "", fmt.Errorf("not an email address: domain %q has no dot", domain)
	}
	out := local + "@" + ascii
	if len(out) > maxAddressLen {
		return "", fmt.Errorf("not an email address: longer than %d bytes", maxAddressLen)
	}
	return out, nil
}

// Domain returns the domain part of a normalised address.
func Domain(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }
