package iptablestest

// The tracer parses iptables-restore input (ours or kube-proxy's) and follows
// a packet through it, like kube-proxy's tracePacket. Probabilistic rules
// (-m statistic) are explored both ways, so a trace lists every endpoint a
// first packet can reach, whether each path is masqueraded, and how many
// rules the kernel evaluates on the way.

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Rule is one parsed "-A" line.
type Rule struct {
	Words []string
	Line  string
}

// Tables maps table -> chain -> rules.
type Tables map[string]map[string][]Rule

// Parse reads restore input. Several inputs may be parsed into the same
// Tables one after another, as iptables-restore --noflush would apply them:
// a chain declaration flushes the chain, "-X" deletes it.
func (t Tables) Parse(data []byte) error {
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if t[table] == nil {
				t[table] = map[string][]Rule{}
			}
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			t[table][name] = []Rule{}
		case strings.HasPrefix(line, "-X "):
			delete(t[table], strings.TrimSpace(line[3:]))
		case strings.HasPrefix(line, "-A "):
			words, err := split(line)
			if err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
			chain := words[1]
			if _, ok := t[table][chain]; !ok {
				return fmt.Errorf("line %d: chain %s not declared in table %s", n, chain, table)
			}
			t[table][chain] = append(t[table][chain], Rule{Words: words[2:], Line: line})
		default:
			return fmt.Errorf("line %d: cannot parse %q", n, line)
		}
	}
	return sc.Err()
}

// ParseTables parses one restore input.
func ParseTables(data []byte) (Tables, error) {
	t := Tables{}
	return t, t.Parse(data)
}

// RuleCount counts rules in a table.
func (t Tables) RuleCount(table string) int {
	n := 0
	for _, rs := range t[table] {
		n += len(rs)
	}
	return n
}

func split(line string) ([]string, error) {
	var words []string
	for i := 0; i < len(line); {
		switch {
		case line[i] == ' ':
			i++
		case line[i] == '"':
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", line)
			}
			words = append(words, line[i+1:i+1+end])
			i += end + 2
		default:
			end := strings.IndexByte(line[i:], ' ')
			if end < 0 {
				end = len(line) - i
			}
			words = append(words, line[i:i+end])
			i += end
		}
	}
	return words, nil
}

// Packet is a first packet of a connection.
type Packet struct {
	Src, Dst netip.Addr
	Proto    string // tcp, udp, sctp
	DPort    int
}

// Tracer follows packets through parsed rules.
type Tracer struct {
	Tables Tables
	// Prefix names the entry chains (<Prefix>-SERVICES, ...).
	Prefix string
	// LocalAddrs are the node's addresses (for -m addrtype LOCAL);
	// loopback addresses are local without being listed, as in the kernel.
	LocalAddrs []netip.Addr
	// Recent holds session-affinity state: "name|srcIP" entries that a
	// "-m recent --rcheck" finds. Filled by Remember.
	Recent map[string]bool
}

// Outcome is one way a packet can go.
type Outcome struct {
	// Verdict is DNAT (sent to Endpoint), ACCEPT (untouched), REJECT or DROP.
	Verdict    string
	Endpoint   string
	Masquerade bool
	// Sets lists the recent lists the path adds the source to.
	Sets []string
}

// Result is a trace: every outcome and the number of rules evaluated.
type Result struct {
	Outcomes []Outcome
	Rules    int
}

// Endpoints returns the sorted distinct DNAT destinations.
func (r Result) Endpoints() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range r.Outcomes {
		if o.Verdict == "DNAT" && !seen[o.Endpoint] {
			seen[o.Endpoint] = true
			out = append(out, o.Endpoint)
		}
	}
	sort.Strings(out)
	return out
}

// Verdicts returns the sorted distinct verdicts.
func (r Result) Verdicts() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range r.Outcomes {
		if !seen[o.Verdict] {
			seen[o.Verdict] = true
			out = append(out, o.Verdict)
		}
	}
	sort.Strings(out)
	return out
}

