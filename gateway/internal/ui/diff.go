package ui

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// segment is a piece of text in one column of a side-by-side diff.
// Changed marks it as deleted (in the original column) or inserted (in the
// final column); templates wrap it in <del> or <ins>, as text.
type segment struct {
	Text    string
	Changed bool
}

// textDiff is a text against its final version, as the segments of each
// column: joined, Original gives the original text and Final the final
// one, exactly.
type textDiff struct {
	Original, Final []segment
	Changed         bool
}

// maxEdits bounds the edit script the word diff searches for (its memory
// grows with the square of it). Beyond it, what lies between the common
// start and end of the two texts is shown as replaced whole.
const maxEdits = 1200

// diffWords compares two texts word by word: words and the whitespace
// between them are the units, and whitespace is kept, so every space and
// line break of both texts survives.
func diffWords(a, b string) textDiff {
	if a == b {
		return textDiff{Original: plainSegments(a), Final: plainSegments(b)}
	}
	ta, tb := diffTokens(a), diffTokens(b)
	ia, ib := diffIntern(ta, tb)

	// The common start and end cost nothing to find and are most of a
	// small change.
	pre := 0
	for pre < len(ia) && pre < len(ib) && ia[pre] == ib[pre] {
		pre++
	}
	suf := 0
	for suf < len(ia)-pre && suf < len(ib)-pre && ia[len(ia)-1-suf] == ib[len(ib)-1-suf] {
		suf++
	}
	mid, ok := editScript(ia[pre:len(ia)-suf], ib[pre:len(ib)-suf], maxEdits)
	if !ok {
		mid = mid[:0]
		for range len(ia) - pre - suf {
			mid = append(mid, editDelete)
		}
		for range len(ib) - pre - suf {
			mid = append(mid, editInsert)
		}
	}
	script := make([]edit, 0, pre+len(mid)+suf)
	for range pre {
		script = append(script, editEqual)
	}
	script = append(script, mid...)
	for range suf {
		script = append(script, editEqual)
	}
	return diffColumns(ta, tb, diffJoinSpaces(script, ta))
}

// plainSegments is a text without changes, as segments.
func plainSegments(s string) []segment {
	if s == "" {
		return nil
	}
	return []segment{{Text: s}}
}

// wholeSegments is a text deleted or inserted whole, as segments.
func wholeSegments(s string) []segment {
	if s == "" {
		return nil
	}
	return []segment{{Text: s, Changed: true}}
}

// diffTokens splits s into maximal runs of whitespace and of everything
// else; the tokens joined give s back.
func diffTokens(s string) []string {
	var out []string
	start, space := 0, false
	for i, r := range s {
		sp := unicode.IsSpace(r)
		if i > start && sp != space {
			out = append(out, s[start:i])
			start = i
		}
		space = sp
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// diffIntern numbers the tokens of both texts so that equal tokens get equal
// numbers.
func diffIntern(a, b []string) (ia, ib []int32) {
	ids := map[string]int32{}
	conv := func(ts []string) []int32 {
		out := make([]int32, len(ts))
		for i, t := range ts {
			id, ok := ids[t]
			if !ok {
				id = int32(len(ids))
				ids[t] = id
			}
			out[i] = id
		}
		return out
	}
	return conv(a), conv(b)
}

// edit is one step of an edit script: keep a token of both texts, delete
// one of the first or insert one of the second.
type edit uint8

const (
	editEqual edit = iota
	editDelete
	editInsert
)

// editScript finds a shortest edit script from a to b (Myers' greedy
// algorithm, "An O(ND) Difference Algorithm and Its Variations", 1986).
// It reports false when the script needs more than limit deletions and
// insertions.
func editScript(a, b []int32, limit int) ([]edit, bool) {
	n, m := len(a), len(b)
	limit = min(limit, n+m)
	off := limit + 1
	v := make([]int32, 2*limit+3) // v[off+k]: furthest x on diagonal k
	var trace [][]int32           // trace[d]: v over k in [-d, d] after step d
	for d := 0; d <= limit; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = int(v[off+k+1]) // down: an insertion
			} else {
				x = int(v[off+k-1]) + 1 // right: a deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = int32(x)
			if x >= n && y >= m {
				trace = append(trace, append([]int32(nil), v[off-d:off+d+1]...))
				return editBacktrack(trace, n, m), true
			}
		}
		trace = append(trace, append([]int32(nil), v[off-d:off+d+1]...))
	}
	return nil, false
}

