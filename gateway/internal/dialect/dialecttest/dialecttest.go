// Package dialecttest holds the test helpers the dialect packages share:
// decoding whole streams, golden files, fuzz seeds and event checks.
package dialecttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// Update rewrites golden files instead of comparing (go test -update).
var Update = flag.Bool("update", false, "rewrite golden files")

// UpstreamEvent is one SSE event of an input stream and what it decoded to.
type UpstreamEvent struct {
	Raw []byte
	Evs []*cpv1.StreamEvent
}

// DecodeStream decodes a whole stream with d, numbering the canonical
// events 1, 2, 3, ... as the gateway does.
func DecodeStream(t testing.TB, d dialect.Dialect, in []byte) []UpstreamEvent {
	t.Helper()
	dec := d.NewDecoder()
	rd := sse.NewReader(bytes.NewReader(in))
	var out []UpstreamEvent
	seq := uint64(0)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		raw := bytes.Clone(ev.Raw)
		evs, err := dec.Decode(ev)
		if err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		if len(evs) == 0 {
			t.Fatalf("decode %q: no events", raw)
		}
		for _, e := range evs {
			seq++
			e.Seq = seq
		}
		out = append(out, UpstreamEvent{Raw: raw, Evs: evs})
	}
}

// EventsJSON renders events as protojson, one compact line each. protojson
// output is not byte-stable, hence the compaction through encoding/json.
func EventsJSON(t testing.TB, ups []UpstreamEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, u := range ups {
		for _, ev := range u.Evs {
			b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: false}.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Compact(&buf, b); err != nil {
				t.Fatal(err)
			}
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// CheckGolden compares got with the golden file, or rewrites it with -update.
func CheckGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking the change)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// AddGoldenSeeds adds every golden input stream (testdata/*.sse), whole
// and event by event.
func AddGoldenSeeds(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.sse"))
	if len(paths) == 0 {
		f.Fatal("no golden inputs")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for _, ev := range bytes.SplitAfter(b, []byte("\n\n")) {
			if len(ev) > 0 {
				f.Add(ev)
			}
		}
	}
}

// CheckEvent fails unless ev and the messages it holds have their oneofs set.
func CheckEvent(t *testing.T, ev *cpv1.StreamEvent) {
	t.Helper()
	switch x := ev.GetEvent().(type) {
	case nil:
		t.Fatal("event with no oneof set")
	case *cpv1.StreamEvent_ContentBlockStart:
		if x.ContentBlockStart.GetBlock().GetBlock() == nil {
			t.Fatalf("content_block_start without a block: %v", ev)
		}
	case *cpv1.StreamEvent_ContentBlockDelta:
		if x.ContentBlockDelta.GetDelta() == nil {
			t.Fatalf("content_block_delta without a delta: %v", ev)
		}
	}
}
