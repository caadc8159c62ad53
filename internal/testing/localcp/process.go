package localcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is a subprocess that dies with the test binary (Pdeathsig) and is
// stopped gracefully by Stop.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan error
	// stopSignal ends it on Stop: SIGTERM unless set.
	stopSignal syscall.Signal
	// stopping: its exit is asked for, not a crash for Exited to report.
	stopping atomic.Bool
}

func (cp *ControlPlane) running() []*process {
	cp.procsMu.Lock()
	defer cp.procsMu.Unlock()
	return slices.Clone(cp.procs)
}

func (cp *ControlPlane) add(p *process) {
	cp.procsMu.Lock()
	defer cp.procsMu.Unlock()
	cp.procs = append(cp.procs, p)
}

func (cp *ControlPlane) remove(p *process) {
	cp.procsMu.Lock()
	defer cp.procsMu.Unlock()
	cp.procs = slices.DeleteFunc(cp.procs, func(q *process) bool { return q == p })
}

func (cp *ControlPlane) start(name, bin string, env []string, args ...string) error {
	// Appended to: a replica started again keeps one log.
	log, err := os.OpenFile(cp.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, log: log.Name(), cmd: cmd, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		log.Close()
	}()
	cp.add(p)
	return nil
}

// stop sends SIGTERM, and SIGKILL after ten seconds.
func (p *process) stop() error {
	select {
	case err := <-p.done:
		return exitError(p.name, err)
	default:
	}
	sig := syscall.SIGTERM
	if p.stopSignal != 0 {
		sig = p.stopSignal
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done: //nolint:errcheck // the exit status of a process told to stop says nothing
		return nil
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done //nolint:errcheck // nor does a killed one's
		return fmt.Errorf("%s did not stop within 10s of SIGTERM and was killed", p.name)
	}
}

// RSS is the resident set size of a running subprocess ("issuer",
// "cert-manager", "trust-manager"), in bytes, from /proc.
func (cp *ControlPlane) RSS(name string) (int64, error) {
	for _, p := range cp.running() {
		if p.name != name {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			return 0, fmt.Errorf("reading %s's status: %w", name, err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10, err
			}
		}
		return 0, fmt.Errorf("no VmRSS in %s's status", name)
	}
	return 0, fmt.Errorf("no subprocess %q", name)
}

// CPUTime is the CPU time a running process of the control plane has used
// so far, from /proc: a subprocess by name ("issuer", "cert-manager",
// "trust-manager"), or "kube-apiserver" or "etcd", which envtest runs from
// bin/ (found by their executable; one control plane at a time).
func (cp *ControlPlane) CPUTime(name string) (time.Duration, error) {
	for _, p := range cp.running() {
		if p.name == name {
			return cpuTime(p.cmd.Process.Pid)
		}
	}
	pid, err := findProcess(filepath.Join(cp.opts.RepoRoot, "bin", name), "")
	if err != nil {
		return 0, err
	}
	return cpuTime(pid)
}

// cpuTime reads utime and stime (fields 14 and 15) of /proc/<pid>/stat, in
// clock ticks of 1/100 s.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

func exitError(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s exited early: %w", name, err)
}

// Exited reports a subprocess that is no longer running.
func (cp *ControlPlane) Exited() error {
	for _, p := range cp.running() {
		if p.stopping.Load() {
			continue
		}
		select {
		case err := <-p.done:
			p.done <- err // keep it for stop
			return fmt.Errorf("%s exited (%w); see %s", p.name, err, p.log)
		default:
		}
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%s not ready within %s", url, timeout), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Logs returns the tail of every subprocess log, for a failing test.
func (cp *ControlPlane) Logs(lines int) string {
	var b strings.Builder
	for _, p := range cp.running() {
		raw, _ := os.ReadFile(p.log)
		all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		fmt.Fprintf(&b, "==> %s (last %d lines) <==\n%s\n", p.name, lines, strings.Join(all[max(0, len(all)-lines):], "\n"))
	}
	return b.String()
}

// LogPath is where a subprocess writes its log.
func (cp *ControlPlane) LogPath(name string) string { return filepath.Join(cp.Dir, name+".log") }
