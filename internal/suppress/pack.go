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

// codec is one way of packing arguments: the Go encoder and the Lua decoder's name.
type codec struct {
	pack   func(buf []byte, args ...any) []byte
	decode string // Lua function that unpacks ARGV[i]
}

var (
	msgpackCodec = codec{pack: packMsgpack, decode: "cmsgpack.unpack"}
	jsonCodec    = codec{pack: packJSON, decode: "cjson.decode"}
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

// packMsgpack encodes a script's arguments as one MessagePack array of strings, for
// Redis's built-in cmsgpack.
func packMsgpack(buf []byte, args ...any) []byte {
	n := len(args)
	switch {
	case n < 16:
		buf = append(buf, 0x90|byte(n))
	default:
		buf = append(buf, 0xdc, byte(n>>8), byte(n))
	}
	for _, a := range args {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		case int:
			s = strconv.Itoa(v)
		case int64:
			s = strconv.FormatInt(v, 10)
		default:
			panic("packArgs: unsupported argument type")
		}
		l := len(s)
		switch {
		case l < 32:
			buf = append(buf, 0xa0|byte(l))
		case l < 1<<8:
			buf = append(buf, 0xd9, byte(l))
		case l < 1<<16:
			buf = append(buf, 0xda, byte(l>>8), byte(l))
		default:
			buf = append(buf, 0xdb)
			buf = binary.BigEndian.AppendUint32(buf, uint32(l))
		}
		buf = append(buf, s...)
	}
	return buf
}
