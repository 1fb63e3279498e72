package listflag_test

import (
	"bytes"
	"flag"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/internal/listflag"
)

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"":            nil,
		" , ,":        nil,
		"a":           {"a"},
		"a, b,,c ":    {"a", "b", "c"},
		"1.1.1.1:53,": {"1.1.1.1:53"},
	} {
		if got := listflag.Split(in); !slices.Equal(got, want) {
			t.Errorf("Split(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePrefixesNamesTheBadElement(t *testing.T) {
	got, err := listflag.ParsePrefixes("10.0.0.0/8, fd00::/64")
	if err != nil || !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/64")}) {
		t.Fatalf("ParsePrefixes = %v, %v", got, err)
	}
	if _, err := listflag.ParsePrefixes("10.0.0.0/8,10.0.0.1"); err == nil || !strings.Contains(err.Error(), `"10.0.0.1" is not a CIDR`) {
		t.Errorf("error %v does not name the bad element", err)
	}
}

// newFlagSet registers the list flags the binaries use the way they do.
func newFlagSet(cidrs *[]netip.Prefix, ips *[]netip.Addr, servers *[]string, sizes *[]int) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	fs.Var(listflag.Prefixes(cidrs), "cluster-cidr", "Comma-separated CIDRs.")
	fs.Var(listflag.Addrs(ips), "node-ip", "Comma-separated IPs.")
	fs.Var(listflag.Strings(servers), "dns-server", "Repeat or comma-separate.")
	fs.Var(listflag.New(sizes, strconv.Atoi), "sizes", "Comma-separated counts.")
	return fs
}

func TestValueOnAFlagSet(t *testing.T) {
	var cidrs []netip.Prefix
	var ips []netip.Addr
	var servers []string
	sizes := []int{1000, 10000}
	fs := newFlagSet(&cidrs, &ips, &servers, &sizes)
	err := fs.Parse([]string{
		"--cluster-cidr", "10.244.0.0/16,fd00:10:244::/48",
		"-node-ip", "192.168.0.2",
		"--dns-server", "1.1.1.1, 8.8.8.8:53", "--dns-server=9.9.9.9",
		"--sizes", "5,7",
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/48")}; !slices.Equal(cidrs, want) {
		t.Errorf("--cluster-cidr = %v, want %v", cidrs, want)
	}
	if want := []netip.Addr{netip.MustParseAddr("192.168.0.2")}; !slices.Equal(ips, want) {
		t.Errorf("-node-ip = %v, want %v", ips, want)
	}
	if want := []string{"1.1.1.1", "8.8.8.8:53", "9.9.9.9"}; !slices.Equal(servers, want) {
		t.Errorf("repeated --dns-server = %q, want %q", servers, want)
	}
	if want := []int{5, 7}; !slices.Equal(sizes, want) {
		t.Errorf("--sizes = %v, want %v: a value replaces the default", sizes, want)
	}
}

func TestValueErrorNamesFlagAndElement(t *testing.T) {
	var cidrs []netip.Prefix
	var ips []netip.Addr
	var servers []string
	var sizes []int
	for args, want := range map[string]string{
		"--cluster-cidr=10.0.0.0/8,nope": `invalid value "10.0.0.0/8,nope" for flag -cluster-cidr: "nope" is not a CIDR`,
		"--node-ip=10.0.0.0/8":           `invalid value "10.0.0.0/8" for flag -node-ip: "10.0.0.0/8" is not an IP address`,
		"--sizes=1,x":                    `invalid value "1,x" for flag -sizes: strconv.Atoi: parsing "x"`,
	} {
		err := newFlagSet(&cidrs, &ips, &servers, &sizes).Parse([]string{args})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", args, err, want)
		}
	}
	if cidrs != nil || ips != nil || sizes != nil {
		t.Errorf("a rejected value changed the lists: %v %v %v", cidrs, ips, sizes)
	}
}

func TestDefaultsInUsage(t *testing.T) {
	var cidrs []netip.Prefix
	var ips []netip.Addr
	var servers []string
	sizes := []int{1000, 10000}
	fs := newFlagSet(&cidrs, &ips, &servers, &sizes)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	fs.PrintDefaults()
	if !strings.Contains(usage.String(), "(default 1000,10000)") {
		t.Errorf("usage does not show the list default:\n%s", usage.String())
	}
	if strings.Count(usage.String(), "(default") != 1 {
		t.Errorf("usage shows a default for an empty list:\n%s", usage.String())
	}
}
