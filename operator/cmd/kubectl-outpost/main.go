// Command kubectl-outpost is the kubectl plugin `kubectl outpost`: on PATH,
// kubectl runs it for `kubectl outpost import` and `kubectl outpost explain`.
package main

import (
	"os"

	"github.com/outpost-dev/outpost/internal/kubectlplugin"
)

func main() {
	os.Exit(kubectlplugin.Execute())
}
