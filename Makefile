# Outpost. `make run` to try it, `make test` to test it; `make help` lists the rest.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

BIN ?= $(CURDIR)/bin
GO ?= go
TOOLS := $(GO) tool -modfile=$(CURDIR)/hack/tools/go.mod
CONTROLLER_GEN := $(TOOLS) controller-gen
KUSTOMIZE := $(TOOLS) kustomize
export KUBEBUILDER_ASSETS := $(BIN)/k8s

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD and RBAC from the API and controller markers.
	$(CONTROLLER_GEN) rbac:roleName=outpost-operator crd paths="./api/..." paths="./operator/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: manifests generate ## Fail if the committed generated files are stale.
	@git diff --exit-code -- api config || { echo "generated files are stale: run 'make manifests generate' and commit" >&2; exit 1; }

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd from the Go module proxy into bin/k8s (cached).
	./hack/envtest.sh

##@ Try it

.PHONY: run
run: envtest build ## Start a local control plane, the operator and the samples, and show what to try.
	$(GO) build -o $(BIN)/outpost-run ./hack/run
	$(BIN)/outpost-run --bin $(BIN)

##@ Build

.PHONY: build
build: coredns ## Build every binary into bin/.
	$(GO) build -o $(BIN)/outpost-operator ./operator/cmd/outpost-operator
	$(GO) build -o $(BIN)/outpost-syncer ./operator/cmd/outpost-syncer

.PHONY: coredns
coredns: ## Build the custom CoreDNS (stock plugins + outpost) into bin/coredns.
	$(GO) build -o $(BIN)/coredns ./plugin/coredns

##@ Test

.PHONY: test
test: envtest verify-generated vet ## Run every test (envtest, real CoreDNS, real iptables in network namespaces).
	$(GO) test ./... -count=1 -timeout 30m

.PHONY: bench-dns
bench-dns: envtest ## Benchmark outpost against the kubernetes plugin (10k Services, dnsperf, RSS, propagation).
	$(GO) test ./test/dns/ -run '^$$' -bench BenchmarkDNS -benchtime 1x -timeout 30m

.PHONY: bench
bench: envtest ## Run the benchmarks side by side with their references.
	$(GO) test ./operator/ -run '^$$' -bench . -benchtime 1x -timeout 30m

BENCH_SYNCER_SIZES ?= 1000,10000,30000

.PHONY: bench-syncer
bench-syncer: ## Syncer vs kube-proxy's proxier at 1k/10k/30k services (BENCH_SYNCER_SIZES); real restores need root.
	cd hack/bench-syncer && $(GO) test -count=1 -run Equals . && $(GO) build -o $(BIN)/bench-syncer . && $(BIN)/bench-syncer -sizes $(BENCH_SYNCER_SIZES)

.PHONY: test-kube-proxy-equivalence
test-kube-proxy-equivalence: ## Same objects through kube-proxy v1.37.2's proxier and outpost-syncer --chain-prefix KUBE --layout kube-proxy: identical rules.
	cd hack/bench-syncer && $(GO) test -count=1 -run Equals .

.PHONY: bench-resolve
bench-resolve: ## Benchmark 1000 names re-resolved and 1000 addresses probed against goroutine-per-item references.
	$(GO) test ./operator/resolve/ ./operator/probe/ -run '^$$' -bench . -benchtime 1x -timeout 10m

.PHONY: bench-e2e
bench-e2e: envtest ## Apply->DNS answer->connection latency over 100 backends, operator vs. direct Service+EndpointSlice (root).
	$(GO) test ./test/e2e/ -run '^$$' -bench BenchmarkApplyToTraffic -benchtime 1x -count=1 -timeout 20m
