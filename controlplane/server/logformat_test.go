package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// In the JSON format every line is one JSON object, and a key written
// into the message or an attribute is redacted as in the text format.
func TestNewLogHandlerJSON(t *testing.T) {
	const key = "sk-" + "ant-api03-Zx8Qw1Lm5Rt7Yp3Nc6Vb9Gh2Jk4Df0Sa"
	var buf bytes.Buffer
	h, err := NewLogHandler(LogJSON, &buf, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(h)
	log.Info("upstream refused "+key, "err", "401 for "+key, "call_id", "c1")
	log.Debug("below the level")
	log.With("component", "test").Warn("second line", "n", 2)

	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		lines++
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", lines, err, sc.Text())
		}
		if _, ok := rec["msg"].(string); !ok {
			t.Errorf("line %d has no msg: %s", lines, sc.Text())
		}
		if strings.Contains(sc.Text(), key) {
			t.Errorf("line %d holds the key: %s", lines, sc.Text())
		}
		if lines == 1 && (!strings.Contains(rec["msg"].(string), "upstream refused [redacted") || rec["call_id"] != "c1") {
			t.Errorf("line 1 = %s", sc.Text())
		}
	}
	if lines != 2 {
		t.Errorf("%d lines, want 2 (debug is below the level):\n%s", lines, buf.String())
	}
}

func TestNewLogHandlerFormats(t *testing.T) {
	var buf bytes.Buffer
	for _, format := range []string{"", LogText} {
		buf.Reset()
		h, err := NewLogHandler(format, &buf, slog.LevelInfo)
		if err != nil {
			t.Fatalf("format %q: %v", format, err)
		}
		slog.New(h).Info("hello", "k", "v")
		if !strings.Contains(buf.String(), `msg=hello k=v`) {
			t.Errorf("format %q wrote %q, want text", format, buf.String())
		}
	}
	if _, err := NewLogHandler("xml", &buf, slog.LevelInfo); err == nil {
		t.Error("format xml accepted")
	}
}
