package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"luthien.dev/gateway/internal/dialect"
	"luthien.dev/gateway/internal/sse"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	now = func() time.Time { return time.Unix(1761500000, 0) }
	os.Exit(m.Run())
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// render shows a translated document and what was dropped.
func render(t *testing.T, out []byte, dropped []Dropped) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	b.WriteString("\n-- dropped --\n")
	for _, d := range dropped {
		fmt.Fprintln(&b, d)
	}
	return b.Bytes()
}

// testdataFiles lists testdata files ending in suffix, by case name.
func testdataFiles(t *testing.T, suffix string) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*"+suffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/*%s: %v", suffix, err)
	}
	out := map[string]string{}
	for _, p := range paths {
		out[strings.TrimSuffix(filepath.Base(p), suffix)] = p
	}
	return out
}

func TestGoldenRequests(t *testing.T) {
	for _, tc := range []struct {
		suffix, golden string
		fn             func([]byte) ([]byte, []Dropped, error)
	}{
		{".chat.json", ".chat.to_messages.golden", ChatToMessages},
		{".messages.json", ".messages.to_chat.golden", MessagesToChat},
	} {
		for name, path := range testdataFiles(t, tc.suffix) {
			t.Run(name+tc.suffix, func(t *testing.T) {
				in, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				out, dropped, err := tc.fn(in)
				if err != nil {
					t.Fatal(err)
				}
				golden(t, name+tc.golden, render(t, out, dropped))
			})
		}
	}
}

func TestGoldenResponses(t *testing.T) {
	for _, tc := range []struct {
		suffix, golden string
		fn             func([]byte, string) ([]byte, []Dropped, error)
	}{
		{".chat_response.json", ".chat_response.to_messages.golden", ChatResponseToAnthropic},
		{".messages_response.json", ".messages_response.to_chat.golden", AnthropicResponseToChat},
	} {
		for name, path := range testdataFiles(t, tc.suffix) {
			t.Run(name+tc.suffix, func(t *testing.T) {
				in, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				out, dropped, err := tc.fn(in, "")
				if err != nil {
					t.Fatal(err)
				}
				golden(t, name+tc.golden, render(t, out, dropped))
			})
		}
	}
}

// translateStream runs a whole upstream stream through s.
func translateStream(t *testing.T, s *Stream, in io.Reader) []byte {
	t.Helper()
	var out bytes.Buffer
	rd := sse.NewReader(in)
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Event(&out, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestGoldenStreams(t *testing.T) {
	for name, path := range testdataFiles(t, ".messages.sse") {
		t.Run(name+".messages.sse", func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s := NewAnthropicToChatStream(dialect.Request{IncludeUsage: name != "nousage"})
			out := translateStream(t, s, bytes.NewReader(in))
			validateChatStream(t, out)
			golden(t, name+".messages.sse.to_chat.golden", streamGolden(out, s.Dropped()))
		})
	}
	for name, path := range testdataFiles(t, ".chat.sse") {
		t.Run(name+".chat.sse", func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s := NewChatToAnthropicStream()
			out := translateStream(t, s, bytes.NewReader(in))
			validateAnthropicStream(t, out)
			golden(t, name+".chat.sse.to_messages.golden", streamGolden(out, s.Dropped()))
		})
	}
}

func streamGolden(out []byte, dropped []Dropped) []byte {
	var b bytes.Buffer
	b.Write(out)
	b.WriteString("-- dropped --\n")
	for _, d := range dropped {
		fmt.Fprintln(&b, d)
	}
	return b.Bytes()
}
