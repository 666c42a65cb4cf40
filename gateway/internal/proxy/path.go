package proxy

import (
	"errors"
	"strings"
)

// route is one of the client paths the gateway forwards. Any other path
// never goes upstream: the provider key must not reach an endpoint the
// gateway does not serve (dot-segments or encoded slashes would otherwise
// let a client walk from /v1/models/ to any upstream path).
type route int

const (
	routeNone        route = iota
	routeRoot              // HEAD /
	routeChat              // /v1/chat/completions
	routeMessages          // /v1/messages
	routeCountTokens       // /v1/messages/count_tokens
	routeModels            // /v1/models
	routeModel             // /v1/models/{id}
)

// errBadPath says why a path is rejected; the message is safe to show.
var errBadPath = errors.New("malformed request path: dot-segments, empty segments, encoded slashes or dots, backslashes and control characters are not accepted")

// matchPath checks a request's escaped path (URL.EscapedPath) and returns
// its route: routeNone for a well-formed path the gateway does not serve,
// errBadPath for a malformed one. A path is well formed when every segment
// is non-empty (but for a trailing slash, which no route has), is neither
// "." nor "..", and consists, once decoded, of letters, digits and
// -._~:@+ only, with no encoded dot. So an accepted path is its own
// cleaned form and means the same decoded or not.
func matchPath(escaped string) (route, error) {
	if escaped == "/" {
		return routeRoot, nil
	}
	rest, ok := strings.CutPrefix(escaped, "/")
	if !ok {
		return routeNone, errBadPath
	}
	rest, trailing := strings.CutSuffix(rest, "/")
	var segs [4]string
	n := 0
	for seg := range strings.SplitSeq(rest, "/") {
		s, ok := decodeSegment(seg)
		if !ok {
			return routeNone, errBadPath
		}
		if n < len(segs) {
			segs[n] = s
		}
		n++
	}
	if trailing || n < 2 || n > 3 || segs[0] != "v1" {
		return routeNone, nil
	}
	switch {
	case n == 3 && segs[1] == "chat" && segs[2] == "completions":
		return routeChat, nil
	case n == 2 && segs[1] == "messages":
		return routeMessages, nil
	case n == 3 && segs[1] == "messages" && segs[2] == "count_tokens":
		return routeCountTokens, nil
	case n == 2 && segs[1] == "models":
		return routeModels, nil
	case n == 3 && segs[1] == "models":
		return routeModel, nil
	}
	return routeNone, nil
}

// decodeSegment decodes one escaped path segment, reporting whether it is
// well formed (see matchPath).
func decodeSegment(seg string) (string, bool) {
	if seg == "" || seg == "." || seg == ".." {
		return "", false
	}
	if !strings.Contains(seg, "%") {
		for i := 0; i < len(seg); i++ {
			if !segmentByte(seg[i]) {
				return "", false
			}
		}
		return seg, true
	}
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) {
				return "", false
			}
			hi, ok1 := unhex(seg[i+1])
			lo, ok2 := unhex(seg[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			c = hi<<4 | lo
			if c == '.' {
				return "", false
			}
			i += 2
		}
		if !segmentByte(c) {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// segmentByte reports whether c may appear in a decoded path segment.
func segmentByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:@+", c) >= 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
