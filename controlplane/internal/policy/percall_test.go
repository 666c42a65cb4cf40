package policy

import (
	"testing"
	"time"
)

// perCallPolicy is a policy with per-call state: each call gets a copy
// bound to it.
type perCallPolicy struct {
	Policy
	call *Call
}

func (p *perCallPolicy) ForCall(call *Call) Policy {
	return &perCallPolicy{Policy: p.Policy, call: call}
}

// A chain and a guard hand each call the per-call objects of their
// members, and serve a call themselves when no member keeps state.
func TestForCallThroughChainsAndGuards(t *testing.T) {
	noop := mustBuild(t, "noop", nil)
	stateful := &perCallPolicy{Policy: noop}
	call := &Call{ID: "c"}

	chain := &serial{members: []Policy{noop, stateful, noop}}
	got, ok := ForCall(chain, call).(*serial)
	if !ok || got == chain {
		t.Fatalf("ForCall(chain) = %v, want a new chain", got)
	}
	if got.members[0] != noop || got.members[2] != noop {
		t.Error("members without state were replaced")
	}
	if m, ok := got.members[1].(*perCallPolicy); !ok || m.call != call {
		t.Errorf("member 1 = %#v, want the call's own object", got.members[1])
	}
	if chain.members[1] != Policy(stateful) {
		t.Error("the shared chain was changed")
	}

	plain := &serial{members: []Policy{noop, noop}}
	if ForCall(plain, call) != Policy(plain) {
		t.Error("a chain without per-call state was copied")
	}

	g := &guarded{Policy: stateful, class: "x", onError: onErrorPass, timeout: time.Second}
	gc, ok := ForCall(g, call).(*guarded)
	if !ok || gc == g || gc.onError != onErrorPass || gc.timeout != time.Second {
		t.Fatalf("ForCall(guard) = %#v", gc)
	}
	if m, ok := gc.Policy.(*perCallPolicy); !ok || m.call != call {
		t.Error("the guard does not hold the call's own object")
	}
}