// editBacktrack walks the trace of editScript back from the end of both
// texts and returns the script in order.
func editBacktrack(trace [][]int32, n, m int) []edit {
	var rev []edit
	x, y := n, m
	at := func(d, k int) int { return int(trace[d][k+d]) }
	for d := len(trace) - 1; d > 0; d-- {
		k := x - y
		prevK := k - 1
		if k == -d || (k != d && at(d-1, k-1) < at(d-1, k+1)) {
			prevK = k + 1
		}
		prevX := at(d-1, prevK)
		prevY := prevX - prevK
		// The edit leads from (prevX, prevY) to (midX, midY); a run of
		// equal tokens follows up to (x, y).
		midX, midY, step := prevX+1, prevY, editDelete
		if prevK == k+1 {
			midX, midY, step = prevX, prevY+1, editInsert
		}
		for x > midX && y > midY {
			rev = append(rev, editEqual)
			x, y = x-1, y-1
		}
		rev = append(rev, step)
		x, y = prevX, prevY
	}
	for x > 0 && y > 0 {
		rev = append(rev, editEqual)
		x, y = x-1, y-1
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

// diffJoinSpaces turns whitespace kept between two replaced runs of words
// into a replacement too, so that "hello world" against "HELLO WORLD"
// reads as one change instead of two. The texts each column gives back
// are the same.
func diffJoinSpaces(script []edit, ta []string) []edit {
	// mask[j] tells, for an edit in a run of changes, whether the run
	// deletes (1) and inserts (2).
	mask := make([]uint8, len(script))
	for j := 0; j < len(script); {
		if script[j] == editEqual {
			j++
			continue
		}
		end, m := j, uint8(0)
		for ; end < len(script) && script[end] != editEqual; end++ {
			m |= uint8(script[end])
		}
		for ; j < end; j++ {
			mask[j] = m
		}
	}
	out := make([]edit, 0, len(script)+8)
	i := 0 // index into ta
	for j, e := range script {
		if e == editEqual && j > 0 && j+1 < len(script) && mask[j-1] == 3 && mask[j+1] == 3 && diffIsSpace(ta[i]) {
			out = append(out, editDelete, editInsert)
		} else {
			out = append(out, e)
		}
		if e != editInsert {
			i++
		}
	}
	return out
}

// diffIsSpace reports whether s is whitespace only.
func diffIsSpace(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return s != ""
}

// diffColumns applies a script to the tokens of both texts: kept tokens go to
// both columns unchanged, deleted ones to the original column and
// inserted ones to the final column, each marked as changed. Neighbouring
// segments of the same kind are merged.
func diffColumns(ta, tb []string, script []edit) textDiff {
	var d textDiff
	var ob, fb strings.Builder
	oChanged, fChanged := false, false
	flush := func(col *[]segment, b *strings.Builder, changed bool) {
		if b.Len() > 0 {
			*col = append(*col, segment{Text: b.String(), Changed: changed})
			b.Reset()
		}
	}
	put := func(col *[]segment, b *strings.Builder, cur *bool, tok string, changed bool) {
		if *cur != changed {
			flush(col, b, *cur)
			*cur = changed
		}
		b.WriteString(tok)
	}
	i, j := 0, 0
	for _, e := range script {
		switch e {
		case editEqual:
			put(&d.Original, &ob, &oChanged, ta[i], false)
			put(&d.Final, &fb, &fChanged, tb[j], false)
			i, j = i+1, j+1
		case editDelete:
			put(&d.Original, &ob, &oChanged, ta[i], true)
			d.Changed = true
			i++
		case editInsert:
			put(&d.Final, &fb, &fChanged, tb[j], true)
			d.Changed = true
			j++
		}
	}
	flush(&d.Original, &ob, oChanged)
	flush(&d.Final, &fb, fChanged)
	return d
}

// clipText cuts s to at most n runes, saying how much was left out.
func clipText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n]) + "… (" + strconv.Itoa(len(rs)-n) + " more characters)"
}
