package iptablestest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/outpost-dev/outpost/operator/syncer/restore"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

var _ restore.Runner = (*Fake)(nil)

// Fake is an in-memory iptables for unit tests. It applies restore input
// the way iptables-restore --noflush does (declaring a chain flushes it,
// -X deletes it, all or nothing) and refuses input that jumps to a chain
// that does not exist, as the kernel would.
type Fake struct {
	mu sync.Mutex
	// State is the current rule set per family (false: IPv4).
	State map[bool]Tables
	// Inputs records every restore input, in order.
	Inputs [][]byte
	// Jumps records ensured jumps.
	Jumps []rules.Jump
	// FailNext makes the next Restore fail with this error.
	FailNext error
	// Refuse, if set, is asked about every restore input; an error refuses
	// it as the kernel refuses a rule it cannot load.
	Refuse func(input []byte) error
	// jumped holds the ensured jumps still in place, per family.
	jumped map[bool]map[string]bool
}

// NewFake returns an empty fake with the built-in chains.
func NewFake() *Fake {
	f := &Fake{State: map[bool]Tables{}}
	f.State[false], f.State[true] = Tables{}, Tables{}
	return f
}

var targets = map[string]bool{"ACCEPT": true, "DROP": true, "REJECT": true, "RETURN": true, "DNAT": true, "SNAT": true, "MASQUERADE": true, "MARK": true}

func clone(t Tables) Tables {
	out := Tables{}
	for table, chains := range t {
		out[table] = map[string][]Rule{}
		for name, rs := range chains {
			out[table][name] = append([]Rule(nil), rs...)
		}
	}
	return out
}

// Restore applies input or fails without changing anything.
func (f *Fake) Restore(_ context.Context, ipv6 bool, input []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Inputs = append(f.Inputs, append([]byte(nil), input...))
	if err := f.FailNext; err != nil {
		f.FailNext = nil
		return err
	}
	if f.Refuse != nil {
		if err := f.Refuse(input); err != nil {
			return err
		}
	}
	next := clone(f.State[ipv6])
	if err := next.Parse(input); err != nil {
		return fmt.Errorf("fake iptables-restore: %w", err)
	}
	for table, chains := range next {
		for name, rs := range chains {
			for _, r := range rs {
				for i, w := range r.Words {
					if w == "-j" && i+1 < len(r.Words) && !targets[r.Words[i+1]] {
						if _, ok := chains[r.Words[i+1]]; !ok {
							return fmt.Errorf("fake iptables-restore: %s/%s jumps to missing chain %s", table, name, r.Words[i+1])
						}
					}
				}
			}
		}
	}
	f.State[ipv6] = next
	return nil
}

// Chains lists a table's chains.
func (f *Fake) Chains(_ context.Context, ipv6 bool, table rules.Table) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name := range f.State[ipv6][string(table)] {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// ChainExists reports whether a chain exists.
func (f *Fake) ChainExists(_ context.Context, ipv6 bool, table rules.Table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.State[ipv6][string(table)][chain]
	return ok, nil
}

func jumpKey(j rules.Jump) string { return fmt.Sprintf("%s %s %q", j.Table, j.From, j.Args) }

// EnsureJump records the jump.
func (f *Fake) EnsureJump(_ context.Context, ipv6 bool, j rules.Jump) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Jumps = append(f.Jumps, j)
	if f.jumped == nil {
		f.jumped = map[bool]map[string]bool{}
	}
	if f.jumped[ipv6] == nil {
		f.jumped[ipv6] = map[string]bool{}
	}
	f.jumped[ipv6][jumpKey(j)] = true
	return nil
}

// HasJump reports whether the jump was ensured since its table was last
// flushed.
func (f *Fake) HasJump(_ context.Context, ipv6 bool, j rules.Jump) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jumped[ipv6][jumpKey(j)], nil
}

// Flush empties a table, like "iptables -t nat -F; iptables -t nat -X".
func (f *Fake) Flush(ipv6 bool, table rules.Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.State[ipv6], string(table))
	f.flushJumps(ipv6, table)
}

// FlushRules empties every chain of a table but keeps the chains, like
// "iptables -t nat -F".
func (f *Fake) FlushRules(ipv6 bool, table rules.Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name := range f.State[ipv6][string(table)] {
		f.State[ipv6][string(table)][name] = nil
	}
	f.flushJumps(ipv6, table)
}

func (f *Fake) flushJumps(ipv6 bool, table rules.Table) {
	for k := range f.jumped[ipv6] {
		if strings.HasPrefix(k, string(table)+" ") {
			delete(f.jumped[ipv6], k)
		}
	}
}

// Tables returns a copy of the current state of a family.
func (f *Fake) Tables(ipv6 bool) Tables {
	f.mu.Lock()
	defer f.mu.Unlock()
	return clone(f.State[ipv6])
}

// Last returns the last restore input.
func (f *Fake) Last() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.Inputs) == 0 {
		return nil
	}
	return f.Inputs[len(f.Inputs)-1]
}
