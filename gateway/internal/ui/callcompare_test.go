package ui

import (
	"reflect"
	"testing"
)

// rowStates lists the states of rows.
func rowStates(rows []callItemRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.State)
	}
	return out
}

func TestCompareCallItems(t *testing.T) {
	bash := func(cmd string) *callTool {
		return &callTool{ID: "tu", Name: "Bash", Object: true, Args: []callArg{{Key: "command", Value: cmd}}}
	}
	text := func(role, s string) callItem { return callItem{Role: role, Kind: "text", Text: s} }
	stop := func(s string) callItem { return callItem{Kind: "stop", Label: "stop_reason", Text: s} }
	tests := []struct {
		name   string
		a, b   []callItem
		states []string
	}{
		{"same", []callItem{text("user", "a"), text("assistant", "b")}, []callItem{text("user", "a"), text("assistant", "b")},
			[]string{"same", "same"}},
		{"text changed", []callItem{text("assistant", "hello"), stop("end_turn")}, []callItem{text("assistant", "HELLO"), stop("end_turn")},
			[]string{"changed", "same"}},
		{"tool call replaced by text", // regex_block: the tool call becomes a message
			[]callItem{text("assistant", "Stopping it. "), {Role: "assistant", Kind: "tool_call", Tool: bash("docker compose down")}, stop("tool_use")},
			[]callItem{text("assistant", "Stopping it. BLOCKED Bash: docker compose down"), stop("end_turn")},
			[]string{"changed", "removed", "changed"}},
		{"item added", []callItem{text("user", "q")}, []callItem{text("system", "be safe"), text("user", "q")},
			[]string{"added", "same"}},
		{"kinds differ", []callItem{text("assistant", "x")}, []callItem{{Role: "assistant", Kind: "thinking", Text: "x"}},
			[]string{"removed", "added"}},
		{"both empty", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := compareCallItems(tt.a, tt.b)
			if got := rowStates(rows); !reflect.DeepEqual(got, tt.states) {
				t.Fatalf("states %v, want %v", got, tt.states)
			}
			for _, r := range rows {
				if (r.Original == nil) != (r.State == "added") || (r.Final == nil) != (r.State == "removed") {
					t.Errorf("row %s: original %v, final %v", r.State, r.Original, r.Final)
				}
				// Changes are deletions on the left and insertions on the
				// right, never the other way round.
				if r.Original != nil && r.Original.Text.Ins || r.Final != nil && !r.Final.Text.Ins {
					t.Errorf("row %s: columns swapped", r.State)
				}
			}
		})
	}
}

func TestCompareCallTools(t *testing.T) {
	a := &callTool{Name: "Bash", Object: true, Args: []callArg{{Key: "command", Value: "rm -rf /tmp/x"}, {Key: "dry", Value: "true"}}}
	b := &callTool{Name: "Shell", Object: true, Args: []callArg{{Key: "command", Value: "rm -rf /tmp/y"}, {Key: "timeout", Value: "5"}}}
	o, f := compareCallTools(a, b)
	if !reflect.DeepEqual(o.Name.List, []segment{chgSeg("Bash")}) || !reflect.DeepEqual(f.Name.List, []segment{chgSeg("Shell")}) {
		t.Errorf("names: %+v / %+v", o.Name.List, f.Name.List)
	}
	wantO := []callArgView{
		{Key: "command", Value: segText{List: []segment{keptSeg("rm -rf "), chgSeg("/tmp/x")}}},
		{Key: "dry", Whole: true, Value: segText{List: []segment{chgSeg("true")}}},
	}
	wantF := []callArgView{
		{Key: "command", Ins: true, Value: segText{List: []segment{keptSeg("rm -rf "), chgSeg("/tmp/y")}, Ins: true}},
		{Key: "timeout", Whole: true, Ins: true, Value: segText{List: []segment{chgSeg("5")}, Ins: true}},
	}
	if !reflect.DeepEqual(o.Args, wantO) || !reflect.DeepEqual(f.Args, wantF) {
		t.Errorf("args:\n got %+v\n     %+v\nwant %+v\n     %+v", o.Args, f.Args, wantO, wantF)
	}

	// Arguments that are not an object on one side are compared as text.
	raw := &callTool{Name: "Bash", Raw: "ls -l"}
	o, f = compareCallTools(raw, &callTool{Name: "Bash", Object: true, Args: []callArg{{Key: "command", Value: "ls"}}})
	if o.Object || joinedSegs(o.Raw.List) != "ls -l" || joinedSegs(f.Raw.List) != `{"command":"ls"}` {
		t.Errorf("raw: %+v / %+v", o.Raw, f.Raw)
	}
}

func TestFoldItemRows(t *testing.T) {
	same := callItemRow{State: "same"}
	changed := callItemRow{State: "changed"}
	lines := foldItemRows([]callItemRow{same, same, same, same, changed, same, same})
	if len(lines) != 4 || len(lines[0].Folded) != 4 || lines[1].Row == nil || lines[2].Row == nil || lines[3].Row == nil {
		t.Errorf("folded lines: %+v", lines)
	}
}
