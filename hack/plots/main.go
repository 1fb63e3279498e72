// Command plots draws the figures the side-by-side benchmarks recorded
// (internal/benchresult files written by make bench-dns and make
// bench-syncer) as SVG charts for the READMEs: one line or bar per side, so
// Outpost and its reference read at a glance.
//
// It lives in its own module so that gonum/plot and its fonts stay out of
// Outpost's go.mod. make plots runs it:
//
//	plots -dns bin/bench/dns.json -syncer bin/bench/syncer.json
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/outpost-dev/outpost/internal/benchresult"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plots:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("plots", flag.ContinueOnError)
	dnsIn := fl.String("dns", "bin/bench/dns.json", "make bench-dns's result file")
	syncerIn := fl.String("syncer", "bin/bench/syncer.json", "make bench-syncer's result file")
	dnsOut := fl.String("dns-dir", "plugin/figures", "directory for the DNS charts")
	syncerOut := fl.String("syncer-dir", "operator/syncer/figures", "directory for the syncer charts")
	if err := fl.Parse(args); err != nil {
		return err
	}
	drawn := 0
	for _, in := range []struct {
		path, dir string
		charts    []chart
	}{
		{*dnsIn, *dnsOut, dnsCharts},
		{*syncerIn, *syncerOut, syncerCharts},
	} {
		f, err := benchresult.Read(in.path)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "plots: %s not found (run its make target first); skipped\n", in.path)
			continue
		}
		if err != nil {
			return err
		}
		written, err := drawAll(f, in.charts, in.dir)
		if err != nil {
			return err
		}
		for _, w := range written {
			fmt.Println("plots: wrote", w)
		}
		drawn += len(written)
	}
	if drawn == 0 {
		return fmt.Errorf("no chart drawn: neither %s nor %s holds figures (run make bench-dns or make bench-syncer first)", *dnsIn, *syncerIn)
	}
	return nil
}
