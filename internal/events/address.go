package events

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

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
	quoted := len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"'
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c == 0x7f {
			return "", errors.New("not an email address: white space or control character in local part")
		}
		if !quoted && !isLocalChar(c) {
			return "", fmt.Errorf("not an email address: %q is not allowed in an unquoted local part", c)
		}
	}
	domain = strings.TrimSuffix(domain, ".")
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		// An address literal such as [192.0.2.1]: no IDNA, just a sanity check.
		if strings.ContainsFunc(domain, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return "", errors.New("not an email address: bad address literal")
		}
		return checkLen(local + "@" + strings.ToLower(domain))
	}
	var ascii string
	if plainHost(domain) {
		// Nearly every domain is plain ASCII: IDNA mapping would only lower-case it, at a
		// cost the process role pays per event.
		ascii = strings.ToLower(domain)
	} else {
		if !utf8.ValidString(domain) {
			return "", errors.New("not an email address: domain is not valid UTF-8")
		}
		a, err := idnaProfile.ToASCII(domain)
		if err != nil {
			return "", fmt.Errorf("not an email address: domain %q: %v", domain, err)
		}
		ascii = strings.ToLower(a)
	}
	if ascii == "" || strings.ContainsAny(ascii, " \t@<>{}") {
		return "", fmt.Errorf("not an email address: bad domain %q", domain)
	}
	if strings.HasPrefix(ascii, ".") || strings.HasSuffix(ascii, ".") || strings.Contains(ascii, "..") {
		return "", fmt.Errorf("not an email address: domain %q has an empty label", domain)
	}
	if !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("not an email address: domain %q has no dot", domain)
	}
	for i := 0; i < len(ascii); i++ {
		if c := ascii[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", fmt.Errorf("not an email address: domain %q has a character not allowed in a host name", domain)
		}
	}
	return checkLen(local + "@" + ascii)
}

// plainHost reports whether d is made of ASCII letters, digits, '-' and '.' only,
// with no label starting "xn--" (punycode goes through IDNA to be checked).
func plainHost(d string) bool {
	if d == "" || strings.Contains(d, "xn--") || strings.Contains(d, "XN--") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	// Labels IDNA would refuse (hyphen at either end, "--" in positions 3-4) take the
	// IDNA path so that it refuses them with its own message.
	for _, l := range strings.Split(d, ".") {
		if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") || len(l) >= 4 && l[2:4] == "--" {
			return false
		}
	}
	return true
}

func checkLen(addr string) (string, error) {
	if len(addr) > maxAddressLen {
		return "", fmt.Errorf("not an email address: longer than %d bytes", maxAddressLen)
	}
	return addr, nil
}

// Domain returns the domain part of a normalised address.
func Domain(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }
