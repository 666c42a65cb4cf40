package cache

import (
	"bytes"
	"strings"
)

// topLevelField returns the raw JSON value of the member name of the
// object doc, without decoding the rest: strings are skipped with
// bytes.IndexByte and nested values by counting brackets, which is many
// times faster than a decoder on the large bodies coding agents send. ok
// is false when the member is absent or doc is not a well-formed object as
// far as it was read; a name spelled with escapes is not recognised (the
// caller then treats the request as it would one without the member).
func topLevelField(doc []byte, name string) (value []byte, ok bool) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != '"' {
			return nil, false // '}' (no such member) or malformed
		}
		end := skipString(doc, i)
		if end < 0 {
			return nil, false
		}
		key := doc[i+1 : end-1]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return nil, false
		}
		i = skipSpace(doc, i+1)
		vend := skipValue(doc, i)
		if vend < 0 {
			return nil, false
		}
		if string(key) == name {
			return doc[i:vend], true
		}
		i = skipSpace(doc, vend)
		if i >= len(doc) || doc[i] != ',' {
			return nil, false
		}
		i++
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at doc[i] (a
// quote), or -1.
func skipString(doc []byte, i int) int {
	j := i + 1
	for {
		q := bytes.IndexByte(doc[j:], '"')
		if q < 0 {
			return -1
		}
		q += j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := q - 1; k > i && doc[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index after the value starting at doc[i], or -1.
func skipValue(doc []byte, i int) int {
	if i >= len(doc) {
		return -1
	}
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				if i = skipString(doc, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		j := i
		for j < len(doc) && strings.IndexByte(",}] \t\r\n", doc[j]) < 0 {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
