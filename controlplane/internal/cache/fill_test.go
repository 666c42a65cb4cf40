package cache

import (
	"testing"
	"time"
)

func TestFills(t *testing.T) {
	f := NewFills(time.Minute, 0)
	now := time.Now()
	f.now = func() time.Time { return now }
	want := Fill{CallID: "c1", Key: "k1", Scope: "s1"}
	tok := f.Issue(want)
	other := f.Issue(Fill{CallID: "c2", Key: "k2", Scope: "s1"})
	if len(tok) != 32 || tok == other {
		t.Fatalf("tokens %q and %q: want distinct 128-bit hex tokens", tok, other)
	}
	if _, ok := f.Redeem("0123456789abcdef0123456789abcdef"); ok {
		t.Error("an unknown token was redeemed")
	}
	if got, ok := f.Redeem(tok); !ok || got != want {
		t.Fatalf("Redeem = %v, %v; want %v", got, ok, want)
	}
	if _, ok := f.Redeem(tok); ok {
		t.Error("a token was redeemed twice")
	}
	now = now.Add(time.Minute)
	if _, ok := f.Redeem(other); ok {
		t.Error("an expired token was redeemed")
	}
	f.Issue(Fill{CallID: "c3"})
	if n := f.Outstanding(); n != 1 {
		t.Errorf("%d tokens outstanding, want 1", n)
	}

	var none *Fills
	if none.Issue(want) != "" {
		t.Error("a nil table issued a token")
	}
	if _, ok := none.Redeem(tok); ok {
		t.Error("a nil table redeemed a token")
	}
}

func TestFillsBoundedInBytes(t *testing.T) {
	entry := fillOverhead + 32 + len("call-00") + len("key") + len("scope")
	f := NewFills(time.Hour, 10*entry)
	var tokens []string
	for i := range 25 {
		tokens = append(tokens, f.Issue(Fill{CallID: "call-" + string(rune('a'+i)) + "0", Key: "key", Scope: "scope"}))
	}
	if n := f.Outstanding(); n != 10 {
		t.Fatalf("%d tokens outstanding, want 10 (the byte bound)", n)
	}
	if f.Evicted() != 15 {
		t.Errorf("evicted %d, want 15", f.Evicted())
	}
	if _, ok := f.Redeem(tokens[0]); ok {
		t.Error("the oldest token survived a full table")
	}
	if _, ok := f.Redeem(tokens[24]); !ok {
		t.Error("the newest token was evicted")
	}
}
