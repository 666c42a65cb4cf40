package ui

// segText is text as the segments of one column; Ins says the column is
// the final one, whose changes are insertions (the original's are
// deletions).
type segText struct {
	List []segment
	Ins  bool
}

// Empty reports whether there is no text.
func (s segText) Empty() bool { return len(s.List) == 0 }

// callItemView is an item as one column shows it.
type callItemView struct {
	Role, Kind string
	Label      segText
	Text       segText
	Tool       *callToolView
	IsError    bool
	// State is same, changed, added or removed: the item's row.
	State string
}

// callToolView is a tool call as one column shows it.
type callToolView struct {
	ID     string
	Name   segText
	Object bool
	Args   []callArgView
	Raw    segText
}

// callArgView is one argument of a tool call; Whole marks an argument only
// this side has (removed, or added), key and value then shown changed.
type callArgView struct {
	Key   string
	Whole bool
	Ins   bool
	Value segText
}

// callItemRow is one row of a side-by-side comparison: an item of the
// original and its counterpart in the final; Original is nil for an added
// item, Final for a removed one.
type callItemRow struct {
	State           string
	Original, Final *callItemView
}

// callRowLine is one line of the side-by-side comparison: a row, or a run of
// unchanged rows shown folded.
type callRowLine struct {
	Row    *callItemRow
	Folded []callItemRow
}

// callFoldAt is the length from which a run of unchanged rows is folded.
const callFoldAt = 3

// maxItemEdits bounds the item alignment; beyond it items are paired by
// position.
const maxItemEdits = 2000

// compareCallItems aligns the items of two bodies (a longest common
// subsequence of identical items) and pairs the items between identical
// ones by kind and role, so that each changed item is shown against its
// counterpart and its words compared.
func compareCallItems(a, b []callItem) []callItemRow {
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, it := range a {
		ka[i] = it.key()
	}
	for i, it := range b {
		kb[i] = it.key()
	}
	ia, ib := diffIntern(ka, kb)
	script, ok := editScript(ia, ib, maxItemEdits)
	if !ok {
		script = script[:0]
		for range min(len(a), len(b)) {
			script = append(script, editDelete, editInsert)
		}
		for range len(a) - min(len(a), len(b)) {
			script = append(script, editDelete)
		}
		for range len(b) - min(len(a), len(b)) {
			script = append(script, editInsert)
		}
	}
	var rows []callItemRow
	i, j := 0, 0
	for k := 0; k < len(script); {
		if script[k] == editEqual {
			rows = append(rows, sameItemRow(a[i], b[j]))
			i, j, k = i+1, j+1, k+1
			continue
		}
		var dels, ins []callItem
		for ; k < len(script) && script[k] != editEqual; k++ {
			if script[k] == editDelete {
				dels, i = append(dels, a[i]), i+1
			} else {
				ins, j = append(ins, b[j]), j+1
			}
		}
		rows = append(rows, pairCallItems(dels, ins)...)
	}
	return rows
}

// pairCallItems pairs removed items with added ones of the same kind and
// role, in order; the others are shown removed or added.
func pairCallItems(dels, ins []callItem) []callItemRow {
	var rows []callItemRow
	next := 0
	for _, d := range dels {
		match := -1
		for p := next; p < len(ins); p++ {
			if ins[p].Kind == d.Kind && ins[p].Role == d.Role {
				match = p
				break
			}
		}
		if match < 0 {
			rows = append(rows, callItemRow{State: "removed", Original: wholeItemView(d, false, "removed")})
			continue
		}
		for ; next < match; next++ {
			rows = append(rows, callItemRow{State: "added", Final: wholeItemView(ins[next], true, "added")})
		}
		rows = append(rows, changedItemRow(d, ins[match]))
		next = match + 1
	}
	for ; next < len(ins); next++ {
		rows = append(rows, callItemRow{State: "added", Final: wholeItemView(ins[next], true, "added")})
	}
	return rows
}

// sameItemRow is an item both bodies have.
func sameItemRow(a, b callItem) callItemRow {
	return callItemRow{State: "same", Original: plainItemView(a, false, "same"), Final: plainItemView(b, true, "same")}
}

// plainItemView shows an item without changes.
func plainItemView(it callItem, ins bool, state string) *callItemView {
	v := &callItemView{Role: it.Role, Kind: it.Kind, IsError: it.IsError, State: state,
		Label: segText{List: plainSegments(it.Label), Ins: ins}, Text: segText{List: plainSegments(it.Text), Ins: ins}}
	if t := it.Tool; t != nil {
		tv := &callToolView{ID: t.ID, Name: segText{List: plainSegments(t.Name), Ins: ins}, Object: t.Object,
			Raw: segText{List: plainSegments(t.Raw), Ins: ins}}
		for _, a := range t.Args {
			tv.Args = append(tv.Args, callArgView{Key: a.Key, Ins: ins, Value: segText{List: plainSegments(a.Value), Ins: ins}})
		}
		v.Tool = tv
	}
	return v
}

