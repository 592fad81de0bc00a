# netpolcheck: the two commands of the README are `make run` (the main job)
# and `make test` (every test, as root: integration tests use network
# namespaces, nftables and a real control plane; then the main job, once
# with the reference enforcer, once with its none profile and once with
# kube-router, the IPBlock
# conformance cases without external hosts (as on kind), and a check of the
# runs and of their comparison reports).

GO       ?= go
BIN      ?= bin
PKGS     ?= ./...
FUZZTIME ?= 60s

# The main job: the suites against the local cluster with CNI (reference,
# none, kube-router, flannel, flannel-kube-router: `netpolcheck local up
# --cni`); PROFILE is the reference
# enforcer's (correct or delay, with CNI=reference).
OUT      ?= reports/out
PROCS    ?= 4
CNI      ?= reference
PROFILE  ?= correct
RUN_NAME ?= $(if $(filter correct,$(PROFILE)),$(CNI),$(CNI)-$(PROFILE))
SUITES   ?= ./suites/recipes ./suites/conformance ./suites/generated
GINKGO   ?= $(GO) run github.com/onsi/ginkgo/v2/ginkgo
GINKGO_FLAGS ?=
# CONVERGENCE bounds how long wrong cells are retried (empty: the suites' default).
CONVERGENCE ?=
# The none run cannot converge: retrying its wrong cells only costs time.
NONE_CONVERGENCE ?= 3s
# EXTERNAL_HOSTS=none runs without the local cluster's external hosts, as on
# kind: their cells are reported as not probed.
EXTERNAL_HOSTS ?=
TEST_OUT ?= reports/out/test
# The kube-router run keeps the suites' default convergence, as its
# committed snapshot (docs/results/kube-router) was made with it.
KUBE_ROUTER_CONVERGENCE ?=

# suites runs $(SUITES) with Ginkgo in parallel, environment $(1), reports in
# $(2), for CNI $(3) on provider $(4), with timeout $(5); then writes
# results.json and summary.md, and fails when a case failed.
define suites
status=0; \
$(1) $(GINKGO) -p --procs $(PROCS) --timeout $(5) --no-color --succinct --keep-going \
	--junit-report junit.xml --output-dir $(2) $(GINKGO_FLAGS) $(SUITES) || status=$$?; \
$(BIN)/netpolcheck report --junit $(2)/junit.xml --out $(2) --cni $(3) --provider $(4) >/dev/null || status=1; \
echo "results: $(2)/junit.xml $(2)/results.json $(2)/summary.md"; \
exit $$status
endef

.PHONY: all build test vet bench fuzz clean run run-installed run-kube-exec pins

all: build

# build also compiles the suites (go test -c) into $(BIN)/suites/SUITE/SUITE.test,
# where `netpolcheck run` finds them next to bin/netpolcheck.
COMPILED_SUITES ?= recipes conformance generated
build: pins
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...
	@for s in $(COMPILED_SUITES); do CGO_ENABLED=0 $(GO) test -c -trimpath -o $(BIN)/suites/$$s/$$s.test ./suites/$$s || exit 1; done

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: vet build
	$(GO) test -count=1 -timeout 30m $$($(GO) list $(PKGS) | grep -v '/suites/')
	$(GO) test -count=1 ./suites/framework ./suites/compiled ./suites/progress
	$(GO) test -count=1 -run '^(TestCatalogue|TestReadme|TestUpstream)' ./suites/conformance
	$(MAKE) --no-print-directory run OUT=$(TEST_OUT)/reference
	-$(MAKE) --no-print-directory run OUT=$(TEST_OUT)/none CNI=none CONVERGENCE=$(NONE_CONVERGENCE)
	-$(MAKE) --no-print-directory run OUT=$(TEST_OUT)/kube-router CNI=kube-router CONVERGENCE=$(KUBE_ROUTER_CONVERGENCE)
	$(MAKE) --no-print-directory run OUT=$(TEST_OUT)/no-externals EXTERNAL_HOSTS=none SUITES=./suites/conformance LABEL_FILTER=IPBlock
	$(MAKE) --no-print-directory run-installed OUT=$(TEST_OUT)/installed
	$(MAKE) --no-print-directory upstream-e2e UPSTREAM_OUT=$(TEST_OUT)/upstream-e2e
	$(MAKE) --no-print-directory run-kube-exec OUT=$(TEST_OUT)/kube-exec
	NETPOLCHECK_RUNS=$(abspath $(TEST_OUT)) $(GO) test -count=1 -run '^TestRealRuns$$' -v ./reports/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz:
	$(GO) test ./matrix -run '^$$' -fuzz FuzzEngineInvariants -fuzztime $(FUZZTIME)

