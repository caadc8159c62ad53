package localcp

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RestartAPIServer stops kube-apiserver (SIGTERM, then SIGKILL if it is
// still draining 10s later), leaves it down for
// down, and starts it again with the same flags, certificates, port and
// etcd, then waits until it answers. Every client keeps its configuration:
// to them it is an outage, not a new cluster. From then on the process is
// this ControlPlane's to stop.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context, down time.Duration) error {
	from := time.Now()
	exe := filepath.Join(cp.opts.RepoRoot, "bin", "kube-apiserver")
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		return err
	}
	// Another control plane's API server may run the same binary.
	pid, err := findProcess(exe, "--secure-port="+u.Port())
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return err
	}
	args := bytes.Split(bytes.TrimRight(raw, "\x00"), []byte{0})
	// SIGTERM first; an API server still draining after 10s is killed.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("stopping kube-apiserver: %w", err)
		}
		for deadline := time.Now().Add(10 * time.Second); running(pid) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		if !running(pid) {
			break
		}
	}
	if running(pid) {
		return fmt.Errorf("kube-apiserver (pid %d) did not stop, even killed", pid)
	}
	time.Sleep(down)
	var flags []string
	for _, a := range args[1:] {
		flags = append(flags, string(a))
	}
	if err := cp.start("kube-apiserver", exe, nil, flags...); err != nil {
		return err
	}
	// It drains for longer than Stop waits, and etcd, which envtest stops
	// after it, holds nothing it must flush.
	procs := cp.running()
	procs[len(procs)-1].stopSignal = syscall.SIGKILL
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		var ns corev1.Namespace
		if err := cp.Client.Get(ctx, client.ObjectKey{Name: IssuerNamespace}, &ns); err == nil {
			cp.Outages = append(cp.Outages, Outage{From: from, To: time.Now()})
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver did not answer again within 60s: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Outage is when kube-apiserver was down, from its stop until it answered
// again. A restarted API server may refuse requests for a moment while its
// authorizer's caches fill: a refusal then is the outage's, not a missing
// permission.
type Outage struct{ From, To time.Time }

// running is false once pid has exited, even while its parent (envtest,
// which started it) has not reaped it yet.
func running(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := bytes.Fields(raw[bytes.LastIndexByte(raw, ')')+1:])
	return len(fields) > 0 && string(fields[0]) != "Z" && string(fields[0]) != "X"
}

// findProcess is the pid of the process running exe.
func findProcess(exe, arg string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || target != exe || !running(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && (arg == "" || slices.ContainsFunc(bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0}), func(a []byte) bool { return string(a) == arg })) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process runs %s %s", exe, arg)
}
