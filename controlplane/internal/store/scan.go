package store

import (
	"cmp"
	"slices"
	"strings"
)

// One pass over a text finds where a credential may be; a pattern runs
// only there, anchored. The pass looks at each byte once:
//   - for the hints (the literals patterns start with), it keeps the last
//     three bytes and tests a hash of them in a bitmap of the hints' first
//     three bytes (8 KiB, in the CPU's nearest cache); the rare hits are
//     looked up exactly;
//   - for named values, at each ":" and "=" it looks back, past spaces and
//     a quote (or an escaped quote), for a name of secretNames ending
//     there.
//
// Text with neither, which is most text, costs that pass and nothing else.
// Every place is tried, inside an earlier match or not (but for matches
// marked whole: private-key blocks), so that overlapping matches are all
// found (appendRedacted merges them): a credential is never hidden from
// its pattern by a looser match that ends inside it.

// hintGroup is a literal and the credentials whose matches start with it,
// in table order.
type hintGroup struct {
	text  string // lower-cased when fold
	fold  bool
	creds []*credential
}

var (
	// tripleBits has a bit set for the hash (tripleHash) of the first
	// three bytes of every hint, in every case for those in any case.
	tripleBits [1 << 16 / 64]uint64
	// tripleHints maps the first three bytes of hints to their groups.
	tripleHints = map[uint32][]*hintGroup{}
	// namedCreds are the credentials found by the name before them.
	namedCreds []*credential
)

// tripleHash hashes three bytes (x's low 24 bits) to 16 bits.
func tripleHash(x uint32) uint32 { return (x * 0x9e3779b1) >> 16 }

func init() {
	var groups []*hintGroup
	for _, c := range credentials {
		if c.named {
			namedCreds = append(namedCreds, c)
			continue
		}
		for _, h := range c.hints {
			if c.fold {
				h = strings.ToLower(h)
			}
			i := slices.IndexFunc(groups, func(g *hintGroup) bool { return g.text == h && g.fold == c.fold })
			if i < 0 {
				groups = append(groups, &hintGroup{text: h, fold: c.fold})
				i = len(groups) - 1
			}
			groups[i].creds = append(groups[i].creds, c)
		}
	}
	for _, g := range groups {
		for _, a := range casesOf(g.text[0], g.fold) {
			for _, b := range casesOf(g.text[1], g.fold) {
				for _, c := range casesOf(g.text[2], g.fold) {
					x := uint32(a)<<16 | uint32(b)<<8 | uint32(c)
					h := tripleHash(x)
					tripleBits[h>>6] |= 1 << (h & 63)
					tripleHints[x] = append(tripleHints[x], g)
				}
			}
		}
	}
}

// casesOf returns c and, when fold and c is a letter, its other case.
func casesOf(c byte, fold bool) []byte {
	switch {
	case fold && 'a' <= c && c <= 'z':
		return []byte{c, c - 'a' + 'A'}
	case fold && 'A' <= c && c <= 'Z':
		return []byte{c, c - 'A' + 'a'}
	}
	return []byte{c}
}

// at reports whether the group's literal is in s at i.
func at[T string | []byte](g *hintGroup, s T, i int) bool {
	if len(s)-i < len(g.text) {
		return false
	}
	for j := range len(g.text) {
		c := s[i+j]
		if g.fold {
			c = lower(c)
		}
		if c != g.text[j] {
			return false
		}
	}
	return true
}

// nameBefore returns where the name ends that a ":" or "=" at j follows
// (past spaces, and a quote, a single quote or an escaped quote), or -1.
func nameBefore[T string | []byte](s T, j int) int {
	k := j
	for k > 0 && isSpace(s[k-1]) {
		k--
	}
	if k > 0 && (s[k-1] == '"' || s[k-1] == '\'') {
		k--
		if k > 0 && s[k-1] == '\\' {
			k--
		}
	}
	if k == 0 {
		return -1
	}
	return k
}

// namesEndingAt calls f with the start of each name of secretNames that
// ends at k in s (any case).
func namesEndingAt[T string | []byte](s T, k int, f func(start int) bool) {
	for _, n := range namesByLast[lower(s[k-1])] {
		start := k - len(n)
		if start < 0 {
			continue
		}
		match := true
		for i := range len(n) {
			if lower(s[start+i]) != n[i] {
				match = false
				break
			}
		}
		if match && f(start) {
			return
		}
	}
}

// hasHint reports whether s has a hint of a credential or a secret name
// before a ":" or "=": the pre-check, which text without one passes at the
// cost of one pass.
func hasHint[T string | []byte](s T) bool {
	var x uint32
	for j := range len(s) {
		c := s[j]
		x = (x<<8 | uint32(c)) & 0xffffff
		if c == ':' || c == '=' {
			found := false
			if k := nameBefore(s, j); k > 0 {
				namesEndingAt(s, k, func(int) bool { found = true; return true })
			}
			if found {
				return true
			}
		}
		if h := tripleHash(x); j >= 2 && tripleBits[h>>6]&(1<<(h&63)) != 0 {
			for _, g := range tripleHints[x] {
				if at(g, s, j-2) {
					return true
				}
			}
		}
	}
	return false
}

