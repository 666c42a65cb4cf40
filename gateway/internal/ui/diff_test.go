package ui

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// keptSeg and chgSeg build expected segments: kept text and changed text.
func keptSeg(s string) segment { return segment{Text: s} }
func chgSeg(s string) segment  { return segment{Text: s, Changed: true} }

func TestDiffWords(t *testing.T) {
	tests := []struct {
		name            string
		a, b            string
		original, final []segment
	}{
		{"equal", "hello world", "hello world", []segment{keptSeg("hello world")}, []segment{keptSeg("hello world")}},
		{"both empty", "", "", nil, nil},
		{"all words changed", "hello quiet world", "HELLO QUIET WORLD",
			[]segment{chgSeg("hello quiet world")}, []segment{chgSeg("HELLO QUIET WORLD")}},
		{"one word changed", "the cat sat", "the dog sat",
			[]segment{keptSeg("the "), chgSeg("cat"), keptSeg(" sat")}, []segment{keptSeg("the "), chgSeg("dog"), keptSeg(" sat")}},
		{"insertion", "the cat", "the black cat",
			[]segment{keptSeg("the cat")}, []segment{keptSeg("the "), chgSeg("black "), keptSeg("cat")}},
		{"deletion", "the black cat", "the cat",
			[]segment{keptSeg("the "), chgSeg("black "), keptSeg("cat")}, []segment{keptSeg("the cat")}},
		{"from empty", "", "new text", nil, []segment{chgSeg("new text")}},
		{"to empty", "old text", "", []segment{chgSeg("old text")}, nil},
		{"append at the end", "Stopping it. ", "Stopping it. BLOCKED Bash: docker compose down",
			[]segment{keptSeg("Stopping it. ")}, []segment{keptSeg("Stopping it. "), chgSeg("BLOCKED Bash: docker compose down")}},
		{"unicode", "ça va 👋 très bien", "ÇA va 👋 TRÈS bien",
			[]segment{chgSeg("ça"), keptSeg(" va 👋 "), chgSeg("très"), keptSeg(" bien")},
			[]segment{chgSeg("ÇA"), keptSeg(" va 👋 "), chgSeg("TRÈS"), keptSeg(" bien")}},
		{"whitespace kept", "a  b\n\tc", "a  B\n\tc",
			[]segment{keptSeg("a  "), chgSeg("b"), keptSeg("\n\tc")}, []segment{keptSeg("a  "), chgSeg("B"), keptSeg("\n\tc")}},
		{"whitespace changed", "a b", "a\nb",
			[]segment{keptSeg("a"), chgSeg(" "), keptSeg("b")}, []segment{keptSeg("a"), chgSeg("\n"), keptSeg("b")}},
		{"markup is text", "<b>x</b> y", "<b>X</b> y",
			[]segment{chgSeg("<b>x</b>"), keptSeg(" y")}, []segment{chgSeg("<b>X</b>"), keptSeg(" y")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diffWords(tt.a, tt.b)
			if !reflect.DeepEqual(got.Original, tt.original) || !reflect.DeepEqual(got.Final, tt.final) {
				t.Errorf("diffWords(%q, %q)\n original %+v\n    final %+v\nwant\n original %+v\n    final %+v",
					tt.a, tt.b, got.Original, got.Final, tt.original, tt.final)
			}
			if got.Changed != (tt.a != tt.b) {
				t.Errorf("Changed = %v for %q vs %q", got.Changed, tt.a, tt.b)
			}
		})
	}
}

// joinedSegs is the text of a column.
func joinedSegs(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.Text)
	}
	return b.String()
}

// keptTexts is the unchanged text of a column.
func keptTexts(segs []segment) []string {
	var out []string
	for _, s := range segs {
		if !s.Changed {
			out = append(out, s.Text)
		}
	}
	return out
}

// Over random texts: each column gives its text back exactly, neighbouring
// segments differ in kind, and both columns keep the same text, in the
// same order.
func TestDiffWordsProperties(t *testing.T) {
	words := []string{"a", "b", "cat", "Cat", "ça", "👋", "<i>", "&amp;", "x.y", " ", "  ", "\n", "\t", " \n "}
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		var b strings.Builder
		for range rng.IntN(30) {
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.String()
	}
	for i := range 3000 {
		a := text()
		b := a
		if i%4 != 0 {
			b = text()
		}
		if i%7 == 0 {
			b = strings.ToUpper(a)
		}
		d := diffWords(a, b)
		if joinedSegs(d.Original) != a || joinedSegs(d.Final) != b {
			t.Fatalf("diffWords(%q, %q): columns give back %q and %q", a, b, joinedSegs(d.Original), joinedSegs(d.Final))
		}
		if d.Changed != (a != b) {
			t.Fatalf("diffWords(%q, %q): Changed = %v", a, b, d.Changed)
		}
		for _, col := range [][]segment{d.Original, d.Final} {
			for j, s := range col {
				if s.Text == "" || j > 0 && col[j-1].Changed == s.Changed {
					t.Fatalf("diffWords(%q, %q): segments not merged: %+v", a, b, col)
				}
			}
		}
		if strings.Join(keptTexts(d.Original), "") != strings.Join(keptTexts(d.Final), "") {
			t.Fatalf("diffWords(%q, %q): kept text differs: %q vs %q", a, b, keptTexts(d.Original), keptTexts(d.Final))
		}
	}
}

// A change too large for the edit script is shown as a replacement of
// what lies between the common start and end.
func TestDiffWordsLarge(t *testing.T) {
	var a, b strings.Builder
	a.WriteString("start ")
	b.WriteString("start ")
	for i := range 3 * maxEdits {
		a.WriteString(string(rune('a'+i%26)) + " ")
		b.WriteString(string(rune('A'+i%26)) + " ")
	}
	a.WriteString("end")
	b.WriteString("end")
	d := diffWords(a.String(), b.String())
	if joinedSegs(d.Original) != a.String() || joinedSegs(d.Final) != b.String() {
		t.Fatal("columns do not give the texts back")
	}
	if len(d.Original) != 3 || d.Original[0] != keptSeg("start ") || !d.Original[1].Changed || d.Original[2] != keptSeg(" end") {
		t.Errorf("original column: %d segments, first %+v", len(d.Original), d.Original[0])
	}
}

// The edit script is a shortest one: its length against a plain LCS.
func TestEditScriptShortest(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		a, b := make([]int32, rng.IntN(12)), make([]int32, rng.IntN(12))
		for i := range a {
			a[i] = int32(rng.IntN(4))
		}
		for i := range b {
			b[i] = int32(rng.IntN(4))
		}
		script, ok := editScript(a, b, 100)
		if !ok {
			t.Fatal("no script within the limit")
		}
		edits := 0
		for _, e := range script {
			if e != editEqual {
				edits++
			}
		}
		if want := len(a) + len(b) - 2*lcsLen(a, b); edits != want {
			t.Fatalf("editScript(%v, %v): %d edits, want %d", a, b, edits, want)
		}
	}
}

// lcsLen is the length of a longest common subsequence, by dynamic
// programming.
func lcsLen(a, b []int32) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}
