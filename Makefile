# linkerd-ca-issuer — every target works from a clean clone: the tools are
# built from the Go module proxy into bin/ (git-ignored) and reused while
# hack/tools/go.mod and go.sum are unchanged.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN       := $(CURDIR)/bin
TOOLS     := hack/tools
TOOLS_MOD := $(TOOLS)/go.mod $(TOOLS)/go.sum
# Every cluster tool is on one Kubernetes line in hack/tools, so Kubernetes
# compiles once; golangci-lint has its own module, whose dependencies must
# not move the tools'.
LINT_MOD  := hack/lint/go.mod hack/lint/go.sum
FUZZTIME  ?= 2000x
CHART     := charts/linkerd-ca-issuer
GENERATED := api/v1alpha1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml $(CHART)/files

# One version for both binaries, the image tag and the chart: `git describe`
# (v0.1.0 on a tag, v0.1.0-3-gabc1234 after it), v0.0.0-g<commit> before the
# first tag; -dirty for uncommitted changes.
MODULE   := github.com/linkerd-ca-issuer/linkerd-ca-issuer
VERSION  ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo "v0.0.0-g$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD 2>/dev/null || echo -dirty)")
VERSION  := $(VERSION)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
REVISION := $(REVISION)
# The commit's time: the image's creation time and the archives' mtimes, so
# that two builds of one commit are byte for byte the same.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
SOURCE_DATE_EPOCH := $(SOURCE_DATE_EPOCH)
CHART_VERSION   := $(patsubst v%,%,$(VERSION))
VERSION_LDFLAGS := -X $(MODULE)/internal/version.Version=$(VERSION) -X $(MODULE)/internal/version.Revision=$(REVISION)
IMAGE_REPO      ?= ghcr.io/linkerd-ca-issuer/linkerd-ca-issuer
CHART_REPO      ?= oci://ghcr.io/linkerd-ca-issuer/charts
IMAGE_PLATFORMS := linux/amd64 linux/arm64
CLI_PLATFORMS   := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
RELEASE_DIR     := $(BIN)/release

# Every build, the product's and the tools', without cgo and with
# -trimpath: the image's linux/amd64 build needs both, and the product and
# the tools (on the same module versions: hack/tools and go.mod agree) then
# share every compiled package. vet and the e2e test binary use them too.
GO_BUILD       := CGO_ENABLED=0 go build -trimpath

CONTROLLER_GEN := $(BIN)/controller-gen
ETCD           := $(BIN)/etcd
KUBE_APISERVER := $(BIN)/kube-apiserver
KUBECTL        := $(BIN)/kubectl
CERT_MANAGER   := $(BIN)/cert-manager-controller
HELM           := $(BIN)/helm
KIND           := $(BIN)/kind
TRUST_MANAGER  := $(BIN)/trust-manager
KUBE_CONTROLLER_MANAGER := $(BIN)/kube-controller-manager
KUBE_SCHEDULER := $(BIN)/kube-scheduler
KWOK           := $(BIN)/kwok
# local-kms stands in for AWS KMS in the tests of KMS-kept anchors.
LOCAL_KMS      := $(BIN)/local-kms
APPROVER_POLICY := $(BIN)/approver-policy
GOLANGCI_LINT  := $(BIN)/golangci-lint
# What the demo runs, and what the e2e suite adds: the controllers and kwok
# that make the local control plane a cluster that runs workloads, and
# kubectl. Each group is one `go build` of several main packages, which
# compiles their shared Kubernetes once, on every core.
DEMO_TOOLS     := $(ETCD) $(KUBE_APISERVER) $(CERT_MANAGER) $(TRUST_MANAGER) $(HELM)
# The rotation demo adds what runs a mesh (WORKLOAD_TOOLS); the e2e suite
# adds the rest (CLUSTER_TOOLS).
WORKLOAD_TOOLS := $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) $(KWOK)
CLUSTER_TOOLS  := $(KUBECTL) $(LOCAL_KMS) $(APPROVER_POLICY)
E2E_TOOLS      := $(DEMO_TOOLS) $(WORKLOAD_TOOLS) $(CLUSTER_TOOLS)
DEMO_PACKAGES  := ./etcd ./cert-manager-controller k8s.io/kubernetes/cmd/kube-apiserver \
	github.com/cert-manager/trust-manager/cmd/trust-manager helm.sh/helm/v3/cmd/helm
