package events

import "strings"

// RedactAddresses replaces the local part of every email address in s with "***", so a
// reply text can go into logs and alerts without naming the recipient
// ("<dave@example.com>: User unknown" → "<***@example.com>: User unknown").
func RedactAddresses(s string) string {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for at >= 0 {
		abs := last + at
		start := abs
		for start > last && isLocalChar(s[start-1]) {
			start--
		}
		if start < abs && abs+1 < len(s) && isDomainChar(s[abs+1]) {
			b.WriteString(s[last:start])
			b.WriteString("***@")
		} else {
			b.WriteString(s[last : abs+1])
		}
		last = abs + 1
		at = strings.IndexByte(s[last:], '@')
	}
	b.WriteString(s[last:])
	return b.String()
}

func isLocalChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte(".!#$%&'*+-/=?^_`{|}~", c) >= 0 || c >= 0x80
}

func isDomainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '[' || c == '.' || c == '-' || c == '_' || c >= 0x80
}
