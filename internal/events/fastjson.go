package events

import (
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeFast decodes an event in the exact shape Marshal writes, without reflection.
// It reports false for anything else — a key it does not know, null, a number where a
// string belongs, bad JSON — and the caller falls back to encoding/json, which also
// produces the error message. A fuzz target holds the two decoders equal wherever the
// fast one answers. It exists because the process role decodes every event and
// encoding/json was a third of its CPU per event.
func decodeFast(data []byte, e *Event) bool {
	p := parser{b: data}
	p.ws()
	return p.object(func(key string) bool {
		var ok bool
		switch key {
		case "id":
			e.ID, ok = p.str()
		case "esp":
			e.ESP, ok = p.str()
		case "type":
			var t string
			t, ok = p.str()
			e.Type = Type(t)
		case "provider_suppressed":
			e.ProviderSuppressed, ok = p.boolean()
		case "occurred_at":
			var s string
			if s, ok = p.str(); ok {
				var err error
				e.OccurredAt, err = time.Parse(time.RFC3339Nano, s)
				ok = err == nil
			}
		case "recipient":
			e.Recipient, ok = p.str()
		case "sender":
			e.Sender, ok = p.str()
		case "sending_domain":
			e.SendingDomain, ok = p.str()
		case "sending_ip":
			e.SendingIP, ok = p.str()
		case "ip_pool":
			e.IPPool, ok = p.str()
		case "tenant":
			e.Tenant, ok = p.str()
		case "mta":
			e.MTA, ok = p.str()
		case "message_id":
			e.MessageID, ok = p.str()
		case "reply":
			ok = p.reply(&e.Reply)
		case "esp_verdict":
			e.ESPVerdict, ok = p.strMap()
		}
		return ok
	}) && p.end()
}

type parser struct {
	b []byte
	i int
}

// object reads `{"key": value, …}`, handing each key to field, which reads the value
// and reports whether it could (false for an unknown key too).
func (p *parser) object(field func(key string) bool) bool {
	if !p.byte('{') {
		return false
	}
	p.ws()
	if p.byte('}') {
		return true
	}
	for {
		key, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		if !p.byte(':') {
			return false
		}
		p.ws()
		if !field(key) {
			return false
		}
		p.ws()
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
		p.ws()
	}
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *parser) boolean() (bool, bool) {
	switch {
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		p.i += 4
		return true, true
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// str reads a JSON string. Invalid UTF-8 and control characters send the caller to the
// fallback, which treats them the way encoding/json does.
func (p *parser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			p.i += size
		default:
			p.i++
		}
	}
	return "", false
}

// escaped finishes a string that has escapes, from its start.
func (p *parser) escaped(start int) (string, bool) {
	out := append(make([]byte, 0, p.i-start+16), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return "", false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					// A pair is one rune; anything else is left to encoding/json's rules.
					if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
						p.i += 2
						r2, ok := p.hex4()
						if !ok {
							return "", false
						}
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							out = utf8.AppendRune(out, d)
							continue
						}
					}
					return "", false
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			out = append(out, p.b[p.i:p.i+size]...)
			p.i += size
		default:
			out = append(out, c)
			p.i++
		}
	}
	return "", false
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

func (p *parser) reply(r *Reply) bool {
	return p.object(func(key string) bool {
		var ok bool
		switch key {
		case "code":
			start := p.i
			for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
				p.i++
			}
			// Plain non-negative integers only, as Marshal writes them.
			if p.i == start || p.i-start > 9 || (p.b[start] == '0' && p.i-start > 1) {
				return false
			}
			r.Code, _ = strconv.Atoi(string(p.b[start:p.i]))
			ok = true
		case "enhanced":
			r.Enhanced, ok = p.str()
		case "text":
			r.Text, ok = p.str()
		}
		return ok
	})
}

func (p *parser) strMap() (map[string]string, bool) {
	m := map[string]string{}
	ok := p.object(func(key string) bool {
		v, ok := p.str()
		m[key] = v
		return ok
	})
	return m, ok
}