# run is `netpolcheck run --local`: it brings the local cluster up (with CNI;
# the reference enforcer with PROFILE: correct, delay), runs the compiled
# suites of $(SUITES) in parallel (LABEL_FILTER: a Ginkgo label filter),
# writes $(OUT)/junit.xml, results.json, summary.md and report.html, and
# always takes the cluster down again, also on failure or Ctrl-C. It fails
# when a case fails or diverges.
comma := ,
empty :=
space := $(empty) $(empty)
LABEL_FILTER ?=
run: build
	$(BIN)/netpolcheck run --local --cni $(CNI) --enforcer-profile $(PROFILE) --name $(RUN_NAME) \
		--suites $(subst $(space),$(comma),$(strip $(notdir $(SUITES)))) --procs $(PROCS) --timeout 45m \
		$(if $(LABEL_FILTER),--label-filter '$(LABEL_FILTER)') $(if $(CONVERGENCE),--convergence $(CONVERGENCE)) \
		$(if $(filter none,$(EXTERNAL_HOSTS)),--no-external-hosts) --out $(OUT)

# run-installed runs netpolcheck as a user without a checkout would: the
# commands that `go install ./cmd/...` put into a temporary GOBIN outside the
# repository, with the compiled suites of `make build` next to them, run
# from another temporary directory, first `netpolcheck run --local` (the
# pinned tools modules come from the binary, package toolpins), then
# `netpolcheck run --kubeconfig` against the local cluster (probes through
# kube exec). Only the recipes suite, to stay short.
run-installed: build
	@gobin=$$(mktemp -d) && elsewhere=$$(mktemp -d) && out=$(abspath $(OUT)) || exit 1; \
	trap '$(BIN)/netpolcheck local down >/dev/null; rm -rf "$$gobin" "$$elsewhere"' EXIT INT TERM; \
	GOBIN=$$gobin CGO_ENABLED=0 $(GO) install -trimpath ./cmd/... && cp -R $(BIN)/suites "$$gobin/" || exit 1; \
	start=$$(date +%s); \
	(cd "$$elsewhere" && "$$gobin/netpolcheck" run --local --suites recipes --name $(RUN_NAME)-installed-local --out "$$out/local") || exit 1; \
	echo "run-installed: netpolcheck run --local from $$gobin took $$(( $$(date +%s) - start ))s"; \
	kubeconfig=$$($(BIN)/netpolcheck local up --nodes 2) || exit 1; \
	start=$$(date +%s); \
	(cd "$$elsewhere" && "$$gobin/netpolcheck" run --kubeconfig "$$kubeconfig" --suites recipes --name $(RUN_NAME)-installed --out "$$out/kubeconfig"); status=$$?; \
	echo "run-installed: netpolcheck run --kubeconfig from $$gobin took $$(( $$(date +%s) - start ))s"; exit $$status

