package kubectlplugin_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/internal/kubectlplugin"
)

// TestHelp checks that every command answers --help, as kubectl's own do,
// with its usage under the name kubectl runs it by and its flags, without
// needing a cluster.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"kubectl outpost [command]", "import ", "explain ", "--kubeconfig", "--context", "-n, --namespace"}},
		{[]string{"import"}, []string{"kubectl outpost import [NAME] [flags]", "-A, --all-namespaces", "-o, --output", `outpost.dev/adopt: "true"`, "--kubeconfig", "--context", "-n, --namespace"}},
		{[]string{"explain"}, []string{"kubectl outpost explain NAME [flags]", "--dns-server", "--rules", "--chain-prefix", "--source", "-o, --output", "--kubeconfig", "--context", "-n, --namespace"}},
	} {
		var out, errOut bytes.Buffer
		cmd := kubectlplugin.NewCommand(&out, &errOut)
		cmd.SetArgs(append(tc.args, "--help"))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v --help: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v --help does not show %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "-o", "wide"}, `--output "wide": must be yaml or json`},
		{[]string{"import", "svc1", "-A"}, "NAME cannot be combined with --all-namespaces"},
		{[]string{"explain", "svc1", "--source", "pod"}, `--source "pod": not an IP address`},
		{[]string{"explain"}, "accepts 1 arg(s), received 0"},
	} {
		var out, errOut bytes.Buffer
		cmd := kubectlplugin.NewCommand(&out, &errOut)
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
