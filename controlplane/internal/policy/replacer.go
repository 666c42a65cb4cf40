package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// replacement is one [from, to] pair of string_replacement.
type replacement struct {
	from, to string
}

// replacer replaces literal strings, optionally case-insensitively with the
// source's capitalization carried over. It is immutable.
type replacer struct {
	pairs     []replacement
	matchCase bool // match_capitalization: match any case, keep the source's
}

// matchResult is the outcome of matching one pair at a position.
type matchResult int

const (
	noMatch matchResult = iota
	partialMatch
	fullMatch
)

// matchAt matches from at the start of s, returning the bytes of s the
// match spans. partialMatch means s ended inside a possible match.
func (r *replacer) matchAt(s, from string) (matchResult, int) {
	i := 0
	for _, f := range from {
		if i >= len(s) {
			return partialMatch, 0
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c != f && (!r.matchCase || !equalFold(c, f)) {
			return noMatch, 0
		}
		i += size
	}
	return fullMatch, i
}

// equalFold reports whether two runes are equal under simple case folding.
func equalFold(a, b rune) bool {
	return strings.EqualFold(string(a), string(b))
}

// scanPair replaces one pair in s, left to right without overlaps (the
// earlier system's str.replace, or its case-insensitive re.sub). Unless
// final, it stops where the pair could still match with more text and
// returns that tail as rest, to be scanned again with what follows.
func (r *replacer) scanPair(s string, p replacement, final bool) (out, rest string) {
	if !r.matchCase {
		return scanLiteral(s, p.from, p.to, final)
	}
	var sb strings.Builder
	i := 0
	for i < len(s) {
		res, n := r.matchAt(s[i:], p.from)
		switch {
		case res == fullMatch:
			sb.WriteString(r.convert(s[i:i+n], p.to))
			i += n
			continue
		case res == partialMatch && !final:
			return sb.String(), s[i:]
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		sb.WriteString(s[i : i+size])
		i += size
	}
	return sb.String(), ""
}

// scanLiteral is scanPair for a case-sensitive pair.
func scanLiteral(s, from, to string, final bool) (out, rest string) {
	if !strings.Contains(s, from) && (final || !endsWithPrefix(s, from)) {
		return s, ""
	}
	var sb strings.Builder
	for {
		j := strings.Index(s, from)
		if j < 0 {
			break
		}
		sb.WriteString(s[:j])
		sb.WriteString(to)
		s = s[j+len(from):]
	}
	if final {
		sb.WriteString(s)
		return sb.String(), ""
	}
	k := len(s)
	for cut := max(0, len(s)-len(from)+1); cut < len(s); cut++ {
		if utf8.RuneStart(s[cut]) && strings.HasPrefix(from, s[cut:]) {
			k = cut
			break
		}
	}
	sb.WriteString(s[:k])
	return sb.String(), s[k:]
}

// endsWithPrefix reports whether s ends with a proper prefix of from.
func endsWithPrefix(s, from string) bool {
	for n := min(len(s), len(from)-1); n > 0; n-- {
		if strings.HasPrefix(from, s[len(s)-n:]) {
			return true
		}
	}
	return false
}

// replace replaces in a whole text: each pair in turn, on the result of
// the previous one, as the earlier system did (pairs ["foo","barbar"]
// then ["bar","y"] turn "foobar" into "yyy").
func (r *replacer) replace(s string) string {
	for _, p := range r.pairs {
		s, _ = r.scanPair(s, p, true)
	}
	return s
}

// convert returns to with the capitalization of src when matchCase is set:
// upper stays upper, lower lower, Title Title, and a mixed pattern is
// copied character by character.
func (r *replacer) convert(src, to string) string {
	if !r.matchCase {
		return to
	}
	var letters []rune
	for _, c := range src {
		if unicode.IsLetter(c) {
			letters = append(letters, c)
		}
	}
	if len(letters) == 0 {
		return to
	}
	upper, lower := 0, 0
	for _, c := range letters {
		if unicode.IsUpper(c) {
			upper++
		} else if unicode.IsLower(c) {
			lower++
		}
	}
	switch {
	case upper == len(letters) && len(letters) > 1:
		return strings.ToUpper(to)
	case lower == len(letters):
		return strings.ToLower(to)
	case unicode.IsUpper(letters[0]) && upper == 1:
		first, size := utf8.DecodeRuneInString(to)
		return string(unicode.ToTitle(first)) + strings.ToLower(to[size:])
	}
	srcRunes := []rune(src)
	out := []rune(to)
	for i := range out {
		if i >= len(srcRunes) || !unicode.IsLetter(srcRunes[i]) {
			continue
		}
		if unicode.IsUpper(srcRunes[i]) {
			out[i] = unicode.ToUpper(out[i])
		} else {
			out[i] = unicode.ToLower(out[i])
		}
	}
	return string(out)
}

// textStream replaces in one streamed text block. The pairs form a
// pipeline: what one pair emits is the next pair's input, and each pair
// holds back the text that could still begin its match (at most its from,
// less one character) until the next delta or the block's end.
type textStream struct {
	r    *replacer
	held []string // per pair
}

// newTextStream returns the state of one text block.
func newTextStream(r *replacer) *textStream {
	return &textStream{r: r, held: make([]string, len(r.pairs))}
}

// push takes the next text and returns what can be emitted now.
func (t *textStream) push(s string) string {
	for i, p := range t.r.pairs {
		s, t.held[i] = t.r.scanPair(t.held[i]+s, p, false)
	}
	return s
}

// holding reports whether any pair holds text back.
func (t *textStream) holding() bool {
	for _, h := range t.held {
		if h != "" {
			return true
		}
	}
	return false
}

// flush returns the held text, replaced as far as it matches.
func (t *textStream) flush() string {
	s := ""
	for i, p := range t.r.pairs {
		s, _ = t.r.scanPair(t.held[i]+s, p, true)
		t.held[i] = ""
	}
	return s
}
