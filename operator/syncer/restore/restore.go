// Package restore applies rule transactions to the kernel with
// iptables-restore --noflush (ip6tables-restore for IPv6) and answers the
// few questions the syncer asks the kernel: which chains exist (to delete
// stale ones), whether the canary chain is still there, and it ensures the
// jumps from the built-in chains. Every command may be run through a
// prefix such as "ip netns exec NAME" to program another network namespace,
// and with the commands of one iptables backend, nft or legacy, chosen as
// kube-proxy's images choose it (Select).
package restore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

// Runner talks to one node's iptables.
type Runner interface {
	// Restore applies restore input atomically with --noflush.
	Restore(ctx context.Context, ipv6 bool, input []byte) error
	// Chains lists the chains of a table.
	Chains(ctx context.Context, ipv6 bool, table rules.Table) ([]string, error)
	// ChainExists reports whether a chain exists.
	ChainExists(ctx context.Context, ipv6 bool, table rules.Table, chain string) (bool, error)
	// EnsureJump inserts a jump rule at the top of a built-in chain unless
	// it is already there.
	EnsureJump(ctx context.Context, ipv6 bool, j rules.Jump) error
	// HasJump reports whether a jump rule is in its built-in chain (it is
	// not after "iptables -F", which keeps the chains but empties them).
	HasJump(ctx context.Context, ipv6 bool, j rules.Jump) (bool, error)
}

// Exec runs the real iptables tools.
type Exec struct {
	// Prefix is prepended to every command, e.g. ["ip", "netns", "exec", "node"].
	Prefix []string
	// Tools names the commands of the backend to program (Select sets it);
	// the zero value runs the plain iptables-restore, iptables-save, ...
	Tools Tools
}

func (e *Exec) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, e.Prefix...), name), args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// Restore runs iptables-restore --noflush with input on stdin.
func (e *Exec) Restore(ctx context.Context, ipv6 bool, input []byte) error {
	name := e.Tools.Name(ipv6, "restore")
	cmd := e.command(ctx, name, "-w", "5", "--noflush")
	cmd.Stdin = bytes.NewReader(input)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &Error{Command: name, Err: err, Output: strings.TrimSpace(string(out)), Input: input}
	}
	return nil
}

// Error is a failed restore with the tool's message and the lines around
// the one it complains about.
type Error struct {
	// Command is the restore command run, e.g. iptables-nft-restore.
	Command string
	Err     error
	Output  string
	Input   []byte
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %v: %s%s", e.Command, e.Err, e.Output, e.context())
}

func (e *Error) Unwrap() error { return e.Err }

// context quotes the failing input line if the tool named one ("line N failed").
func (e *Error) context() string {
	var n int
	if i := strings.Index(e.Output, "line "); i >= 0 {
		fmt.Sscanf(e.Output[i:], "line %d", &n)
	}
	if n <= 0 {
		return ""
	}
	lines := strings.Split(string(e.Input), "\n")
	if n > len(lines) {
		return ""
	}
	return fmt.Sprintf(" (input line %d: %q)", n, lines[n-1])
}

// Chains lists a table's chains from iptables-save.
func (e *Exec) Chains(ctx context.Context, ipv6 bool, table rules.Table) ([]string, error) {
	out, err := e.command(ctx, e.Tools.Name(ipv6, "save"), "-t", string(table)).Output()
	if err != nil {
		return nil, fmt.Errorf("%s -t %s: %w", e.Tools.Name(ipv6, "save"), table, err)
	}
	return ChainsFromSave(out), nil
}

// ChainsFromSave extracts chain names from iptables-save output.
func ChainsFromSave(save []byte) []string {
	var chains []string
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 1 && line[0] == ':' {
			name, _, _ := bytes.Cut(line[1:], []byte{' '})
			chains = append(chains, string(name))
		}
	}
	return chains
}

// ChainExists runs iptables -n -L CHAIN (exit status 1: no such chain).
func (e *Exec) ChainExists(ctx context.Context, ipv6 bool, table rules.Table, chain string) (bool, error) {
	err := e.command(ctx, e.Tools.Name(ipv6, ""), "-w", "5", "-t", string(table), "-n", "-L", chain).Run()
	if err == nil {
		return true, nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil
	}
	return false, fmt.Errorf("check chain %s/%s: %w", table, chain, err)
}

// HasJump runs iptables -C (exit status 1: no such rule).
func (e *Exec) HasJump(ctx context.Context, ipv6 bool, j rules.Jump) (bool, error) {
	check := append([]string{"-w", "5", "-t", string(j.Table), "-C", j.From}, j.Args...)
	err := e.command(ctx, e.Tools.Name(ipv6, ""), check...).Run()
	if err == nil {
		return true, nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil
	}
	return false, fmt.Errorf("check jump %s %s -> %v: %w", j.Table, j.From, j.Args, err)
}

// EnsureJump checks the rule with -C and inserts it with -I if missing.
func (e *Exec) EnsureJump(ctx context.Context, ipv6 bool, j rules.Jump) error {
	if ok, err := e.HasJump(ctx, ipv6, j); err == nil && ok {
		return nil
	}
	insert := append([]string{"-w", "5", "-t", string(j.Table), "-I", j.From, "1"}, j.Args...)
	if out, err := e.command(ctx, e.Tools.Name(ipv6, ""), insert...).CombinedOutput(); err != nil {
		return fmt.Errorf("insert jump %s %s -> %v: %w: %s", j.Table, j.From, j.Args, err, strings.TrimSpace(string(out)))
	}
	return nil
}
