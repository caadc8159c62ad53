# linkerd-ca-issuer — every target works from a clean clone: tools are built
# from the Go module proxy into bin/ (git-ignored) and reused when present.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN          := $(CURDIR)/bin
TOOLS_MOD    := hack/tools/go.mod
CONTROLLER_GEN := $(BIN)/controller-gen
FUZZTIME     ?= 5s

.PHONY: all
all: build

##@ Build

.PHONY: build
build: ## Build the controller binary into bin/.
	go build -trimpath -o $(BIN)/linkerd-ca-issuer ./cmd/linkerd-ca-issuer

##@ Generated files

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy, CRDs and RBAC from the markers.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=linkerd-ca-issuer paths=./internal/... output:rbac:artifacts:config=config/rbac

.PHONY: verify
verify: generate ## Fail on stale generated files, unformatted code or vet findings.
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
		echo "generated files are stale; run 'make generate' and commit:"; \
		git status --porcelain -- api config; git diff --stat -- api config; exit 1; fi
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
		if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	go vet ./...
	cd hack/tools && go vet -tags tools ./...

##@ Test

.PHONY: test
test: verify unit fuzz ## Every test: generated-file check, unit tests, fuzz smoke.

.PHONY: unit
unit: ## Unit tests (policy, signing, anchor checks, controller with a fake client).
	go test -race -count=1 ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 5s).
	go test ./internal/signer -run '^$$' -fuzz '^FuzzPolicyCheck$$' -fuzztime $(FUZZTIME)
	go test ./internal/signer -run '^$$' -fuzz '^FuzzParseAnchor$$' -fuzztime $(FUZZTIME)

.PHONY: bench
bench: ## Benchmarks behind docs/performance.md.
	go test ./internal/signer -run '^$$' -bench 'Sign|CreateCertificate' -benchmem -count 6

##@ Tools

$(CONTROLLER_GEN): $(TOOLS_MOD)
	cd hack/tools && GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen

.PHONY: tools
tools: $(CONTROLLER_GEN) ## Build every tool into bin/.

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
