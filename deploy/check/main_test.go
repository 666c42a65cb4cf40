package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The repository, the binaries built from it and their settings, shared
// by every test of the package.
var (
	root     string
	binaries map[Binary]string
	settings Settings
)

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

// testMain builds the binaries and asks them for their settings, then
// runs the tests.
func testMain(m *testing.M) (int, error) {
	var err error
	if root, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "luthien-deploy-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if binaries, err = Build(ctx, root, dir); err != nil {
		return 0, err
	}
	if settings, err = ListSettings(ctx, binaries); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// TestListSettings checks what the binaries say they read: names that the
// deployment files rely on, each once.
func TestListSettings(t *testing.T) {
	want := map[Binary][]string{
		Gateway: {"LUTHIEN_HTTP_ADDR", "LUTHIEN_CONTROL_PLANE", "LUTHIEN_CONTROL_PLANE_TOKEN", "LUTHIEN_ADMIN_API_KEY",
			"DATABASE_URL", "REDIS_URL", "LUTHIEN_POLICY_CONFIG"},
		ControlPlane: {"LUTHIEN_GRPC_ADDR", "LUTHIEN_CONTROL_PLANE_TOKEN", "DATABASE_URL", "REDIS_URL", "LUTHIEN_POLICY_CONFIG",
			"OPENAI_API_KEY", "LUTHIEN_JUDGE_HOSTS"},
	}
	for bin, names := range want {
		for _, n := range names {
			if !slices.Contains(settings[bin], n) {
				t.Errorf("%s -list-settings lacks %s: %v", bin, n, settings[bin])
			}
		}
		if got := slices.Compact(slices.Sorted(slices.Values(settings[bin]))); len(got) != len(settings[bin]) {
			t.Errorf("%s -list-settings repeats names: %v", bin, settings[bin])
		}
	}
	if settings.Known(Gateway, "LUTHIEN_GRPC_ADDR") || settings.Known(ControlPlane, "LUTHIEN_HTTP_ADDR") {
		t.Error("a setting of one binary counts as the other's")
	}
	if !settings.Known(Gateway, "GOMEMLIMIT") {
		t.Error("the Go runtime's GOMEMLIMIT is not accepted")
	}
}

// expectFinding fails unless one of errs contains want.
func expectFinding(t *testing.T, errs []error, want string) {
	t.Helper()
	var msgs []string
	for _, err := range errs {
		if strings.Contains(err.Error(), want) {
			return
		}
		msgs = append(msgs, err.Error())
	}
	t.Errorf("no finding contains %q; findings:\n  %s", want, strings.Join(msgs, "\n  "))
}

// expectNone fails for each of errs.
func expectNone(t *testing.T, errs []error) {
	t.Helper()
	for _, err := range errs {
		t.Error(err)
	}
}

// replaceOnce replaces the first old after the line that starts block
// (the whole text when block is empty), and fails the test when there is
// none, so that a case cannot pass by no longer matching the files.
func replaceOnce(t *testing.T, text, block, old, new string) string {
	t.Helper()
	from := 0
	if block != "" {
		from = strings.Index(text, block)
		if from < 0 {
			t.Fatalf("no %q in the file", block)
		}
	}
	i := strings.Index(text[from:], old)
	if i < 0 {
		t.Fatalf("no %q after %q in the file", old, block)
	}
	return text[:from+i] + new + text[from+i+len(old):]
}