// Masquerade reports whether the path to endpoint (or the only path when
// endpoint is "") is masqueraded. It is an error in the rules if different
// paths to one endpoint disagree, so the first path decides.
func (r Result) Masquerade(endpoint string) bool {
	for _, o := range r.Outcomes {
		if endpoint == "" || o.Endpoint == endpoint {
			return o.Masquerade
		}
	}
	return false
}

// state is a packet's state along one path.
type state struct {
	mark    uint32
	dnat    string
	masq    bool
	verdict string
	// done ends the walk of the current table (a verdict or a DNAT).
	done bool
	sets []string
}

// Trace follows pkt through nat (PREROUTING, or OUTPUT for a packet from a
// local address), filter and nat POSTROUTING, starting at our entry chains
// (the jumps from the built-in chains are not part of a restore input).
func (tr *Tracer) Trace(pkt Packet) Result {
	var res Result
	w := &walker{tr: tr, pkt: pkt, count: &res.Rules}
	for _, s := range w.walk("nat", tr.Prefix+"-SERVICES", state{}) {
		s.done = false
		outs := []state{s}
		if s.dnat == "" {
			// A packet nat left alone meets the filter chains; the
			// firewall drops load-balancer traffic from sources outside
			// loadBalancerSourceRanges (its nat chain did not DNAT it).
			outs = w.walkAll("filter", []string{tr.Prefix + "-PROXY-FIREWALL", tr.Prefix + "-EXTERNAL-SERVICES", tr.Prefix + "-SERVICES"}, s)
		}
		for _, s := range outs {
			if s.verdict == "REJECT" || s.verdict == "DROP" {
				res.Outcomes = append(res.Outcomes, Outcome{Verdict: s.verdict})
				continue
			}
			s.done, s.verdict = false, ""
			for _, p := range w.walk("nat", tr.Prefix+"-POSTROUTING", s) {
				o := Outcome{Verdict: "ACCEPT", Masquerade: p.masq, Sets: p.sets}
				if p.dnat != "" {
					o.Verdict, o.Endpoint = "DNAT", p.dnat
				}
				res.Outcomes = append(res.Outcomes, o)
			}
		}
	}
	return res
}

// Remember records the session-affinity state the outcome's path would set
// for pkt's source, as the kernel does on the first packet.
func (tr *Tracer) Remember(pkt Packet, o Outcome) {
	if tr.Recent == nil {
		tr.Recent = map[string]bool{}
	}
	for _, name := range o.Sets {
		tr.Recent[name+"|"+pkt.Src.String()] = true
	}
}

type walker struct {
	tr    *Tracer
	pkt   Packet
	count *int
	depth int
}

// walkAll walks chains one after another (as consecutive jumps from a
// built-in chain), stopping a path at its first terminal verdict.
func (w *walker) walkAll(table string, chains []string, s state) []state {
	paths := []state{s}
	for _, c := range chains {
		var next []state
		for _, p := range paths {
			if p.done {
				next = append(next, p)
				continue
			}
			next = append(next, w.walk(table, c, p)...)
		}
		paths = next
	}
	return paths
}

// walk evaluates a chain. Returned states are either done (a verdict or a
// DNAT) or fell off the end / RETURNed to the caller.
func (w *walker) walk(table, chain string, s state) []state {
	return w.walkFrom(table, w.tr.Tables[table][chain], 0, s)
}

func (w *walker) walkFrom(table string, rules []Rule, i int, s state) []state {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > 256 {
		return []state{{verdict: "LOOP", done: true}}
	}
	for ; i < len(rules); i++ {
		*w.count++
		ms := s
		m, probabilistic, target := w.match(rules[i].Words, &ms)
		if !m {
			continue
		}
		taken, ret := w.target(table, target, ms)
		var out []state
		for _, t := range taken {
			if t.done || ret {
				out = append(out, t)
			} else {
				out = append(out, w.walkFrom(table, rules, i+1, t)...)
			}
		}
		if probabilistic {
			out = append(out, w.walkFrom(table, rules, i+1, s)...)
		}
		return out
	}
	return []state{s}
}

