// Package rules is a small typed model of an iptables rule set as the syncer
// writes it: tables hold chains, chains hold rule lines, and a Transaction is
// one iptables-restore input that knows exactly which chains it rewrites and
// which it deletes. It is the iptables twin of sigs.k8s.io/knftables: the
// renderer fills a Ruleset, the syncer diffs two Rulesets into a Transaction,
// and the applier runs it.
//
// Rule lines are kept as bytes in reusable buffers (like kube-proxy's
// LineBuffer) because rendering tens of thousands of services is a hot path.
package rules

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strconv"
)

// Table is an iptables table the syncer writes to.
type Table string

const (
	NAT    Table = "nat"
	Filter Table = "filter"
)

// Tables lists the tables in the order a restore input writes them.
var Tables = []Table{Filter, NAT}

// LineBuffer accumulates rule lines ("-A CHAIN ...") without allocating a
// string per word. Reset keeps the backing array for the next sync.
type LineBuffer struct {
	buf   []byte
	lines int
}

// Write appends one line made of the given words separated by spaces.
func (b *LineBuffer) Write(words ...string) {
	for i, w := range words {
		if i > 0 {
			b.buf = append(b.buf, ' ')
		}
		b.buf = append(b.buf, w...)
	}
	b.buf = append(b.buf, '\n')
	b.lines++
}

// WriteBytes appends already formatted lines (each ending in a newline).
func (b *LineBuffer) WriteBytes(p []byte) {
	b.buf = append(b.buf, p...)
	b.lines += bytes.Count(p, []byte{'\n'})
}

// Start begins a line with its first words and returns the buffer so the
// caller can add words with Word and Int and end it with End. This avoids
// building a []string for rules with numeric or formatted parts.
func (b *LineBuffer) Start(words ...string) *LineBuffer {
	for i, w := range words {
		if i > 0 {
			b.buf = append(b.buf, ' ')
		}
		b.buf = append(b.buf, w...)
	}
	return b
}

// Word appends " w".
func (b *LineBuffer) Word(words ...string) *LineBuffer {
	for _, w := range words {
		b.buf = append(b.buf, ' ')
		b.buf = append(b.buf, w...)
	}
	return b
}

// Int appends " n".
func (b *LineBuffer) Int(n int) *LineBuffer {
	b.buf = append(b.buf, ' ')
	b.buf = strconv.AppendInt(b.buf, int64(n), 10)
	return b
}

// Raw appends bytes with no separator (for "ip:port" and similar).
func (b *LineBuffer) Raw(s string) *LineBuffer {
	b.buf = append(b.buf, s...)
	return b
}

// AddrPort appends " ip:port" ("[ip]:port" for IPv6) without allocating.
func (b *LineBuffer) AddrPort(ap netip.AddrPort) *LineBuffer {
	b.buf = append(b.buf, ' ')
	b.buf = ap.AppendTo(b.buf)
	return b
}

// Grow makes room for n more bytes.
func (b *LineBuffer) Grow(n int) {
	if cap(b.buf)-len(b.buf) < n {
		nb := make([]byte, len(b.buf), len(b.buf)+n)
		copy(nb, b.buf)
		b.buf = nb
	}
}

// End finishes the line started with Start.
func (b *LineBuffer) End() {
	b.buf = append(b.buf, '\n')
	b.lines++
}

// Bytes returns the buffered lines.
func (b *LineBuffer) Bytes() []byte { return b.buf }

// Lines returns the number of lines written.
func (b *LineBuffer) Lines() int { return b.lines }

// Reset empties the buffer, keeping its memory.
func (b *LineBuffer) Reset() { b.buf, b.lines = b.buf[:0], 0 }

// ChainRef names a chain in a table.
type ChainRef struct {
	Table Table
	Name  string
}

// Jump is a rule in a built-in chain sending packets to one of ours. Jumps
// are not part of the restore input (we must not own the built-in chains);
// the applier ensures them on full syncs.
type Jump struct {
	Table Table
	From  string   // the built-in chain, e.g. PREROUTING
	Args  []string // match and "-j" target
}

// Chain is one chain we own with its rules. Rules lines start with
// "-A <Name>".
type Chain struct {
	ChainRef
	Rules LineBuffer
}

// Ruleset is the complete set of chains the syncer wants to exist, per table.
type Ruleset struct {
	chains map[ChainRef]*Chain
}

// NewRuleset returns an empty rule set.
func NewRuleset() *Ruleset {
	return &Ruleset{chains: map[ChainRef]*Chain{}}
}

// Chain returns the chain, creating it empty if needed.
func (r *Ruleset) Chain(t Table, name string) *Chain {
	ref := ChainRef{t, name}
	if c, ok := r.chains[ref]; ok {
		return c
	}
	c := &Chain{ChainRef: ref}
	r.chains[ref] = c
	return c
}

// Add puts an already built chain into the set (replacing one of that name).
func (r *Ruleset) Add(c *Chain) { r.chains[c.ChainRef] = c }

// Remove drops a chain from the set.
func (r *Ruleset) Remove(ref ChainRef) { delete(r.chains, ref) }

// Clone returns a set holding the same chains (shared, not copied: chains
// are never modified once in a set).
func (r *Ruleset) Clone() *Ruleset {
	out := &Ruleset{chains: make(map[ChainRef]*Chain, len(r.chains))}
	for k, v := range r.chains {
		out.chains[k] = v
	}
	return out
}

