package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binaries are the programs the harness starts.
type Binaries struct {
	Gateway      string
	ControlPlane string
	FakeUpstream string
	Floor        string
}

// packages are the binaries' import paths; go build names each binary
// after the last element.
var packages = []struct{ pkg, name string }{
	{"luthien.dev/gateway/cmd/gateway", "gateway"},
	{"luthien.dev/controlplane/cmd/controlplane", "controlplane"},
	{"luthien.dev/bench/cmd/fakeupstream", "fakeupstream"},
	{"luthien.dev/bench/cmd/floorproxy", "floorproxy"},
}

// Build builds the binaries into dir with one go build (the Go workspace
// of the working directory resolves the packages).
func Build(ctx context.Context, dir string) (Binaries, error) {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, p := range packages {
		args = append(args, p.pkg)
	}
	if b, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("bench: go build: %w\n%s", err, b)
	}
	out := map[string]string{}
	for _, p := range packages {
		out[p.name] = filepath.Join(dir, p.name)
	}
	return Binaries{Gateway: out["gateway"], ControlPlane: out["controlplane"],
		FakeUpstream: out["fakeupstream"], Floor: out["floorproxy"]}, nil
}

// Process is a started program under test.
type Process struct {
	Name string
	// Addr is the host:port it listens on, read from its log.
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs bytes.Buffer // the log's first 64 KiB
}

// listeningRE finds the address in a "... listening ... addr=HOST:PORT"
// log line.
var listeningRE = regexp.MustCompile(`listening.* addr=(\S+)`)

// maxLog bounds the log kept for error messages.
const maxLog = 64 << 10

// Start runs path with env added to the harness's environment, and waits
// (up to 30 s) for its "listening" log line on stderr.
func Start(name, path string, args, env []string) (*Process, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		// Read the log to its end, so the process never blocks on it.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			p.mu.Lock()
			if p.logs.Len() < maxLog {
				p.logs.WriteString(line + "\n")
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.Addr = <-found:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("bench: %s exited before listening: %s; its log:\n%s", name, cmd.ProcessState, p.Log())
	case <-time.After(30 * time.Second):
		p.Stop()
		return nil, fmt.Errorf("bench: %s did not start listening; its log:\n%s", name, p.Log())
	}
}

// Log returns the start of the process's log.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stop interrupts the process and waits for it to exit, killing it after
// 5 s.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// every Linux platform Go runs on).
const clockTick = 10 * time.Millisecond

// CPU returns the CPU time (user and system) the process used so far,
// from /proc/<pid>/stat.
func (p *Process) CPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ")"
	// start at field 3 (state). utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bench: unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("bench: short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bench: /proc stat: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM in
// /proc/<pid>/status) since it started or since ResetPeakRSS.
func (p *Process) PeakRSS() (int64, error) {
	return statusKB(p.Pid(), "VmHWM:")
}

// RSS returns the process's current resident set size in bytes.
func (p *Process) RSS() (int64, error) {
	return statusKB(p.Pid(), "VmRSS:")
}

// ResetPeakRSS starts a new peak RSS measurement (writing 5 to
// /proc/<pid>/clear_refs; this needs to own the process, which the
// harness does).
func (p *Process) ResetPeakRSS() error {
	return os.WriteFile("/proc/"+strconv.Itoa(p.Pid())+"/clear_refs", []byte("5"), 0)
}

func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: %s %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("bench: no %s in /proc/%d/status", field, pid)
}

// stopAll stops processes in reverse order of start.
func stopAll(procs []*Process) {
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}

// fileLimit is the harness's open-file limit. The Go runtime lifts the
// soft limit to the hard one at start-up (and every binary under test is
// a Go program too), so a thousand concurrent streams fit when the hard
// limit is a few thousand.
func fileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
