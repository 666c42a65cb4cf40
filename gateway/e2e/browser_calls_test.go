package e2e

import (
	"fmt"
	"strings"
	"testing"

	"luthien.dev/bench/fakeupstream"
)

// Under all_caps a call's page shows the response's change as a diff: the
// original's lowercase words struck out, the final's uppercase words
// inserted; the request is unchanged. Both formats, streamed and not.
func TestBrowserCallDiff(t *testing.T) {
	e := start(t, "inprocess", options{})
	e.up.SetDefault(fakeupstream.Scenario{Text: "quiet words here", Chunks: 4})
	e.setPolicy(t, "all_caps", nil)
	for _, format := range clientFormats {
		for _, stream := range []bool{false, true} {
			name := fmt.Sprintf("%s-stream=%t", format, stream)
			t.Run(name, func(t *testing.T) {
				id := sendCall(t, e, format, stream, "")
				waitRecorded(t, e, "", id)
				tb := newTab(t)
				tb.navigate(e.URL + "/calls/" + id)
				tb.text("#response-diff") // waits for the section to show
				inserted := strings.Join(tb.texts("#response-diff .final ins.diff"), " ")
				deleted := strings.Join(tb.texts("#response-diff .original del.diff"), " ")
				for _, w := range []string{"QUIET", "WORDS", "HERE"} {
					if !strings.Contains(inserted, w) {
						t.Errorf("inserted text %q lacks %s", inserted, w)
					}
				}
				for _, w := range []string{"quiet", "words", "here"} {
					if !strings.Contains(deleted, w) {
						t.Errorf("deleted text %q lacks %s", deleted, w)
					}
				}
				if strings.ToUpper(inserted) != inserted || strings.ToLower(deleted) != deleted {
					t.Errorf("inserted %q should be uppercase only, deleted %q lowercase only", inserted, deleted)
				}
				if n := tb.count("#request-diff ins.diff, #request-diff del.diff"); n != 0 {
					t.Errorf("the request was not changed, yet its diff marks %d changes", n)
				}
				tb.check("call")
			})
		}
	}
}
