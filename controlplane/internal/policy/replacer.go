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

// scan replaces in s. Unless final, it stops where a pair could still
// match with more text and returns that tail as rest, to be scanned again
// with what follows. Pairs are tried in order; the first that matches
// wins.
func (r *replacer) scan(s string, final bool) (out, rest string) {
	var sb strings.Builder
	i := 0
outer:
	for i < len(s) {
		for _, p := range r.pairs {
			res, n := r.matchAt(s[i:], p.from)
			switch {
			case res == fullMatch:
				sb.WriteString(r.convert(s[i:i+n], p.to))
				i += n
				continue outer
			case res == partialMatch && !final:
				return sb.String(), s[i:]
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		sb.WriteString(s[i : i+size])
		i += size
	}
	return sb.String(), ""
}

// replace replaces in a whole text.
func (r *replacer) replace(s string) string {
	out, _ := r.scan(s, true)
	return out
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

// textStream replaces in one streamed text block: text that could be the
// start of a match is held back until the next delta or the block's end.
type textStream struct {
	r    *replacer
	held string
}

// push takes the next text and returns what can be emitted now.
func (t *textStream) push(s string) string {
	out, rest := t.r.scan(t.held+s, false)
	t.held = rest
	return out
}

// flush returns the held text, replaced as far as it matches.
func (t *textStream) flush() string {
	out := t.r.replace(t.held)
	t.held = ""
	return out
}
