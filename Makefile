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

##@ Build

.PHONY: build
build: ## Build every binary into bin/.
	$(GO) build -o $(BIN)/outpost-operator ./operator/cmd/outpost-operator

##@ Test

.PHONY: test
test: envtest verify-generated vet ## Run every test (envtest, real CoreDNS, real iptables in network namespaces).
	$(GO) test ./... -count=1 -timeout 30m

.PHONY: bench
bench: envtest ## Run the benchmarks side by side with their references.
	$(GO) test ./operator/... -run '^$$' -bench . -benchtime 1x -timeout 30m

.PHONY: bench-resolve
bench-resolve: ## Benchmark 1000 names re-resolved and 1000 addresses probed against goroutine-per-item references.
	$(GO) test ./operator/resolve/ ./operator/probe/ -run '^$$' -bench . -benchtime 1x -timeout 10m