// Get returns a chain if it exists.
func (r *Ruleset) Get(t Table, name string) (*Chain, bool) {
	c, ok := r.chains[ChainRef{t, name}]
	return c, ok
}

// Len returns the number of chains.
func (r *Ruleset) Len() int { return len(r.chains) }

// Refs returns every chain reference in a stable order (table, then name).
func (r *Ruleset) Refs() []ChainRef {
	refs := make([]ChainRef, 0, len(r.chains))
	for ref := range r.chains {
		refs = append(refs, ref)
	}
	sortRefs(refs)
	return refs
}

// RuleCount returns the number of rules in all chains of a table.
func (r *Ruleset) RuleCount(t Table) int {
	n := 0
	for ref, c := range r.chains {
		if ref.Table == t {
			n += c.Rules.Lines()
		}
	}
	return n
}

func sortRefs(refs []ChainRef) { slices.SortFunc(refs, compareRefs) }

// compareRefs orders chains by table, then name.
func compareRefs(a, b ChainRef) int {
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// Transaction is one iptables-restore --noflush input: chains to (re)write
// and chains to delete. Writing a chain declares it (":NAME - [0:0]"), which
// creates or flushes it, then appends its rules; deleting declares it (to
// flush it, so nothing it references blocks the delete) and then "-X"es it.
type Transaction struct {
	write  []*Chain
	delete []ChainRef
}

// Write schedules a chain to be flushed and rewritten.
func (tx *Transaction) Write(c *Chain) { tx.write = append(tx.write, c) }

// Delete schedules a chain to be deleted.
func (tx *Transaction) Delete(ref ChainRef) { tx.delete = append(tx.delete, ref) }

// Empty reports whether the transaction changes nothing.
func (tx *Transaction) Empty() bool { return len(tx.write) == 0 && len(tx.delete) == 0 }

// Written returns the chains the transaction rewrites, sorted.
func (tx *Transaction) Written() []ChainRef {
	refs := make([]ChainRef, len(tx.write))
	for i, c := range tx.write {
		refs[i] = c.ChainRef
	}
	sortRefs(refs)
	return refs
}

// Deleted returns the chains the transaction deletes, sorted.
func (tx *Transaction) Deleted() []ChainRef {
	refs := append([]ChainRef(nil), tx.delete...)
	sortRefs(refs)
	return refs
}

// Rules returns the number of rule lines the transaction writes.
func (tx *Transaction) Rules() int {
	n := 0
	for _, c := range tx.write {
		n += c.Rules.Lines()
	}
	return n
}

// AppendTo appends the restore input to b and returns the extended buffer,
// like strconv's and netip's AppendTo: a caller that passes b[:0] reuses
// the memory of the previous sync. Chains are written in name order within
// a table so that the input is deterministic.
func (tx *Transaction) AppendTo(b []byte) []byte {
	size := 64
	for _, c := range tx.write {
		size += len(c.Name) + 10 + len(c.Rules.Bytes())
	}
	b = slices.Grow(b, size+32*len(tx.delete))
	slices.SortFunc(tx.write, func(x, y *Chain) int { return compareRefs(x.ChainRef, y.ChainRef) })
	sortRefs(tx.delete)
	for _, t := range Tables {
		start := len(b)
		b = append(b, '*')
		b = append(b, t...)
		b = append(b, '\n')
		declared := false
		for _, c := range tx.write {
			if c.Table == t {
				b = declare(b, c.Name)
				declared = true
			}
		}
		for _, ref := range tx.delete {
			if ref.Table == t {
				b = declare(b, ref.Name)
				declared = true
			}
		}
		if !declared {
			b = b[:start]
			continue
		}
		for _, c := range tx.write {
			if c.Table == t {
				b = append(b, c.Rules.Bytes()...)
			}
		}
		for _, ref := range tx.delete {
			if ref.Table == t {
				b = append(b, "-X "...)
				b = append(b, ref.Name...)
				b = append(b, '\n')
			}
		}
		b = append(b, "COMMIT\n"...)
	}
	return b
}

// Bytes renders the restore input.
func (tx *Transaction) Bytes() []byte { return tx.AppendTo(nil) }

func declare(b []byte, name string) []byte {
	b = append(b, ':')
	b = append(b, name...)
	return append(b, " - [0:0]\n"...)
}

// Full returns a transaction writing every chain of the set.
func (r *Ruleset) Full() *Transaction {
	tx := &Transaction{}
	for _, ref := range r.Refs() {
		tx.Write(r.chains[ref])
	}
	return tx
}

// Diff returns the transaction turning prev into r: chains whose rules
// differ (or are new) are rewritten, chains gone from r are deleted. A nil
// prev gives a full transaction.
func (r *Ruleset) Diff(prev *Ruleset) *Transaction {
	if prev == nil {
		return r.Full()
	}
	tx := &Transaction{}
	for ref, c := range r.chains {
		old, ok := prev.chains[ref]
		// Chains rendered once and reused (a service that did not change)
		// are the same object: no need to compare their bytes.
		if !ok || old != c && !bytes.Equal(old.Rules.Bytes(), c.Rules.Bytes()) {
			tx.Write(c)
		}
	}
	for ref := range prev.chains {
		if _, ok := r.chains[ref]; !ok {
			tx.Delete(ref)
		}
	}
	return tx
}