WORKLOAD_PACKAGES := k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
	sigs.k8s.io/kwok/cmd/kwok
CLUSTER_PACKAGES := k8s.io/kubernetes/cmd/kubectl github.com/nsmithuk/local-kms github.com/cert-manager/approver-policy/cmd

.PHONY: all
all: build

##@ Build

.PHONY: build
build: ## Build the controller and the linkerd-ca CLI into bin/.
	@# Without cgo, as the image's linux/amd64 build: the two share compiles.
	$(GO_BUILD) -ldflags "$(VERSION_LDFLAGS)" -o $(BIN)/ ./cmd/linkerd-ca-issuer ./cmd/linkerd-ca

.PHONY: version
version: ## Print the version stamped into binaries, image and chart.
	@echo $(VERSION)

.PHONY: image
image: ## The controller image (linux/amd64, linux/arm64) as an OCI layout and docker-archive tarballs in bin/image; no container engine.
	@rm -rf $(BIN)/image/build
	@for p in $(IMAGE_PLATFORMS); do \
		echo "go build ./cmd/linkerd-ca-issuer for $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -ldflags "-s -w $(VERSION_LDFLAGS)" \
			-o $(BIN)/image/build/$${p/\//-}/linkerd-ca-issuer ./cmd/linkerd-ca-issuer || exit 1; \
	done
	cd hack/release && CGO_ENABLED=0 go run -trimpath . image --out $(BIN)/image --repository $(IMAGE_REPO) \
		--version $(VERSION) --revision $(REVISION) --created $(SOURCE_DATE_EPOCH) \
		$(foreach p,$(IMAGE_PLATFORMS),--binary $(p)=$(BIN)/image/build/$(subst /,-,$(p))/linkerd-ca-issuer)

