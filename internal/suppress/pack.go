package suppress

import (
	"encoding/binary"
	"slices"
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
	pack   func(buf []byte, args ...any) []byte
	decode func(arg string) string // Lua expression of the table packed in arg
}

var (
	// MessagePack values one after the other, not an array: cmsgpack.unpack returns
	// them as multiple values, and the table constructor around it is sized once, where
	// unpacking an array grows its table one element at a time (0.67 against 1.28 µs of
	// Redis time an event's arguments, measured in a Lua loop).
	msgpackCodec = codec{pack: packMsgpack, decode: func(arg string) string { return "{cmsgpack.unpack(" + arg + ")}" }}
	jsonCodec    = codec{pack: packJSON, decode: func(arg string) string { return "cjson.decode(" + arg + ")" }}
)

// packJSON encodes a script's arguments as one JSON array of strings, for cjson.
func packJSON(buf []byte, args ...any) []byte {
	buf = append(buf, '[')
	for i, a := range args {
		if i > 0 {
			buf = append(buf, ',')
		}
		switch v := a.(type) {
		case string:
			buf = appendJSONString(buf, v)
		case []byte:
			buf = appendJSONString(buf, string(v))
		case int:
			buf = append(buf, '"')
			buf = strconv.AppendInt(buf, int64(v), 10)
			buf = append(buf, '"')
		case int64:
			buf = append(buf, '"')
			buf = strconv.AppendInt(buf, v, 10)
			buf = append(buf, '"')
		default:
			panic("packArgs: unsupported argument type")
		}
	}
	return append(buf, ']')
}

// packMsgpack encodes a script's arguments as MessagePack strings one after the other
// (a stream of values, not an array), for Redis's built-in cmsgpack. It grows buf once,
// to the packed size, and copies each argument once (it is on the hot path: one call
// per event).
func packMsgpack(buf []byte, args ...any) []byte {
	size := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			size += 5 + len(v)
		case []byte:
			size += 5 + len(v)
		case int, int64:
			size += 1 + 20
		default:
			panic("packArgs: unsupported argument type")
		}
	}
	buf = slices.Grow(buf, size)
	var num [20]byte
	for _, a := range args {
		switch v := a.(type) {
		case string:
			buf = appendMsgpackStr(buf, len(v))
			buf = append(buf, v...)
		case []byte:
			buf = appendMsgpackStr(buf, len(v))
			buf = append(buf, v...)
		case int:
			d := strconv.AppendInt(num[:0], int64(v), 10)
			buf = append(appendMsgpackStr(buf, len(d)), d...)
		case int64:
			d := strconv.AppendInt(num[:0], v, 10)
			buf = append(appendMsgpackStr(buf, len(d)), d...)
		}
	}
	return buf
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
