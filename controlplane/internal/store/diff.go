package store

import (
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Diff compares an original and a final document. When one of them is
// missing the other stands for both (nothing was changed that was
// recorded); when both are missing the result is empty.
func Diff(original, final *structpb.Struct) *cpv1.JSONDiff {
	switch {
	case original == nil && final == nil:
		return &cpv1.JSONDiff{}
	case original == nil:
		original = final
	case final == nil:
		final = original
	}
	d := &cpv1.JSONDiff{Original: original, Final: final}
	diffValue("", structpb.NewStructValue(original), structpb.NewStructValue(final), &d.Changes)
	d.Changed = len(d.Changes) > 0
	return d
}

// diffValue appends the changes from a to b under pointer path.
func diffValue(path string, a, b *structpb.Value, out *[]*cpv1.JSONChange) {
	as, bs := a.GetStructValue(), b.GetStructValue()
	if as != nil && bs != nil {
		keys := make([]string, 0, len(as.Fields)+len(bs.Fields))
		for k := range as.Fields {
			keys = append(keys, k)
		}
		for k := range bs.Fields {
			if _, ok := as.Fields[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			av, aok := as.Fields[k]
			bv, bok := bs.Fields[k]
			p := path + "/" + escapePointer(k)
			switch {
			case !aok:
				*out = append(*out, &cpv1.JSONChange{Path: p, Op: "added", After: bv})
			case !bok:
				*out = append(*out, &cpv1.JSONChange{Path: p, Op: "removed", Before: av})
			default:
				diffValue(p, av, bv, out)
			}
		}
		return
	}
	al, bl := a.GetListValue(), b.GetListValue()
	if al != nil && bl != nil {
		n := max(len(al.Values), len(bl.Values))
		for i := range n {
			p := path + "/" + strconv.Itoa(i)
			switch {
			case i >= len(al.Values):
				*out = append(*out, &cpv1.JSONChange{Path: p, Op: "added", After: bl.Values[i]})
			case i >= len(bl.Values):
				*out = append(*out, &cpv1.JSONChange{Path: p, Op: "removed", Before: al.Values[i]})
			default:
				diffValue(p, al.Values[i], bl.Values[i], out)
			}
		}
		return
	}
	if !proto.Equal(a, b) {
		*out = append(*out, &cpv1.JSONChange{Path: path, Op: "changed", Before: a, After: b})
	}
}

// escapePointer escapes a key as a JSON pointer token (RFC 6901).
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}