.PHONY: release
release: image $(HELM) ## Every release artifact into bin/release with SHA256SUMS: CLI archives, the chart, the image (a dry run here; the release workflow runs it on a tag).
	rm -rf $(RELEASE_DIR) && mkdir -p $(RELEASE_DIR)/stage
	@for p in $(CLI_PLATFORMS); do \
		name=linkerd-ca_$(VERSION)_$${p%/*}_$${p#*/}; mkdir -p $(RELEASE_DIR)/stage/$$name; \
		echo "go build ./cmd/linkerd-ca for $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -ldflags "-s -w $(VERSION_LDFLAGS)" \
			-o $(RELEASE_DIR)/stage/$$name/linkerd-ca ./cmd/linkerd-ca || exit 1; \
		cp LICENSE $(RELEASE_DIR)/stage/$$name/; \
		tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
			-C $(RELEASE_DIR)/stage -cf - $$name | gzip -9n > $(RELEASE_DIR)/$$name.tar.gz || exit 1; \
	done
	$(HELM) package $(CHART) --version $(CHART_VERSION) --app-version $(VERSION) -d $(RELEASE_DIR)
	tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
		-C $(BIN)/image/oci -cf $(RELEASE_DIR)/linkerd-ca-issuer-image_$(VERSION)_oci-layout.tar .
	@for p in $(IMAGE_PLATFORMS); do \
		cp $(BIN)/image/linkerd-ca-issuer-$${p/\//-}.tar $(RELEASE_DIR)/linkerd-ca-issuer-image_$(VERSION)_$${p/\//_}.tar; done
	rm -rf $(RELEASE_DIR)/stage
	cd $(RELEASE_DIR) && sha256sum -- * > SHA256SUMS
	@echo "release $(VERSION) (chart $(CHART_VERSION), image $(IMAGE_REPO):$(VERSION)) in $(RELEASE_DIR):"
	@cat $(RELEASE_DIR)/SHA256SUMS

.PHONY: release-push
release-push: ## Push bin/release's image and chart to IMAGE_REPO and CHART_REPO (the release workflow, after registry logins).
	cd hack/release && CGO_ENABLED=0 go run -trimpath . push --layout $(BIN)/image/oci --image $(IMAGE_REPO):$(VERSION)
	$(HELM) push $(RELEASE_DIR)/linkerd-ca-issuer-$(CHART_VERSION).tgz $(CHART_REPO)

##@ Generated files

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy, CRDs and RBAC from the markers.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=linkerd-ca-issuer paths=./internal/... output:rbac:artifacts:config=config/rbac
	@# The chart ships the generated CRDs and RBAC rules byte for byte.
	rm -f $(CHART)/files/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/files/crds/
	cp config/rbac/role.yaml $(CHART)/files/rbac/role.yaml

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint with .golangci.yml, e2e files included.
	@# It type-checks against export data from `go list -export`: with
	@# build's settings, that is what build compiled already.
	CGO_ENABLED=0 GOFLAGS=-trimpath $(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: generate lint ## Fail on stale generated files, unformatted code, vet or lint findings, or a module built at two versions (product and tools).
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "generated files are stale; run 'make generate' and commit:"; \
		git status --porcelain -- $(GENERATED); exit 1; fi
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
		if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	@# With build's settings (CGO_ENABLED=0, -trimpath): the product's
	@# packages then compile in one configuration for build, vet and e2e.
	CGO_ENABLED=0 go vet -trimpath ./...
	CGO_ENABLED=0 go vet -trimpath -tags e2e ./e2e/...
	cd $(TOOLS) && CGO_ENABLED=0 go vet -trimpath ./...
	cd hack/release && CGO_ENABLED=0 go vet -trimpath ./...
	@# One version of each module the product and the tools both build: the
	@# e2e controllers (cert-manager's above all) must be the product's, and
	@# the builds share compiled packages only where the versions agree.
	@skew="$$(join <(go list -deps -f '{{with .Module}}{{.Path}} {{.Version}}{{end}}' ./... | sort -u) \
		<(cd $(TOOLS) && go list -deps -f '{{with .Module}}{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}{{end}}' \
		$(DEMO_PACKAGES) $(WORKLOAD_PACKAGES) $(CLUSTER_PACKAGES) | sort -u) | awk '$$2 != $$3')"; \
		if [ -n "$$skew" ]; then echo "modules built at one version in go.mod and another in $(TOOLS)/go.mod (module, product, tools):"; \
		echo "$$skew"; exit 1; fi

##@ Test

.PHONY: test
test: verify ## Every test: generated files, unit tests, fuzz smoke, the built image, e2e on a local control plane.
	@# The e2e suite mostly waits: over its ~6 minutes the 2 cores are ~40%
	@# busy. The unit tests, fuzzing and the image test run beside it, niced
	@# so that the suite's processes come first; their output follows its.
	@# The two-cluster e2e has no timed bound (the main suite's fault tests
	@# do): the rotation demo and the alerts' compile run beside it.
	@side=$$(mktemp); nice -n 19 $(MAKE) --no-print-directory unit fuzz test-image >$$side 2>&1 & pid=$$!; \
	rc=0; $(MAKE) --no-print-directory e2e || rc=$$?; \
	echo "=== make e2e-multicluster (the rotation demo and the alerts' build beside it)"; \
	demo=$$(mktemp); DEMO_FLOW=rotation DEMO_EXIT=1 $(MAKE) --no-print-directory demo >$$demo 2>&1 & dpid=$$!; \
	nice -n 19 $(MAKE) --no-print-directory alerts-build >/dev/null 2>&1 & apid=$$!; \
	$(MAKE) --no-print-directory e2e-multicluster || rc=$$?; \
	wait $$dpid || rc=$$?; echo "=== DEMO_FLOW=rotation DEMO_EXIT=1 make demo (run beside it):"; cat $$demo; rm -f $$demo; \
	wait $$pid || rc=$$?; wait $$apid; \
	echo "=== unit, fuzz and test-image (run beside the e2e suite):"; cat $$side; rm -f $$side; \
	echo "=== make alerts (the chart's alerts over the states the e2e suite left)"; $(MAKE) --no-print-directory alerts || rc=$$?; exit $$rc

.PHONY: unit
unit: ## Unit tests (policy, signing, anchor checks, controller with a fake client; the e2e cert-manager's defaults).
	go test -race -count=1 ./...
	cd $(TOOLS) && CGO_ENABLED=0 go test -trimpath -count=1 ./cert-manager-controller/

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 2000x: executions), several at once.
	@# A count, not a duration: Go 1.26's coordinator can fail a target with
	@# "context deadline exceeded" when a -fuzztime duration ends while a
	@# starved worker is mid-call (golang/go#75804, fixed in 1.27), and these
	@# run niced beside the e2e suite. A count has no deadline to race.
	@# The first of a package builds its instrumented test binary alone;
	@# the others then reuse it from the build cache.
	@$(call fuzz-at-once,signer:FuzzPolicyCheck podtrust:FuzzParseRoots)
	@$(call fuzz-at-once,signer:FuzzParseAnchor signer:FuzzCheckTrialChain signer:FuzzNamespaceRule)

# fuzz-at-once runs package:target pairs side by side, one fuzzing worker
# each, and fails if any fails.
define fuzz-at-once
pids=; for t in $(1); do \
	echo "go test ./internal/$${t%%:*} -fuzz ^$${t#*:}\$$"; \
	go test ./internal/$${t%%:*} -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x -parallel 1 & pids="$$pids $$!"; \
done; fail=0; for p in $$pids; do wait $$p || fail=1; done; exit $$fail
endef

.PHONY: test-image
test-image: image ## Read the built image back: both platforms, user, entrypoint, no shell, annotations; run its binary's --version.
	cd hack/release && IMAGE_DIR=$(BIN)/image IMAGE_VERSION=$(VERSION) IMAGE_REVISION=$(REVISION) CGO_ENABLED=0 go test -trimpath -count=1 ./...

# Prometheus's rule engine is on another Kubernetes line than the product:
# hack/alerts is a module of its own, run after the e2e suite on the rules
# and states it leaves in bin/alert-states. Not built beside the suite: its
# ~770 packages took CPU from the suite's timed fault tests. `make test`
# compiles them (alerts-build, niced) beside the two-cluster e2e, which has
# no timed bound; `make alerts` then finds them in the build cache.
ALERTS_GO := cd hack/alerts && ALERT_STATES=$(BIN)/alert-states CGO_ENABLED=0 go

.PHONY: alerts-build
alerts-build: ## Compile hack/alerts (vet and its tests) without running them.
	$(ALERTS_GO) vet -trimpath ./...
	$(ALERTS_GO) test -trimpath -count=1 -run '^$$' ./...

.PHONY: alerts
alerts: ## The chart's alerts, by Prometheus's rule engine, over the states the last `make e2e` left in bin/alert-states.
	$(ALERTS_GO) vet -trimpath ./...
	$(ALERTS_GO) test -trimpath -count=1 -v ./...

.PHONY: e2e
e2e: build $(E2E_TOOLS) ## The e2e suite on a local control plane (USE_EXISTING_CLUSTER=true: on KUBECONFIG's cluster).
	@# -parallel: the parallel tests wait more than they work, more of them
	@# than the 2 cores go test would otherwise run at once.
	CGO_ENABLED=0 go test -trimpath -tags e2e -count=1 -timeout 20m -parallel 8 -v ./e2e/

.PHONY: e2e-multicluster
e2e-multicluster: build $(E2E_TOOLS) ## Two local clusters, linked, rotating one set of roots under one watcher (docs/multicluster.md).
	CGO_ENABLED=0 go test -trimpath -tags e2e -count=1 -timeout 15m -v ./e2e/multicluster/

.PHONY: bench-multicluster
bench-multicluster: build $(E2E_TOOLS) ## e2e-multicluster with about 100 meshed pods a cluster: the linked rotation's wall time per phase.
	MULTICLUSTER_REPLICAS=50 CGO_ENABLED=0 go test -trimpath -tags e2e -count=1 -timeout 60m -v -run TestLinkedClustersRotateTogether ./e2e/multicluster/

.PHONY: bench
bench: ## The benchmarks behind docs/performance.md.
	go test ./internal/signer -run '^$$' -bench . -benchmem -count 6

.PHONY: bench-kms
bench-kms: build $(E2E_TOOLS) ## Signing with the trust anchor's key in a Secret and in local-kms, side by side.
	CGO_ENABLED=0 go test -trimpath -tags e2e -run '^$$' -bench BenchmarkSignThroughKMS -benchmem -count 6 ./e2e/

.PHONY: bench-e2e
bench-e2e: build $(E2E_TOOLS) ## This issuer beside cert-manager's CA issuer on the local control plane (N=300 requests a round).
	CGO_ENABLED=0 go run -trimpath ./hack/bench-e2e -n $(or $(N),300)

.PHONY: bench-rotation
bench-rotation: build $(E2E_TOOLS) ## A rotation of 5,000 meshed pods in 500 Deployments: the issuer's API requests, RSS growth, switch latency.
	CGO_ENABLED=0 go run -trimpath ./hack/bench-rotation -workloads $(or $(WORKLOADS),500) -replicas $(or $(REPLICAS),10)

.PHONY: e2e-kind
e2e-kind: $(HELM) $(KUBECTL) $(KIND) ## The e2e suite on a kind cluster with this chart (needs Docker; not part of make test).
	hack/e2e-kind.sh

##@ Demo

.PHONY: demo
demo: build $(DEMO_TOOLS) $(if $(filter rotation,$(DEMO_FLOW)),$(WORKLOAD_TOOLS)) ## Replay Linkerd's current guide on a local control plane (DEMO_FLOW=original: the namespaced flow; DEMO_FLOW=rotation: a mesh, its root rotated; DEMO_EXIT=1: exit after).
	@# With build's settings, so that the demo reuses its compiled packages.
	CGO_ENABLED=0 go run -trimpath ./hack/demo

##@ Tools (built from the Go module proxy, pinned in hack/tools/go.mod)

.PHONY: tools
tools: $(CONTROLLER_GEN) $(GOLANGCI_LINT) $(E2E_TOOLS) ## Build every tool into bin/.

$(CONTROLLER_GEN): $(TOOLS_MOD)
	cd $(TOOLS) && $(GO_BUILD) -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen
# Stamped with the release they are built from, as Kubernetes' own build
# does: `helm install` checks the chart's kubeVersion against /version.
K8S_VERSION = $(shell cd $(TOOLS) && go list -m -f '{{.Version}}' k8s.io/kubernetes)
K8S_LDFLAGS = -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(patsubst v%,%,$(K8S_VERSION)))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION))) \
	-X k8s.io/component-base/version.gitTreeState=clean
