# Outpost. `make run` to try it, `make test` to test it; `make help` lists the rest.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

BIN ?= $(CURDIR)/bin
comma := ,
GO ?= go
TOOLS := $(GO) tool -modfile=$(CURDIR)/hack/tools/go.mod
CONTROLLER_GEN := $(TOOLS) controller-gen
KUSTOMIZE := $(TOOLS) kustomize
export KUBEBUILDER_ASSETS := $(BIN)/k8s
# Every binary is static (the images need it), and building everything the
# same way lets tests, `make build` and `make image` share one build cache.
export CGO_ENABLED ?= 0
# What --version prints and outpost_build_info exports (internal/version);
# a plain `go build` falls back to the toolchain's VCS revision. CoreDNS'
# -version shows the revision too.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
VERSION_PKG := github.com/outpost-dev/outpost/internal/version
VERSION_LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X github.com/coredns/coredns/coremain.GitCommit=outpost-$(VERSION)
GO_BUILD := $(GO) build -ldflags="$(VERSION_LDFLAGS)"

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

# The operator's packages with RBAC markers: not ./operator/..., which would
# grant the operator the syncer's role too.
OPERATOR_RBAC_PACKAGES := ./operator/controller/... ./operator/clusterranges/...

.PHONY: manifests
manifests: ## Generate the CRD and RBAC from the API and controller markers.
	$(CONTROLLER_GEN) crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
	cp config/crd/bases/*.yaml charts/outpost/crds/
	$(CONTROLLER_GEN) rbac:roleName=outpost-operator $(foreach p,$(OPERATOR_RBAC_PACKAGES),paths="$(p)") output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=outpost-syncer paths="./operator/syncer/..." output:rbac:artifacts:config=config/components/datapath
	$(CONTROLLER_GEN) rbac:roleName=outpost-coredns paths="./plugin/..." output:rbac:artifacts:config=config/components/dns
	cp config/rbac/role.yaml charts/outpost/files/rbac/operator-role.yaml
	cp config/components/datapath/role.yaml charts/outpost/files/rbac/syncer-role.yaml
	cp config/components/dns/role.yaml charts/outpost/files/rbac/coredns-role.yaml

.PHONY: generate
generate: ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: manifests generate ## Fail if the committed generated files are stale.
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run 'make manifests generate' and commit" >&2; exit 1; }

.PHONY: verify-fmt
verify-fmt: ## Fail if a Go file is not gofmt-clean.
	@out=$$(gofmt -l $$(git ls-files '*.go')); [[ -z "$$out" ]] || { echo "not gofmt-clean (run 'make fmt'): $$out" >&2; exit 1; }

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd from the Go module proxy into bin/k8s (cached).
	./hack/envtest.sh

.PHONY: coredns-corefile
coredns-corefile: ## Rewrite config/components/dns/Corefile and the chart's copy from Corefile.example (kubeconfig line dropped).
	$(GO) test ./test/manifests -run '^TestClusterCorefileIsTheExample$$' -count=1 -update
	cp config/components/dns/Corefile charts/outpost/files/Corefile

##@ Try it

.PHONY: run
run: envtest build ## Start a local control plane, the operator and the samples, and show what to try.
	$(GO) build -o $(BIN)/outpost-run ./hack/run
	$(BIN)/outpost-run --bin $(BIN)

##@ Build

.PHONY: build
build: coredns ## Build every binary into bin/.
	$(GO_BUILD) -o $(BIN)/outpost-operator ./operator/cmd/outpost-operator
	$(GO_BUILD) -o $(BIN)/outpost-syncer ./operator/cmd/outpost-syncer
	$(GO_BUILD) -o $(BIN)/kubectl-outpost ./operator/cmd/kubectl-outpost

.PHONY: coredns
coredns: ## Build the custom CoreDNS (stock plugins + outpost) into bin/coredns.
	$(GO_BUILD) -o $(BIN)/coredns ./plugin/coredns

##@ Release

DIST ?= $(CURDIR)/dist

.PHONY: install-yaml
install-yaml: ## Write dist/install.yaml, config/default in one file: `kubectl apply --server-side -f dist/install.yaml`.
	mkdir -p $(DIST)
	$(KUSTOMIZE) build config/default > $(DIST)/install.yaml.tmp
	mv $(DIST)/install.yaml.tmp $(DIST)/install.yaml

##@ Images

IMAGE_REPO ?= outpost-dev
IMAGE_TAG ?= dev
IMAGE_DIR ?= $(BIN)/images
IMAGE_VERSION ?= $(VERSION)
IMAGE_REVISION ?= $(REVISION)
# Every image is one OCI index with an image for each of these GOARCHes.
IMAGE_ARCHS ?= amd64 arm64
# Image and file times: the commit's, so a rebuild of one commit gives the same digests.
IMAGE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_BUILDER := $(BIN)/image-builder
# Flags for the static (CGO_ENABLED=0) builds that go into the images.
IMAGE_BUILD_FLAGS ?= -trimpath -ldflags="-s $(VERSION_LDFLAGS)"
# CA bundle installed in the images (the operator's HTTPS health checks verify against it).
CA_CERTS ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
CA_ARGS := $(if $(CA_CERTS),-ca-certs $(CA_CERTS))

# build-image,NAME,DESCRIPTION,ARGS: pack $(IMAGE_DIR)/linux-ARCH/NAME of every ARCH into $(IMAGE_DIR)/NAME.tar.
define build-image
	SOURCE_DATE_EPOCH=$(IMAGE_EPOCH) $(IMAGE_BUILDER) $(foreach arch,$(IMAGE_ARCHS),-binary $(arch)=$(IMAGE_DIR)/linux-$(arch)/$(1)) \
		-tag $(IMAGE_REPO)/$(1):$(IMAGE_TAG) -out $(IMAGE_DIR)/$(1).tar \
		-description "$(2)" -version "$(IMAGE_VERSION)" -revision "$(IMAGE_REVISION)" $(CA_ARGS) $(3)
endef

.PHONY: image
image: ## Write a multi-arch (IMAGE_ARCHS) OCI archive of each binary to bin/images/ (no Docker daemon; README: Images).
	$(GO) build -C hack/image -o $(IMAGE_BUILDER) .
	for arch in $(IMAGE_ARCHS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build $(IMAGE_BUILD_FLAGS) -o $(IMAGE_DIR)/linux-$$arch/ \
			./operator/cmd/outpost-operator ./operator/cmd/outpost-syncer ./plugin/coredns; \
		./hack/image/iptables-rootfs.sh $$arch $(IMAGE_DIR)/linux-$$arch/iptables-rootfs; \
	done
	$(call build-image,outpost-operator,Outpost operator: ExternalBackends to Services$(comma) EndpointSlices and Endpoints)
	$(call build-image,outpost-syncer,Outpost syncer: kube-proxy-style iptables rules for Services (iptables nft and legacy),$(foreach arch,$(IMAGE_ARCHS),-add-dir $(arch)=$(IMAGE_DIR)/linux-$(arch)/iptables-rootfs))
	$(call build-image,coredns,CoreDNS with the outpost plugin: cluster DNS for Services and ExternalBackends)

##@ Test

.PHONY: test
test: envtest verify-generated verify-fmt vet test-kube-proxy-equivalence test-monitoring test-plots ## Run every test (envtest, real CoreDNS, real iptables in network namespaces, kube-proxy equivalence).
	$(GO) test ./... -count=1 -timeout 30m

.PHONY: bench-dns
bench-dns: envtest ## Benchmark outpost against the kubernetes plugin: bare and shipped Corefile, 10k/50k Services (BENCH_DNS_SERVICES), QPS, CPU, memory; figures in bin/bench/dns.json (make plots).
	$(GO) test ./test/dns/ -run '^$$' -bench BenchmarkDNS -benchtime 1x -timeout 5h

.PHONY: bench
bench: envtest ## Run the benchmarks side by side with their references.
	$(GO) test ./operator/ -run '^$$' -bench . -benchtime 1x -timeout 30m

BENCH_SYNCER_SIZES ?= 1000,10000,30000
BENCH_ROUNDS ?= 5

.PHONY: bench-syncer
bench-syncer: ## Syncer vs kube-proxy's proxier at 1k/10k/30k services (BENCH_SYNCER_SIZES); real restores need root.
	cd hack/bench-syncer && $(GO) test -mod=mod -count=1 -run Equals . && $(GO) build -mod=mod -o $(BIN)/bench-syncer . && $(BIN)/bench-syncer -sizes $(BENCH_SYNCER_SIZES) -rounds $(BENCH_ROUNDS) -out $(BIN)/bench/syncer.json

.PHONY: test-kube-proxy-equivalence
test-kube-proxy-equivalence: ## Same objects through kube-proxy v1.37.2's proxier and outpost-syncer --chain-prefix KUBE --layout kube-proxy: the same chains and rules, in order (IPv4, IPv6, a full sync and 25 partial ones applied for real), with only the listed deliberate differences; both layouts' first packets fare as kube-proxy's (prints "agree N of N").
	cd hack/bench-syncer && $(GO) test -mod=mod -count=1 -run 'Equals|Deliberate' -v . 2>&1 | grep -v '^[EIW][0-9]\{4\} '

.PHONY: plots
plots: ## Draw the README charts (plugin/figures, operator/syncer/figures) from bin/bench/*.json, which make bench-dns and make bench-syncer write.
	cd hack/plots && $(GO) run . -dns $(BIN)/bench/dns.json -syncer $(BIN)/bench/syncer.json -dns-dir $(CURDIR)/plugin/figures -syncer-dir $(CURDIR)/operator/syncer/figures

.PHONY: test-plots
test-plots: ## The chart drawer draws both sides of every chart from benchmark records.
	cd hack/plots && $(GO) test -count=1 .

.PHONY: test-monitoring
test-monitoring: envtest ## Every PromQL expression in config/monitoring parses and reads only metrics the operator, syncer and CoreDNS plugin export (root).
	cd hack/monitoring && $(GO) test -count=1 -timeout 10m .

.PHONY: bench-resolve
bench-resolve: ## Benchmark 1000 names re-resolved and 1000 addresses probed against goroutine-per-item references.
	$(GO) test ./operator/resolve/ ./operator/probe/ -run '^$$' -bench . -benchtime 1x -timeout 10m

.PHONY: bench-e2e
bench-e2e: envtest ## Apply->DNS answer->connection latency over 100 backends, operator vs. direct Service+EndpointSlice (root).
	$(GO) test ./test/e2e/ -run '^$$' -bench BenchmarkApplyToTraffic -benchtime 1x -count=1 -timeout 20m