// span is a part of a text to replace with marker.
type span struct {
	start, end int
	marker     string
}

// findCredentials appends to spans the credentials in s.
func findCredentials[T string | []byte](s T, spans []span) []span {
	var x uint32
	var ext extensions
	for j := 0; j < len(s); j++ {
		c := s[j]
		x = (x<<8 | uint32(c)) & 0xffffff
		if c == ':' || c == '=' {
			if k := nameBefore(s, j); k > 0 {
				namesEndingAt(s, k, func(start int) bool {
					for _, cred := range namedCreds {
						if sp, ok := matchAt(cred, s, start, &ext); ok {
							spans = append(spans, sp)
							return true
						}
					}
					return false
				})
			}
		}
		if h := tripleHash(x); j < 2 || tripleBits[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		i := j - 2
	groups:
		for _, g := range tripleHints[x] {
			if !at(g, s, i) {
				continue
			}
			for _, cred := range g.creds {
				if !ready(cred.ready, s, i+len(g.text)) {
					continue
				}
				if sp, ok := matchAt(cred, s, i, &ext); ok {
					spans = append(spans, sp)
					if cred.whole && sp.end-1 > j {
						j = sp.end - 1
						x = uint32(s[j-2])<<16 | uint32(s[j-1])<<8 | uint32(s[j])
					}
					break groups
				}
			}
		}
	}
	return spans
}

// extensions remembers, for the credentials with an extend set, the last
// run of extend bytes a match went on over: a later match that reaches
// inside it ends where it ends, without a second walk over it (a text of
// many names would otherwise cost the square of its length).
type extensions [8]extension

type extension struct {
	cred       *credential
	from, upTo int
}

// extendRun returns the end of c's extend run from i in s.
func extendRun[T string | []byte](x *extensions, c *credential, s T, i int) int {
	slot := &x[0]
	for k := range x {
		if x[k].cred == c || x[k].cred == nil {
			slot = &x[k]
			break
		}
	}
	if slot.cred == c && slot.from <= i && i <= slot.upTo {
		return slot.upTo
	}
	end := i
	for end < len(s) && c.extend[s[end]] {
		end++
	}
	*slot = extension{cred: c, from: i, upTo: end}
	return end
}

// matchAt matches c at i, where one of its hints or names is.
func matchAt[T string | []byte](c *credential, s T, i int, ext *extensions) (span, bool) {
	if c.notAfter != nil && i > 0 && c.notAfter[s[i-1]] {
		return span{}, false
	}
	end := len(s)
	if c.maxLen > 0 {
		end = min(end, i+c.maxLen)
	}
	var loc []int
	switch s := any(s).(type) {
	case string:
		loc = c.re.FindStringSubmatchIndex(s[i:end])
	case []byte:
		loc = c.re.FindSubmatchIndex(s[i:end])
	}
	if loc == nil || loc[2*c.group] < 0 {
		return span{}, false
	}
	start := i + loc[2*c.group]
	if e := i + loc[2*c.group+1]; e == end && c.extend != nil {
		end = extendRun(ext, c, s, end)
	} else {
		end = e
	}
	if c.notBefore != nil && end < len(s) && c.notBefore[s[end]] || c.keep != nil && !c.keep(string(s[start:end])) {
		return span{}, false
	}
	return span{start: start, end: end, marker: c.marker}, true
}

// readiness names a quick test of the text after a hint (0: none).
type readiness uint8

const (
	// afterBearer: a space and then 8 bytes of a token follow.
	afterBearer readiness = iota + 1
)

// ready runs the test r on s after a hint, at e.
func ready[T string | []byte](r readiness, s T, e int) bool {
	if r != afterBearer {
		return true
	}
	if e == len(s) || !isSpace(s[e]) {
		return false
	}
	for e < len(s) && isSpace(s[e]) {
		e++
	}
	n := 0
	for e+n < len(s) && n < 8 && (tokenChars[s[e+n]] || s[e+n] == '.' || s[e+n] == '~') {
		n++
	}
	return n == 8
}

// isSpace reports whether c is a space as \s is in the patterns.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// appendRedacted appends s to dst with spans replaced; overlapping spans
// become one, with the marker of the one that starts first (of those that
// start together, the one found first).
func appendRedacted[T string | []byte](dst []byte, s T, spans []span) []byte {
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	last := 0
	for k := 0; k < len(spans); {
		cur := spans[k]
		for k++; k < len(spans) && spans[k].start < cur.end; k++ {
			cur.end = max(cur.end, spans[k].end)
		}
		dst = append(dst, s[last:cur.start]...)
		dst = append(dst, cur.marker...)
		last = cur.end
	}
	return append(dst, s[last:]...)
}
