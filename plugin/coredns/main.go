// Command coredns is CoreDNS v1.15 with every stock plugin plus outpost,
// which runs just before kubernetes in the plugin chain.
package main

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // all stock plugins
	"github.com/coredns/coredns/coremain"

	_ "github.com/outpost-dev/outpost/plugin" // registers "outpost"
)

func init() {
	if err := dnsserver.SetDirectives(withOutpost(dnsserver.Directives)); err != nil {
		panic(err)
	}
}

// withOutpost returns the directive order with "outpost" inserted just before
// "kubernetes" (at the end if kubernetes is missing).
func withOutpost(directives []string) []string {
	if slices.Contains(directives, "outpost") {
		return directives
	}
	i := slices.Index(directives, "kubernetes")
	if i < 0 {
		i = len(directives)
	}
	return slices.Insert(slices.Clone(directives), i, "outpost")
}

func main() { coremain.Run() }
