package suppress

import (
	"encoding/binary"
	"strconv"
)

// A script's arguments travel packed as one value: one argument instead of twenty costs
// Redis less parsing and fewer Lua strings per event, and the state step is bound by
// Redis CPU. Redis unpacks MessagePack (cmsgpack, in C) about 15 % faster than JSON
// (measured on the state step: 47-54k vs 41-44k events/s); the demo's in-memory
// stand-in has only cjson, so Load picks the codec the server has.

// codec is one way of packing arguments: the Go encoder and the Lua expression that
// unpacks one packed value into a table of strings.
type codec struct {
	json   bool                    // a JSON array of strings, else a MessagePack stream of strings
	decode func(arg string) string // Lua expression of the table packed in arg
}

var (
	// MessagePack values one after the other, not an array: cmsgpack.unpack returns
	// them as multiple values, and the table constructor around it is sized once, where
	// unpacking an array grows its table one element at a time (0.67 against 1.28 µs of
	// Redis time an event's arguments, measured in a Lua loop).
	msgpackCodec = codec{decode: func(arg string) string { return "{cmsgpack.unpack(" + arg + ")}" }}
	jsonCodec    = codec{json: true, decode: func(arg string) string { return "cjson.decode(" + arg + ")" }}
)

// packer appends one script call's arguments to a buffer in a codec's format, typed, so
// that the hot path boxes no number into an interface and builds no []any per event.
type packer struct {
	buf   []byte
	json  bool
	start int // where this value began in buf
}

// begin starts a packed value at the end of buf.
func (c codec) begin(buf []byte) packer {
	p := packer{buf: buf, json: c.json, start: len(buf)}
	if p.json {
		p.buf = append(p.buf, '[')
	}
	return p
}

func (p *packer) sep() {
	if p.json && len(p.buf) > p.start+1 {
		p.buf = append(p.buf, ',')
	}
}

// str appends a string argument.
func (p *packer) str(s string) {
	p.sep()
	if p.json {
		p.buf = appendJSONString(p.buf, s)
		return
	}
	p.buf = append(appendMsgpackStr(p.buf, len(s)), s...)
}

// bytes appends a string argument held in b.
func (p *packer) bytes(b []byte) {
	p.sep()
	if p.json {
		p.buf = appendJSONString(p.buf, string(b))
		return
	}
	p.buf = append(appendMsgpackStr(p.buf, len(b)), b...)
}

// int appends a number, as its decimal string (the scripts read every argument as one).
func (p *packer) int(n int64) {
	p.sep()
	if p.json {
		p.buf = append(strconv.AppendInt(append(p.buf, '"'), n, 10), '"')
		return
	}
	var num [20]byte
	d := strconv.AppendInt(num[:0], n, 10)
	p.buf = append(appendMsgpackStr(p.buf, len(d)), d...)
}

// end closes the value and returns the whole buffer and the packed value within it
// (its capacity capped, so later appends to the buffer never write into it).
func (p *packer) end() (buf, value []byte) {
	if p.json {
		p.buf = append(p.buf, ']')
	}
	return p.buf, p.buf[p.start:len(p.buf):len(p.buf)]
}

// pack packs args (string, []byte, int, int64) into a new value: the general form of
// the typed packer, which the fuzz target and the codec tests hold to the libraries.
func (c codec) pack(args ...any) []byte {
	p := c.begin(nil)
	for _, a := range args {
		switch v := a.(type) {
		case string:
			p.str(v)
		case []byte:
			p.bytes(v)
		case int:
			p.int(int64(v))
		case int64:
			p.int(v)
		default:
			panic("pack: unsupported argument type")
		}
	}
	_, v := p.end()
	return v
}

// appendMsgpackStr appends the header of a MessagePack string of l bytes.
func appendMsgpackStr(buf []byte, l int) []byte {
	switch {
	case l < 32:
		return append(buf, 0xa0|byte(l))
	case l < 1<<8:
		return append(buf, 0xd9, byte(l))
	case l < 1<<16:
		return append(buf, 0xda, byte(l>>8), byte(l))
	default:
		return binary.BigEndian.AppendUint32(append(buf, 0xdb), uint32(l))
	}
}
