# arbor's build. Every target installs or builds what it needs; nothing is assumed
# on the machine beyond Go, git and make. Cached tools live in $(ARBOR_CACHE).

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

export ARBOR_CACHE ?= $(HOME)/.cache/arbor
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The same flags build the binary here and in the container image (hack/image.sh).
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
TEST_TIMEOUT ?= 60m

.PHONY: build
build: ## Build bin/arbor (static).
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/arbor ./cmd/arbor

.PHONY: demo
demo: build cluster-up ## Run arbor's main job end to end on the local cluster (builds everything it needs).
	export PATH="$$(hack/cluster.sh bin):$$PATH"; hack/demo.sh && hack/demo-workflows.sh

.PHONY: test
test: test-deps cluster-up gitea-up buildkit-up ## Run every test: unit, golden, integration on the local cluster, Gitea, buildkitd and a registry.
	export ARBOR_TEST_KUBECONFIG="$$(hack/cluster.sh up | tail -n1 | sed 's/^export KUBECONFIG=//')"; \
	eval "$$(hack/gitea.sh up | tail -n1)"; \
	eval "$$(hack/buildkit.sh up | tail -n1)"; \
	export PATH="$$(hack/cluster.sh bin):$$PATH"; \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: test-unit
test-unit: ## Run the tests that need no cluster.
	$(GO) test -short -count=1 ./...

.PHONY: test-deps
test-deps: ## Check git; install Chromium for the status page test when missing.
	@command -v git >/dev/null || { echo "git is needed"; exit 1; }
	@command -v chromium >/dev/null || hack/install-chromium.sh

.PHONY: image
image: ## Build the container image with BuildKit (bin/arbor-image.tar; IMAGE=ref pushes it instead). Needs no container engine.
	VERSION=$(VERSION) hack/image.sh

.PHONY: test-compat
test-compat: ## Run the compat tests over real Release files outside the repository (fails when they are missing).
	$(GO) test -tags compat -count=1 ./schema ./cmd/arbor

.PHONY: fuzz
fuzz: ## Fuzz the .release.yaml loader and the kustomize path (FUZZTIME each, default 10m).
	$(GO) test ./schema -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $${FUZZTIME:-10m} -parallel 1 -fuzzminimizetime 5s
	$(GO) test ./render -run '^$$' -fuzz '^FuzzKustomize$$' -fuzztime $${FUZZTIME:-10m} -parallel 1 -fuzzminimizetime 5s

.PHONY: bench
bench: cluster-up gitea-up buildkit-up ## Run the benchmarks (render, git, apply engine, daemon, forge, images) and print their figures.
	export ARBOR_TEST_KUBECONFIG="$$(hack/cluster.sh up | tail -n1 | sed 's/^export KUBECONFIG=//')"; \
	eval "$$(hack/gitea.sh up | tail -n1)"; \
	eval "$$(hack/buildkit.sh up | tail -n1)"; \
	export PATH="$$(hack/cluster.sh bin):$$PATH"; \
	$(GO) test -run '^$$' -bench . -benchmem -timeout 90m ./render ./gitsource ./apply ./workflow ./reconciler ./images

.PHONY: cluster-up
cluster-up:
	@hack/cluster.sh up >/dev/null

.PHONY: cluster
cluster: ## Build (once) and start the local cluster; the last line is `export KUBECONFIG=...`.
	@hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster.
	@hack/cluster.sh down

.PHONY: gitea-up
gitea-up:
	@hack/gitea.sh up >/dev/null

.PHONY: gitea
gitea: ## Build (once) and start the local Gitea; the last line exports ARBOR_TEST_GITEA_URL and _TOKEN_FILE.
	@hack/gitea.sh up

.PHONY: gitea-down
gitea-down: ## Stop the local Gitea and delete its data.
	@hack/gitea.sh down

.PHONY: buildkit-up
buildkit-up:
	@hack/buildkit.sh up >/dev/null

.PHONY: buildkit
buildkit: ## Build (once) and start buildkitd and a loopback registry; the last line exports ARBOR_TEST_BUILDKIT_ADDR and _REGISTRY.
	@hack/buildkit.sh up

.PHONY: buildkit-down
buildkit-down: ## Stop buildkitd and the registry and delete their data.
	@hack/buildkit.sh down

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n $$out ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'
