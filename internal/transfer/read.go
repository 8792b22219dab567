package transfer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format is a file's syntax. The shape (which ESP) is recognised from the columns
// whatever the syntax.
type Format string

// The formats Reader reads; FormatAuto looks at the first byte: '{' NDJSON or a JSON
// document holding a list, '[' a JSON array, anything else CSV.
const (
	FormatAuto   Format = ""
	FormatNDJSON Format = "ndjson"
	FormatCSV    Format = "csv"
	FormatJSON   Format = "json" // one document: an array, or an object holding one
)

// ParseFormat reads a format name ("" is auto).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatAuto, FormatNDJSON, FormatCSV, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want ndjson, csv or json (or none: recognised from the content)", s)
}

// maxElement bounds what the JSON decoder may read for one element of a JSON document
// (or one value it skips): an element is at most maxLine long, plus the decoder's
// read-ahead. A larger one ends the import with an error instead of growing memory.
const maxElement = 4 * maxLine

// errElementTooLarge is what elementLimit answers once an element has read too much.
var errElementTooLarge = fmt.Errorf("an element is larger than %d bytes", maxElement)

// elementLimit is the reader under a JSON document's decoder; reset gives the next
// element its allowance.
type elementLimit struct {
	r    io.Reader
	left int
}

func (l *elementLimit) reset() { l.left = maxElement }

func (l *elementLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errElementTooLarge
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= n
	return n, err
}

// maxLine bounds one NDJSON line or CSV record: a longer one is rejected, not read
// into memory whole.
const maxLine = 64 << 10

// Item is one line (CSV, NDJSON) or one element (a JSON document) of the input:
// the entry, or why it was rejected.
type Item struct {
	Line  int // line number (CSV, NDJSON) or element number (a JSON document), from 1
	Entry Entry
	Err   error
}

// Reader reads entries from an export, one Item at a time, without holding the file.
type Reader struct {
	br     *bufio.Reader
	format Format
	next   func() (Item, bool)
	err    error // what stopped the reading early
}

// NewReader reads r as format (FormatAuto: recognised from the first byte).
func NewReader(r io.Reader, format Format) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), format: format}
}

// Err is what stopped the reading before the end of the input (an I/O error, a JSON
// document broken in the middle), or nil.
func (r *Reader) Err() error { return r.err }

// Next returns the next item, and false at the end of the input (or when Err is set).
func (r *Reader) Next() (Item, bool) {
	if r.next == nil {
		if err := r.start(); err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			return Item{}, false
		}
	}
	return r.next()
}

func (r *Reader) start() error {
	f := r.format
	if f == FormatAuto {
		first, err := r.firstByte()
		if err != nil {
			return err
		}
		switch first {
		case '{':
			f = FormatNDJSON // unless the first object holds the list: see ndjson
		case '[':
			f = FormatJSON
		default:
			f = FormatCSV
		}
	}
	switch f {
	case FormatCSV:
		r.next = r.csv()
	case FormatJSON:
		r.next = r.document()
	default:
		r.next = r.ndjson()
	}
	return nil
}

// firstByte peeks at the first byte that is not white space or a byte-order mark.
func (r *Reader) firstByte() (byte, error) {
	if b, err := r.br.Peek(3); err == nil && bytes.Equal(b, []byte{0xef, 0xbb, 0xbf}) {
		_, _ = r.br.Discard(3)
	}
	for {
		b, err := r.br.Peek(1)
		if err != nil {
			return 0, err
		}
		if b[0] != ' ' && b[0] != '\t' && b[0] != '\r' && b[0] != '\n' {
			return b[0], nil
		}
		_, _ = r.br.Discard(1)
	}
}

// maxRecordLines bounds the lines one CSV record may span (a quoted field with line
// breaks, such as a multi-line reply): an unterminated quote then costs its own line,
// not the rest of the file.
const maxRecordLines = 20

