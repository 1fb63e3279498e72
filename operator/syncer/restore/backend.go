package restore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Backend is one of iptables 1.8's two kernel interfaces: nf_tables ("nft")
// or the legacy x_tables ("legacy"). Each backend's tools see only the rules
// written through it, while packets traverse both: rules must go where
// kubelet and the network plugin write theirs, or a Service's DNAT can sit
// beside a firewall that no tool on the node shows together with it.
type Backend int

const (
	// Auto detects the node's backend (Exec.Detect).
	Auto Backend = iota
	// NFT is iptables-nft: iptables rules kept in nf_tables.
	NFT
	// Legacy is iptables-legacy: the x_tables kernel interface.
	Legacy
)

// ParseBackend parses an --iptables-backend value.
func ParseBackend(s string) (Backend, error) {
	switch s {
	case "auto", "":
		return Auto, nil
	case "nft":
		return NFT, nil
	case "legacy":
		return Legacy, nil
	}
	return 0, fmt.Errorf("iptables backend %q: must be auto, nft or legacy", s)
}

// Set makes *Backend a flag.Value.
func (b *Backend) Set(s string) error {
	v, err := ParseBackend(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b Backend) String() string {
	switch b {
	case NFT:
		return "nft"
	case Legacy:
		return "legacy"
	}
	return "auto"
}

// Tools names the iptables commands Exec runs. The zero value is the plain
// names (iptables, iptables-save, iptables-restore and their ip6 twins),
// which run whichever backend the host's alternatives point them at.
type Tools struct {
	// Backend selects the suffixed commands (iptables-nft-restore,
	// ip6tables-legacy-save, ...); Auto means the plain names.
	Backend Backend
}

// Name returns the command for a family; action is "" (iptables itself),
// "save" or "restore".
func (t Tools) Name(ipv6 bool, action string) string {
	name := "iptables"
	if ipv6 {
		name = "ip6tables"
	}
	if t.Backend != Auto {
		name += "-" + t.Backend.String()
	}
	if action != "" {
		name += "-" + action
	}
	return name
}

// Plain reports whether t names the unsuffixed commands.
func (t Tools) Plain() bool { return t.Backend == Auto }

// Kubelet's chains in the mangle table, which tell where kubelet writes:
// KUBE-IPTABLES-HINT exists for exactly this question, KUBE-KUBELET-CANARY is
// the chain kubelet watches for flushes.
var kubeletChains = []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"}

// Seen is what one backend's iptables-save showed, both families together.
type Seen struct {
	// KubeletChain is the first of kubelet's chains found in the mangle
	// table; empty when there is none.
	KubeletChain string
	// Rules counts the rules ("-A" lines) of every table scanned.
	Rules int
}

// Scan adds what one iptables-save output shows to s.
func (s *Seen) Scan(save io.Reader) error {
	sc := bufio.NewScanner(save)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	table := ""
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("-A ")):
			s.Rules++
		case bytes.HasPrefix(line, []byte("*")):
			table = string(line[1:])
		case table == "mangle" && s.KubeletChain == "" && bytes.HasPrefix(line, []byte(":")):
			name, _, _ := bytes.Cut(line[1:], []byte(" "))
			for _, c := range kubeletChains {
				if string(name) == c {
					s.KubeletChain = c
				}
			}
		}
	}
	return sc.Err()
}

// Choice is a backend and why it was chosen.
type Choice struct {
	Backend Backend
	Reason  string
}

// Decide picks the node's backend from what each one holds, as kube-proxy's
// images do (kubernetes-sigs/iptables-wrappers): the backend where kubelet
// created its chains in the mangle table (nft first, as the wrapper checks
// it first), else the one holding more rules, else nft (the default of
// current distributions). Rule counts are only compared when neither
// backend has kubelet's chains, so they may be left zero when one has.
func Decide(nft, legacy Seen) Choice {
	switch {
	case nft.KubeletChain != "":
		return Choice{NFT, nft.KubeletChain + " in iptables-nft's mangle table (kubelet's)"}
	case legacy.KubeletChain != "":
		return Choice{Legacy, legacy.KubeletChain + " in iptables-legacy's mangle table (kubelet's)"}
	case legacy.Rules > nft.Rules:
		return Choice{Legacy, fmt.Sprintf("no kubelet chain; iptables-legacy holds more rules (%d, iptables-nft %d)", legacy.Rules, nft.Rules)}
	case nft.Rules > legacy.Rules:
		return Choice{NFT, fmt.Sprintf("no kubelet chain; iptables-nft holds more rules (%d, iptables-legacy %d)", nft.Rules, legacy.Rules)}
	}
	return Choice{NFT, fmt.Sprintf("no kubelet chain and as many rules in both backends (%d): the default", nft.Rules)}
}