// match evaluates the matches of a rule and returns the target words.
func (w *walker) match(words []string, s *state) (ok, probabilistic bool, target []string) {
	p := w.pkt
	neg := false
	for i := 0; i < len(words); i++ {
		word := words[i]
		arg := func() string {
			i++
			if i < len(words) {
				return words[i]
			}
			return ""
		}
		result := true
		switch word {
		case "!":
			neg = true
			continue
		case "-j":
			return true, probabilistic, words[i+1:]
		case "-m":
			arg()
			continue
		case "--comment", "--name", "--mode", "--seconds", "--nfacct-name":
			arg()
			continue
		case "--reap", "--set":
			if word == "--set" {
				// Recorded on the path when the rule's target is taken.
				s.sets = append(append([]string{}, s.sets...), lastName(words[:i]))
			}
			continue
		case "-s":
			result = inPrefix(p.Src, arg())
		case "-d":
			result = inPrefix(p.Dst, arg())
		case "-p":
			result = strings.EqualFold(arg(), p.Proto)
		case "--dport":
			lo, hi, _ := strings.Cut(arg(), ":")
			l, _ := strconv.Atoi(lo)
			h := l
			if hi != "" {
				h, _ = strconv.Atoi(hi)
			}
			result = p.DPort >= l && p.DPort <= h
		case "--dst-type":
			result = arg() == "LOCAL" && w.local(p.Dst)
		case "--src-type":
			result = arg() == "LOCAL" && w.local(p.Src)
		case "--probability":
			arg()
			probabilistic = true
			continue
		case "--rcheck":
			result = w.tr.Recent[lastName(words[:i])+"|"+p.Src.String()]
		case "--mark":
			v, m, _ := strings.Cut(arg(), "/")
			val, _ := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 32)
			mask := uint64(0xffffffff)
			if m != "" {
				mask, _ = strconv.ParseUint(strings.TrimPrefix(m, "0x"), 16, 32)
			}
			result = uint64(s.mark)&mask == val
		case "--ctstate":
			states := strings.Split(arg(), ",")
			result = false
			for _, st := range states {
				if st == "NEW" || st == "DNAT" && s.dnat != "" {
					result = true
				}
			}
		default:
			// Unknown words (e.g. --random-fully belongs to a target) are
			// ignored as matches.
			continue
		}
		if result == neg {
			return false, false, nil
		}
		neg = false
	}
	return true, probabilistic, nil
}

func lastName(words []string) string {
	for i := len(words) - 2; i >= 0; i-- {
		if words[i] == "--name" {
			return words[i+1]
		}
	}
	return ""
}

func (w *walker) local(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, l := range w.tr.LocalAddrs {
		if l == a {
			return true
		}
	}
	return false
}

func inPrefix(a netip.Addr, s string) bool {
	if !strings.Contains(s, "/") {
		b, err := netip.ParseAddr(s)
		return err == nil && a == b
	}
	p, err := netip.ParsePrefix(s)
	return err == nil && p.Contains(a)
}

// target applies a rule's target; ret reports a RETURN.
func (w *walker) target(table string, t []string, s state) (out []state, ret bool) {
	if len(t) == 0 {
		return []state{s}, false // no target: counts and continues
	}
	switch t[0] {
	case "ACCEPT", "DROP", "REJECT":
		s.verdict, s.done = t[0], true
	case "RETURN":
		return []state{s}, true
	case "DNAT":
		s.dnat, s.done = flagValue(t, "--to-destination"), true
	case "MASQUERADE":
		s.masq, s.verdict, s.done = true, "ACCEPT", true
	case "MARK":
		if v := flagValue(t, "--or-mark"); v != "" {
			s.mark |= parseHex(v)
		}
		if v := flagValue(t, "--xor-mark"); v != "" {
			s.mark ^= parseHex(v)
		}
	default:
		// Jump to a user chain; falling off its end or RETURN continues here.
		return w.walk(table, t[0], s), false
	}
	return []state{s}, false
}

func flagValue(words []string, flag string) string {
	for i := 0; i+1 < len(words); i++ {
		if words[i] == flag {
			return words[i+1]
		}
	}
	return ""
}

func parseHex(s string) uint32 {
	v, _ := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	return uint32(v)
}
