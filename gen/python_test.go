// Package gen_test checks the generated code of languages other than Go.
package gen_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// python is Debian's Python, whose python3-protobuf and python3-grpcio
// match the protoc and grpc_python_plugin that generate gen/python (make
// python-tools installs them).
const python = "/usr/bin/python3"

// importCheck imports every module named in argv and, for the gRPC
// modules, checks that each service of the proto has its stub and
// servicer; for the message modules, it builds every message and encodes
// it. It prints one line per failure and exits 1 when there is any.
const importCheck = `
import importlib, sys
failed = []
for name in sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
    except Exception as e:
        failed.append(f"{name}: {type(e).__name__}: {e}")
        continue
    if name.endswith("_pb2_grpc"):
        pb2 = importlib.import_module(name.removesuffix("_grpc"))
        for svc in pb2.DESCRIPTOR.services_by_name:
            for suffix in ("Stub", "Servicer"):
                if not hasattr(mod, svc + suffix):
                    failed.append(f"{name}: no {svc}{suffix}")
    else:
        for msg in mod.DESCRIPTOR.message_types_by_name:
            try:
                getattr(mod, msg)().SerializeToString()
            except Exception as e:
                failed.append(f"{name}.{msg}: {type(e).__name__}: {e}")
for f in failed:
    print(f)
sys.exit(1 if failed else 0)
`

// pythonRuntime skips the test (fails it when CI=true) unless Debian's
// Python with its protobuf and grpc modules is installed.
func pythonRuntime(t *testing.T) {
	t.Helper()
	skip := func(why string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: run make python-tools", why)
		}
		t.Skipf("skipped: %s (make python-tools installs it; with CI=true this fails)", why)
	}
	if _, err := os.Stat(python); err != nil {
		skip(python + " is missing")
	}
	if out, err := exec.Command(python, "-s", "-B", "-c", "import google.protobuf, grpc").CombinedOutput(); err != nil {
		skip(python + " lacks the protobuf or grpc module (python3-protobuf, python3-grpcio): " + strings.TrimSpace(string(out)))
	}
}

// pythonModules lists the modules under gen/python by their import
// names.
func pythonModules(t *testing.T) []string {
	t.Helper()
	var mods []string
	err := filepath.WalkDir("python", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			return filepath.SkipDir
		}
		if rel, ok := strings.CutSuffix(path, ".py"); ok && !d.IsDir() {
			rel, _ = filepath.Rel("python", rel)
			mods = append(mods, strings.ReplaceAll(filepath.ToSlash(rel), "/", "."))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mods
}

// TestPythonStubsCoverTheProtos checks that every .proto file has its
// three Python files: messages, type hints and gRPC stubs.
func TestPythonStubsCoverTheProtos(t *testing.T) {
	protos, err := filepath.Glob("../proto/luthien/controlplane/v1/*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no protos found: %v", err)
	}
	for _, p := range protos {
		base := strings.TrimSuffix(filepath.Base(p), ".proto")
		for _, suffix := range []string{"_pb2.py", "_pb2.pyi", "_pb2_grpc.py"} {
			if _, err := os.Stat(filepath.Join("python", "luthien", "controlplane", "v1", base+suffix)); err != nil {
				t.Errorf("%s: no %s%s: run make generate", p, base, suffix)
			}
		}
	}
}

// TestPythonStubsImport imports every generated Python module with
// Debian's Python, gen/python on PYTHONPATH and the user's site packages
// left out, so that the runtime under test is python3-protobuf and
// python3-grpcio: a module generated for a newer protobuf runtime fails
// to import.
func TestPythonStubsImport(t *testing.T) {
	pythonRuntime(t)
	mods := pythonModules(t)
	for _, want := range []string{"luthien.controlplane.v1.events_pb2", "luthien.controlplane.v1.history_pb2_grpc", "luthien.controlplane.v1.policy_pb2_grpc"} {
		if !slices.Contains(mods, want) {
			t.Errorf("gen/python has no module %s (found %v)", want, mods)
		}
	}
	root, err := filepath.Abs("python")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// -s: no user site packages; -B: no __pycache__ in gen/python.
	cmd := exec.CommandContext(ctx, python, append([]string{"-s", "-B", "-c", importCheck}, mods...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+root, "PYTHONDONTWRITEBYTECODE=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("importing the Python stubs: %v\n%s", err, out.Bytes())
	}
	t.Logf("imported %d modules", len(mods))
}