// Detect runs each backend's iptables-save and IPv6 twin and Decides. Like
// the wrapper it is best effort: a save that fails (a kernel without IPv6,
// say) shows nothing. iptables-nft-save is first asked for the mangle table
// only, which is cheap; iptables-legacy-save is asked for every table, since
// naming one would create it in the kernel; rules are only counted (every
// table of iptables-nft-save) when kubelet's chains are in neither.
func (e *Exec) Detect(ctx context.Context) Choice {
	nft := e.seen(ctx, NFT, "-t", "mangle")
	legacy := e.seen(ctx, Legacy)
	if nft.KubeletChain == "" && legacy.KubeletChain == "" {
		nft = e.seen(ctx, NFT)
	}
	return Decide(nft, legacy)
}

func (e *Exec) seen(ctx context.Context, b Backend, args ...string) Seen {
	var s Seen
	for _, ipv6 := range []bool{false, true} {
		cmd := e.command(ctx, Tools{b}.Name(ipv6, "save"), args...)
		out, err := cmd.StdoutPipe()
		if err != nil || cmd.Start() != nil {
			continue
		}
		_ = s.Scan(out)
		_, _ = io.Copy(io.Discard, out) // what Scan left (a line too long), so the tool can exit
		_ = cmd.Wait()
	}
	return s
}

// Selection is the backend Exec programs, the commands it runs for it and
// why.
type Selection struct {
	Choice
	Tools Tools
}

// Select sets the commands Exec runs for the requested backend (Auto:
// Detect) and returns them with the reason. Hosts without the suffixed
// commands (iptables-nft-restore, ...) get the plain ones when those run the
// requested backend (PlainSelection).
func (e *Exec) Select(ctx context.Context, requested Backend) (Selection, error) {
	missing := map[Backend]string{NFT: missingTool(NFT), Legacy: missingTool(Legacy)}
	var sel Selection
	switch {
	case requested == Auto && missing[NFT] == "" && missing[Legacy] == "":
		c := e.Detect(ctx)
		sel = Selection{Choice: c, Tools: Tools{c.Backend}}
	case requested != Auto && missing[requested] == "":
		sel = Selection{Choice: Choice{requested, "as requested"}, Tools: Tools{requested}}
	default:
		plain := Tools{}.Name(false, "")
		version, err := e.command(ctx, plain, "--version").Output()
		if err != nil {
			return Selection{}, fmt.Errorf("%s --version: %w", plain, err)
		}
		if sel, err = PlainSelection(requested, missing, string(version)); err != nil {
			return Selection{}, err
		}
	}
	e.Tools = sel.Tools
	return sel, nil
}

// PlainSelection is the choice on a host lacking a backend's suffixed
// commands: missing names the first missing command of each backend ("" when
// all are installed), version is what `iptables --version` printed. The
// plain commands are used when they run the requested backend; Auto takes
// them whatever they run, as comparing the backends needs both suffixed
// sets. A requested backend the plain commands do not run is an error.
func PlainSelection(requested Backend, missing map[Backend]string, version string) (Selection, error) {
	b, line := PlainBackend(version)
	lacking := missing[requested]
	if requested == Auto {
		var names []string
		for _, suffixed := range []Backend{NFT, Legacy} {
			if missing[suffixed] != "" {
				names = append(names, missing[suffixed])
			}
		}
		lacking = strings.Join(names, " and ")
	} else if b != requested {
		return Selection{}, fmt.Errorf("%s is not installed and the plain %s is %s (%s)", lacking, Tools{}.Name(false, ""), b, line)
	}
	return Selection{Choice: Choice{b, fmt.Sprintf("%s not installed: the plain commands (%s)", lacking, line)}}, nil
}

// missingTool returns the first of a backend's commands not in $PATH, or
// "" when all are. "ip netns exec" keeps the mount namespace, so what is
// found here runs in --netns too.
func missingTool(b Backend) string {
	for _, ipv6 := range []bool{false, true} {
		for _, action := range []string{"", "save", "restore"} {
			name := Tools{b}.Name(ipv6, action)
			if _, err := exec.LookPath(name); err != nil {
				return name
			}
		}
	}
	return ""
}

// PlainBackend reads the backend of the plain commands from
// `iptables --version`: "iptables v1.8.9 (nf_tables)" is nft; "(legacy)",
// and versions before 1.8 which name none, are legacy. It also returns the
// version line, trimmed.
func PlainBackend(versionOutput string) (Backend, string) {
	line := strings.TrimSpace(versionOutput)
	if strings.Contains(line, "(nf_tables)") {
		return NFT, line
	}
	return Legacy, line
}