// wholeItemView shows an item only one body has: all of it changed.
func wholeItemView(it callItem, ins bool, state string) *callItemView {
	v := &callItemView{Role: it.Role, Kind: it.Kind, IsError: it.IsError, State: state,
		Label: segText{List: wholeSegments(it.Label), Ins: ins}, Text: segText{List: wholeSegments(it.Text), Ins: ins}}
	if t := it.Tool; t != nil {
		tv := &callToolView{ID: t.ID, Name: segText{List: wholeSegments(t.Name), Ins: ins}, Object: t.Object,
			Raw: segText{List: wholeSegments(t.Raw), Ins: ins}}
		for _, a := range t.Args {
			tv.Args = append(tv.Args, callArgView{Key: a.Key, Whole: true, Ins: ins, Value: segText{List: wholeSegments(a.Value), Ins: ins}})
		}
		v.Tool = tv
	}
	return v
}

// changedItemRow compares two items of the same kind and role: their texts
// word by word, a tool call's name and each argument.
func changedItemRow(a, b callItem) callItemRow {
	o := &callItemView{Role: a.Role, Kind: a.Kind, IsError: a.IsError, State: "changed"}
	f := &callItemView{Role: b.Role, Kind: b.Kind, IsError: b.IsError, State: "changed"}
	o.Label, f.Label = diffColumnsText(a.Label, b.Label)
	o.Text, f.Text = diffColumnsText(a.Text, b.Text)
	switch {
	case a.Tool != nil && b.Tool != nil:
		o.Tool, f.Tool = compareCallTools(a.Tool, b.Tool)
	case a.Tool != nil:
		o.Tool = wholeItemView(a, false, "").Tool
	case b.Tool != nil:
		f.Tool = wholeItemView(b, true, "").Tool
	}
	return callItemRow{State: "changed", Original: o, Final: f}
}

// diffColumnsText compares two texts word by word, as the two columns.
func diffColumnsText(a, b string) (segText, segText) {
	d := diffWords(a, b)
	return segText{List: d.Original}, segText{List: d.Final, Ins: true}
}

// compareCallTools compares two tool calls: a changed name is shown replaced
// whole, arguments key by key (values word by word) when both are
// objects, else the raw arguments word by word.
func compareCallTools(a, b *callTool) (*callToolView, *callToolView) {
	o := &callToolView{ID: a.ID, Object: a.Object && b.Object}
	f := &callToolView{ID: b.ID, Object: o.Object}
	if a.Name == b.Name {
		o.Name, f.Name = segText{List: plainSegments(a.Name)}, segText{List: plainSegments(b.Name), Ins: true}
	} else {
		o.Name, f.Name = segText{List: wholeSegments(a.Name)}, segText{List: wholeSegments(b.Name), Ins: true}
	}
	if !o.Object {
		o.Raw, f.Raw = diffColumnsText(callToolRawArgs(a), callToolRawArgs(b))
		return o, f
	}
	i, j := 0, 0
	for i < len(a.Args) || j < len(b.Args) {
		switch {
		case j == len(b.Args) || i < len(a.Args) && a.Args[i].Key < b.Args[j].Key:
			o.Args = append(o.Args, callArgView{Key: a.Args[i].Key, Whole: true, Value: segText{List: wholeSegments(a.Args[i].Value)}})
			i++
		case i == len(a.Args) || b.Args[j].Key < a.Args[i].Key:
			f.Args = append(f.Args, callArgView{Key: b.Args[j].Key, Whole: true, Ins: true, Value: segText{List: wholeSegments(b.Args[j].Value), Ins: true}})
			j++
		default:
			ov, fv := diffColumnsText(a.Args[i].Value, b.Args[j].Value)
			o.Args = append(o.Args, callArgView{Key: a.Args[i].Key, Value: ov})
			f.Args = append(f.Args, callArgView{Key: b.Args[j].Key, Ins: true, Value: fv})
			i, j = i+1, j+1
		}
	}
	return o, f
}

// callToolRawArgs is a tool call's arguments as one text.
func callToolRawArgs(t *callTool) string {
	if !t.Object {
		return t.Raw
	}
	m := make(map[string]any, len(t.Args))
	for _, a := range t.Args {
		m[a.Key] = a.Value
	}
	return compactJSONValue(m)
}

// foldItemRows folds the runs of unchanged rows of callFoldAt or more.
func foldItemRows(rows []callItemRow) []callRowLine {
	var lines []callRowLine
	for i := 0; i < len(rows); {
		if rows[i].State != "same" {
			lines = append(lines, callRowLine{Row: &rows[i]})
			i++
			continue
		}
		end := i
		for end < len(rows) && rows[end].State == "same" {
			end++
		}
		if end-i >= callFoldAt {
			lines = append(lines, callRowLine{Folded: rows[i:end]})
		} else {
			for ; i < end; i++ {
				lines = append(lines, callRowLine{Row: &rows[i]})
			}
		}
		i = end
	}
	return lines
}
