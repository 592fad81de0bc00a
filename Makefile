# netpolcheck: the two commands of the README are `make run` (the main job)
# and `make test` (every test, as root: integration tests use network
# namespaces, nftables and a real control plane; then the main job, once
# with the reference enforcer and once with its none profile, and a check
# of both runs and of their comparison report).

GO       ?= go
BIN      ?= bin
PKGS     ?= ./...
FUZZTIME ?= 60s

# The main job: the suites against the local cluster with the reference CNI.
OUT      ?= reports/out
PROCS    ?= 4
PROFILE  ?= correct
RUN_NAME ?= $(if $(filter correct,$(PROFILE)),reference,reference-$(PROFILE))
SUITES   ?= ./suites/recipes ./suites/conformance ./suites/generated
GINKGO   ?= $(GO) run github.com/onsi/ginkgo/v2/ginkgo
GINKGO_FLAGS ?=
# CONVERGENCE bounds how long wrong cells are retried (empty: the suites' default).
CONVERGENCE ?=
# The none run cannot converge: retrying its wrong cells only costs time.
NONE_CONVERGENCE ?= 3s
TEST_OUT ?= reports/out/test

.PHONY: all build test vet bench fuzz clean run

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: vet build
	$(GO) test -count=1 -timeout 30m $$($(GO) list $(PKGS) | grep -v '/suites/')
	$(MAKE) --no-print-directory run OUT=$(TEST_OUT)/reference
	-$(MAKE) --no-print-directory run OUT=$(TEST_OUT)/none PROFILE=none CONVERGENCE=$(NONE_CONVERGENCE)
	NETPOLCHECK_RUNS=$(TEST_OUT) $(GO) test -count=1 -run '^TestRealRuns$$' -v ./reports/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz:
	$(GO) test ./matrix -run '^$$' -fuzz FuzzEngineInvariants -fuzztime $(FUZZTIME)

# run brings the local cluster up (the enforcer with PROFILE: correct, none,
# delay), runs every suite in parallel, writes $(OUT)/junit.xml,
# $(OUT)/results.json and $(OUT)/summary.md, and always takes the cluster
# down again, also on failure or Ctrl-C. It fails when a case fails.
run: build
	@mkdir -p $(OUT)
	@rm -f $(OUT)/junit.xml $(OUT)/results.json $(OUT)/summary.md
	@trap '$(BIN)/netpolcheck local down >/dev/null' EXIT INT TERM; \
	$(BIN)/netpolcheck local up --nodes 2 --enforcer-profile $(PROFILE) >/dev/null || exit 1; \
	status=0; \
	NETPOLCHECK_PROVIDER=local NETPOLCHECK_CNI=$(RUN_NAME) NETPOLCHECK_CONVERGENCE=$(CONVERGENCE) \
		$(GINKGO) -p --procs $(PROCS) --timeout 45m --no-color --succinct --keep-going \
		--junit-report junit.xml --output-dir $(OUT) $(GINKGO_FLAGS) $(SUITES) || status=$$?; \
	$(BIN)/netpolcheck report --junit $(OUT)/junit.xml --out $(OUT) --cni $(RUN_NAME) --provider local >/dev/null || status=1; \
	echo "results: $(OUT)/junit.xml $(OUT)/results.json $(OUT)/summary.md"; \
	exit $$status

clean:
	rm -rf $(BIN) $(OUT)
