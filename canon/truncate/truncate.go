// Package truncate writes the marker that stands for a recorded body too
// large to keep whole. The gateway's recorder and the control plane's call
// session both bound the bodies they record with it, so that a reader
// (the store's search text, the response cache, the pages) recognises one
// marker whoever truncated the body.
package truncate

import (
	"strconv"
	"unicode/utf8"
)

// Field is the top-level field of the JSON object that stands for a body
// a record does not keep whole:
//
//	{"_luthien_truncated":{"original_bytes":5000000,"kept_bytes":1048493},"head":"{\"model\":..."}
//
// original_bytes is the body's length, kept_bytes how many of its first
// bytes head holds, as text (a JSON string: the body's first kept_bytes
// bytes, cut on a UTF-8 boundary, a byte that is not UTF-8 written as
// U+FFFD). The whole object takes at most the bound it was written for.
const Field = "_luthien_truncated"

// DefaultMaxBytes is the usual bound of a recorded body: 1 MiB.
const DefaultMaxBytes = 1 << 20

// Body returns the marker standing for body (see Field), of at most
// maxBytes bytes. It truncates whatever the length of body: the caller
// decides which bodies are too long.
func Body(body []byte, maxBytes int) []byte {
	total := strconv.Itoa(len(body))
	const (
		open = `{"` + Field + `":{"original_bytes":`
		kept = `,"kept_bytes":`
		head = `},"head":"`
		end  = `"}`
	)
	// kept_bytes has at most as many digits as original_bytes.
	room := maxBytes - len(open) - 2*len(total) - len(kept) - len(head) - len(end)
	text, n := AppendJSONHead(make([]byte, 0, max(room, 0)), body, room)
	b := make([]byte, 0, len(open)+2*len(total)+len(kept)+len(head)+len(text)+len(end))
	b = append(b, open...)
	b = append(b, total...)
	b = append(b, kept...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, head...)
	b = append(b, text...)
	return append(b, end...)
}

// AppendJSONHead appends to dst, as the contents of a JSON string (no
// quotes), as much of the start of src as takes at most room bytes, whole
// UTF-8 sequences only; a byte that is not UTF-8 becomes \ufffd. It
// returns dst and the number of bytes of src written.
func AppendJSONHead(dst, src []byte, room int) ([]byte, int) {
	i, used := 0, 0
	for i < len(src) {
		c := src[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			// A run of bytes written as they are.
			j := i + 1
			for j < len(src) && j-i < room-used {
				if d := src[j]; d < 0x20 || d == '"' || d == '\\' || d >= utf8.RuneSelf {
					break
				}
				j++
			}
			if used+j-i > room {
				break
			}
			dst = append(dst, src[i:j]...)
			used += j - i
			i = j
			continue
		}
		var buf [6]byte
		esc, size := buf[:2], 1
		switch {
		case c == '"' || c == '\\':
			buf[0], buf[1] = '\\', c
		case c == '\n':
			buf[0], buf[1] = '\\', 'n'
		case c == '\r':
			buf[0], buf[1] = '\\', 'r'
		case c == '\t':
			buf[0], buf[1] = '\\', 't'
		case c < 0x20:
			buf = [6]byte{'\\', 'u', '0', '0', hexDigit(c >> 4), hexDigit(c & 0xf)}
			esc = buf[:]
		default:
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				esc = append(buf[:0], `\ufffd`...)
			} else {
				esc, size = src[i:i+n], n
			}
		}
		if used+len(esc) > room {
			break
		}
		dst = append(dst, esc...)
		used += len(esc)
		i += size
	}
	return dst, i
}

func hexDigit(b byte) byte { return "0123456789abcdef"[b] }
