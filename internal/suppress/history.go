package suppress

import (
	"strconv"
	"unicode/utf8"
)

// historyEntry is one decision in a recipient's log, stored as JSON.
type historyEntry struct {
	At      int64  `json:"at"`
	Seq     int    `json:"seq,omitempty"` // order within one batch (same At)
	EventID string `json:"event_id"`
	ESP     string `json:"esp"`
	Action  string `json:"action"`
	Class   string `json:"class,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Code    string `json:"code,omitempty"`
	Reply   string `json:"reply,omitempty"`
}

// appendJSON writes the entry as encoding/json would (a test holds them equal). It is
// written by hand because it runs once per event on the hot path, where reflection
// cost more than the rest of the entry's handling together.
func (h *historyEntry) appendJSON(b []byte) []byte {
	b = append(b, `{"at":`...)
	b = strconv.AppendInt(b, h.At, 10)
	if h.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, int64(h.Seq), 10)
	}
	b = appendField(b, "event_id", h.EventID, false)
	b = appendField(b, "esp", h.ESP, false)
	b = appendField(b, "action", h.Action, false)
	b = appendField(b, "class", h.Class, true)
	b = appendField(b, "rule", h.Rule, true)
	b = appendField(b, "code", h.Code, true)
	b = appendField(b, "reply", h.Reply, true)
	return append(b, '}')
}

func appendField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s the way encoding/json does, HTML-safe escapes included.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