# pins copies the tools modules of cluster/local into the package that
# embeds them (cluster/local/toolpins), so that an installed netpolcheck
# builds the pinned binaries without a checkout; build does it first.
pins:
	@for d in cluster/local/*bin; do n=$$(basename $$d); mkdir -p cluster/local/toolpins/pins/$$n; \
		for f in go.mod go.sum tools.go; do cp $$d/$$f cluster/local/toolpins/pins/$$n/$$f.txt || exit 1; done; done

# run-kube-exec is the main job as on any other cluster: the local cluster
# brought up, the suites run against its kubeconfig with the existing-cluster
# provider (probes through kube exec into each pod's probe container, the
# kubelet API of every node; external hosts not probed, and reported so),
# the cluster always taken down. It fails when a case fails.
run-kube-exec: build
	@mkdir -p $(OUT)
	@rm -f $(OUT)/junit.xml $(OUT)/results.json $(OUT)/summary.md
	@trap '$(BIN)/netpolcheck local down >/dev/null' EXIT INT TERM; \
	kubeconfig=$$($(BIN)/netpolcheck local up --nodes 2) || exit 1; \
	$(call suites,NETPOLCHECK_PROVIDER=existing NETPOLCHECK_KUBECONFIG=$$kubeconfig NETPOLCHECK_IMAGE=$(IMAGE) NETPOLCHECK_CNI=$(RUN_NAME)-kube-exec NETPOLCHECK_CONVERGENCE=$(CONVERGENCE),$(OUT),$(RUN_NAME)-kube-exec,existing,45m)

clean:
	rm -rf $(BIN) $(OUT)

# compare runs every suite against the local cluster once per CNI of
# COMPARE_CNIS (each a `make run CNI=...`, failures expected) into
# $(COMPARE_OUT)/<cni>, then writes their comparison to
# $(COMPARE_OUT)/comparison.md and comparison.html.
COMPARE_CNIS ?= reference none kube-router
COMPARE_OUT  ?= reports/out/compare
.PHONY: compare
compare: build
	@for cni in $(COMPARE_CNIS); do \
		$(MAKE) --no-print-directory run CNI=$$cni OUT=$(COMPARE_OUT)/$$cni || echo "compare: $$cni failed cases (expected for a CNI that does not enforce everything)"; \
	done
	$(BIN)/netpolcheck compare --markdown $(COMPARE_OUT)/comparison.md --html $(COMPARE_OUT)/comparison.html \
		$(foreach cni,$(COMPARE_CNIS),--name $(cni)=$(COMPARE_OUT)/$(cni)/results.json)

# compare-snapshots writes the comparison of the committed snapshots of
# third-party CNIs (docs/results/<cni>/results.json.gz, the HTML is not
# committed) to $(SNAPSHOTS_OUT)/comparison.md and comparison.html.
SNAPSHOTS_OUT ?= reports/out/snapshots
.PHONY: compare-snapshots
compare-snapshots: build
	mkdir -p $(SNAPSHOTS_OUT)
	$(BIN)/netpolcheck compare --markdown $(SNAPSHOTS_OUT)/comparison.md --html $(SNAPSHOTS_OUT)/comparison.html \
		$(foreach f,$(wildcard docs/results/*/results.json.gz docs/results/*/results.json),--name $(notdir $(patsubst %/,%,$(dir $(f))))=$(f))

# upstream-e2e brings the local cluster up (with CNI), runs upstream's
# NetworkPolicy e2e against it (e2e.test from k8s.io/kubernetes/test/e2e at
# the control plane's release, built once into the cache), writes
# $(UPSTREAM_OUT)/junit.xml and e2e.log, and always takes the cluster down.
UPSTREAM_OUT ?= reports/out/upstream-e2e
.PHONY: upstream-e2e
upstream-e2e: build
	@trap '$(BIN)/netpolcheck local down >/dev/null' EXIT INT TERM; \
	kubeconfig=$$($(BIN)/netpolcheck local up --nodes 2 --cni $(CNI)) || exit 1; \
	$(BIN)/netpolcheck upstream-e2e --kubeconfig "$$kubeconfig" --out $(UPSTREAM_OUT)

# ---------------------------------------------------------------------------
# kind: the image, kind clusters with a CNI, the suites on them, actionlint.
# Needs a Docker engine (docs/kind.md); everything else above does not.
#
#   make image                          # build $(IMAGE) with docker buildx
#   make kind-up KIND_CNI=calico        # cluster + image + CNI
#   make kind-run                       # suites on its CNI -> $(OUT)/kind-<CNI>/{junit.xml,results.json,summary.md}
#   make kind-down
# ---------------------------------------------------------------------------
IMAGE        ?= ghcr.io/netpolcheck/netpolcheck:dev
KIND_CNI     ?= reference
KIND_NAME    ?= netpolcheck
KIND_NODES   ?= 3
KIND_STATE   ?= $(BIN)/kind/$(KIND_NAME)
KIND_OUT     ?=
KIND_TIMEOUT ?= 90m
# Commit time of HEAD: image timestamps do not depend on when it is built.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_OUTPUT ?= type=docker,name=$(IMAGE),rewrite-timestamp=true
DOCKER_BUILD_FLAGS ?=
ACTIONLINT_VERSION ?= v1.7.12

.PHONY: image kind-up kind-down kind-run actionlint

image:
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker engine is reachable (docker info failed); building the image needs one, see docs/kind.md" >&2; exit 1; }
	@docker buildx version >/dev/null 2>&1 || { echo "make image: docker buildx is missing; install the Docker buildx plugin" >&2; exit 1; }
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) docker buildx build -f build/Dockerfile \
		--build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) --output $(IMAGE_OUTPUT) $(DOCKER_BUILD_FLAGS) .

kind-up: build
	$(BIN)/netpolcheck kind up --name $(KIND_NAME) --nodes $(KIND_NODES) --cni $(KIND_CNI) \
		--image $(IMAGE) --state-dir $(KIND_STATE)

kind-down: build
	$(BIN)/netpolcheck kind down --name $(KIND_NAME) --state-dir $(KIND_STATE)

# kind-run runs every suite against the cluster of kind-up (it does not bring
# one up or down), with the kubeconfig, CNI and image kind-up recorded in
# $(KIND_STATE) (`netpolcheck kind env`): KIND_CNI and IMAGE, when given, must
# agree with them. It writes $(KIND_OUT) (default $(OUT)/kind-<the cluster's
# CNI>)/junit.xml, results.json and summary.md, and fails when a case fails.
kind-run: build
	@exports=$$($(BIN)/netpolcheck kind env --name $(KIND_NAME) --state-dir $(KIND_STATE) \
		$(if $(filter-out file default undefined,$(origin KIND_CNI)),--cni $(KIND_CNI)) \
		$(if $(filter-out file default undefined,$(origin IMAGE)),--image $(IMAGE))) || exit 1; \
	eval "$$exports"; \
	out=$(or $(KIND_OUT),$(OUT)/kind-$$NETPOLCHECK_CNI); \
	mkdir -p "$$out" && rm -f "$$out/junit.xml" "$$out/results.json" "$$out/summary.md" || exit 1; \
	$(call suites,,"$$out",$$NETPOLCHECK_CNI,kind,$(KIND_TIMEOUT))

# actionlint checks .github/workflows with the actionlint CLI (and
# shellcheck, when on PATH); `go test ./build` runs the same checks through
# actionlint's library.
actionlint:
	$(GO) run github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION) -no-color