$(DEMO_TOOLS) &: $(TOOLS_MOD) $(TOOLS)/etcd/main.go $(TOOLS)/cert-manager-controller/main.go
	cd $(TOOLS) && $(GO_BUILD) -ldflags "$(K8S_LDFLAGS)" -o $(BIN)/ $(DEMO_PACKAGES)
	@touch $(DEMO_TOOLS)
$(WORKLOAD_TOOLS) &: $(TOOLS_MOD)
	cd $(TOOLS) && $(GO_BUILD) -ldflags "$(K8S_LDFLAGS)" -o $(BIN)/ $(WORKLOAD_PACKAGES)
	@touch $(WORKLOAD_TOOLS)
$(CLUSTER_TOOLS) &: $(TOOLS_MOD)
	cd $(TOOLS) && $(GO_BUILD) -ldflags "$(K8S_LDFLAGS)" -o $(BIN)/ $(CLUSTER_PACKAGES)
	@# approver-policy's main package is named cmd.
	mv $(BIN)/cmd $(APPROVER_POLICY)
	@touch $(CLUSTER_TOOLS)
$(KIND): $(TOOLS_MOD)
	cd $(TOOLS) && $(GO_BUILD) -o $@ sigs.k8s.io/kind
$(GOLANGCI_LINT): $(LINT_MOD)
	cd hack/lint && $(GO_BUILD) -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  %-10s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