func (r *Reader) csv() func() (Item, bool) {
	type rawLine struct {
		text    []byte
		num     int
		tooLong bool
	}
	var header []string
	read := 0           // lines read from the input
	var queue []rawLine // lines read ahead for a record that turned out broken: read again
	next := func() (rawLine, error) {
		if len(queue) > 0 {
			l := queue[0]
			queue = queue[1:]
			return l, nil
		}
		text, tooLong, err := readLine(r.br)
		if len(text) == 0 && err != nil {
			return rawLine{}, err
		}
		read++
		return rawLine{text: text, num: read, tooLong: tooLong}, nil
	}
	return func() (Item, bool) {
		for {
			l, err := next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					r.err = fmt.Errorf("read line %d: %w", read+1, err)
				}
				return Item{}, false
			}
			first := l.num
			if l.tooLong {
				return Item{Line: first, Err: fmt.Errorf("longer than %d bytes", maxLine)}, true
			}
			rec := append([]byte(nil), l.text...)
			// A record goes on while its quotes are unbalanced ("" inside a quoted field
			// counts twice, so the count stays right). If it does not end within
			// maxRecordLines, only its first line is rejected: the others are read again.
			var joined []rawLine
			for bytes.Count(rec, []byte{'"'})%2 == 1 {
				more, err := next()
				if err == nil {
					joined = append(joined, more)
				}
				if err != nil || more.tooLong || len(joined) == maxRecordLines {
					queue = append(joined, queue...)
					return Item{Line: first, Err: errors.New("csv: a quoted field is not closed")}, true
				}
				rec = append(append(rec, '\n'), more.text...)
			}
			cr := csv.NewReader(bytes.NewReader(rec))
			cr.FieldsPerRecord = -1
			cr.LazyQuotes = true
			fieldsRead, err := cr.Read()
			if errors.Is(err, io.EOF) {
				continue // a blank line
			}
			if err != nil {
				return Item{Line: first, Err: fmt.Errorf("csv: %w", err)}, true
			}
			if header == nil {
				header = make([]string, len(fieldsRead))
				for i, h := range fieldsRead {
					header[i] = normKey(strings.TrimPrefix(h, "\ufeff"))
				}
				if _, err := shape(fieldsOf(header, nil)); err != nil {
					r.err = fmt.Errorf("csv header on line %d: %w", first, err)
					return Item{}, false
				}
				continue
			}
			if len(fieldsRead) == 1 && strings.TrimSpace(fieldsRead[0]) == "" {
				continue
			}
			if len(fieldsRead) != len(header) {
				return Item{Line: first, Err: fmt.Errorf("%d columns, the header has %d", len(fieldsRead), len(header))}, true
			}
			e, err := entryFrom(fieldsOf(header, fieldsRead))
			return Item{Line: first, Entry: e, Err: err}, true
		}
	}
}

func fieldsOf(header, rec []string) fields {
	f := make(fields, len(header))
	for i, h := range header {
		v := ""
		if i < len(rec) {
			v = strings.TrimSpace(rec[i])
		}
		f[h] = v
	}
	return f
}

// ndjson reads one object a line. If the first object is a JSON document holding the
// list (SES's {"SuppressedDestinationSummaries": […]}, Postmark's {"Suppressions": […]},
// Mailgun's {"items": […]}) on several lines, it is read as a document instead.
func (r *Reader) ndjson() func() (Item, bool) {
	line := 0
	var doc func() (Item, bool)
	return func() (Item, bool) {
		if doc != nil {
			return doc()
		}
		for {
			raw, tooLong, err := readLine(r.br)
			if len(raw) == 0 && err != nil {
				if !errors.Is(err, io.EOF) {
					r.err = fmt.Errorf("read line %d: %w", line+1, err)
				}
				return Item{}, false
			}
			line++
			if tooLong {
				return Item{Line: line, Err: fmt.Errorf("longer than %d bytes", maxLine)}, true
			}
			raw = bytes.TrimSpace(raw)
			if len(raw) == 0 {
				continue
			}
			f, err := objectFields(raw)
			if err != nil && line == 1 && !json.Valid(raw) {
				// Not one object on the line: a document spread over lines.
				doc = r.documentFrom(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\n"), r.br))
				return doc()
			}
			if err == nil && line == 1 {
				if list, ok := listOf(f); ok {
					doc = r.elements(json.NewDecoder(bytes.NewReader(list)), nil) // one line: within maxLine
					return doc()
				}
			}
			if err != nil {
				return Item{Line: line, Err: err}, true
			}
			e, err := entryFrom(f)
			return Item{Line: line, Entry: e, Err: err}, true
		}
	}
}

// readLine reads one line, at most maxLine bytes of it (tooLong: the rest was skipped).
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		part, isPrefix, err := br.ReadLine()
		if len(line)+len(part) <= maxLine {
			line = append(line, part...)
		} else {
			tooLong = true
		}
		if err != nil || !isPrefix {
			return line, tooLong, err
		}
	}
}

// listKeys are the names under which the ESPs' list APIs put the list.
var listKeys = []string{"suppresseddestinationsummaries", "suppressions", "items"}

// listOf returns the list a document object holds under one of listKeys.
func listOf(f fields) ([]byte, bool) {
	for _, k := range listKeys {
		if v, ok := f[k]; ok && strings.HasPrefix(v, "[") {
			return []byte(v), true
		}
	}
	return nil, false
}

// document reads the whole input as one JSON document: an array of objects, or an
// object holding one under a listKeys name.
func (r *Reader) document() func() (Item, bool) { return r.documentFrom(r.br) }

func (r *Reader) documentFrom(in io.Reader) func() (Item, bool) {
	lim := &elementLimit{r: in}
	lim.reset()
	dec := json.NewDecoder(lim)
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		r.err = fmt.Errorf("json: %w", err)
		return func() (Item, bool) { return Item{}, false }
	}
	switch tok {
	case json.Delim('['):
		return r.elements(dec, lim)
	case json.Delim('{'):
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				break
			}
			name, _ := key.(string)
			if isListKey(normKey(name)) {
				if t, err := dec.Token(); err == nil && t == json.Delim('[') {
					return r.elements(dec, lim)
				}
				break
			}
			lim.reset()
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				break
			}
		}
	}
	r.err = errors.New("json: want an array of objects, or an object with SuppressedDestinationSummaries, Suppressions or items")
	return func() (Item, bool) { return Item{}, false }
}

func isListKey(k string) bool {
	for _, l := range listKeys {
		if k == l {
			return true
		}
	}
	return false
}

// elements reads the objects of an array whose '[' dec has already read (listOf's
// value is read from its start: the '[' is consumed on the first call).
// lim, when not nil, is the reader under dec: each element may read at most
// maxElement bytes from it.
func (r *Reader) elements(dec *json.Decoder, lim *elementLimit) func() (Item, bool) {
	n := 0
	opened := false
	return func() (Item, bool) {
		if !opened {
			opened = true
			if dec.InputOffset() == 0 {
				if t, err := dec.Token(); err != nil || t != json.Delim('[') {
					r.err = errors.New("json: the list is not an array")
					return Item{}, false
				}
			}
		}
		if !dec.More() {
			return Item{}, false
		}
		n++
		if lim != nil {
			lim.reset()
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			r.err = fmt.Errorf("json element %d: %w (the rest of the document is unreadable)", n, err)
			return Item{}, false
		}
		f, err := objectFields(raw)
		if err != nil {
			return Item{Line: n, Err: err}, true
		}
		e, err := entryFrom(f)
		return Item{Line: n, Entry: e, Err: err}, true
	}
}

// objectFields reads one JSON object into fields: strings as they are, numbers and
// booleans as written, arrays of strings joined with ',' (Mailgun's tags), null as "".
func objectFields(raw []byte) (fields, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("json: want one object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("json: more than one value on the line")
	}
	f := make(fields, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			f[normKey(k)] = ""
		case string:
			f[normKey(k)] = strings.TrimSpace(v)
		case json.Number:
			f[normKey(k)] = v.String()
		case bool:
			f[normKey(k)] = fmt.Sprint(v)
		case []any:
			if isListKey(normKey(k)) { // the list of a one-line document: see listOf
				b, _ := json.Marshal(v)
				f[normKey(k)] = string(b)
				continue
			}
			parts := make([]string, 0, len(v))
			for _, x := range v {
				parts = append(parts, fmt.Sprint(x))
			}
			f[normKey(k)] = strings.Join(parts, ",")
		default:
			b, _ := json.Marshal(v)
			f[normKey(k)] = string(b)
		}
	}
	return f, nil
}
