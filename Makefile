# netpolcheck: the two commands of the README are `make run` (the main job)
# and `make test` (every test, as root: integration tests use network
# namespaces, nftables and a real control plane).

GO       ?= go
BIN      ?= bin
PKGS     ?= ./...
FUZZTIME ?= 60s

.PHONY: all build test vet bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: vet
	$(GO) test -count=1 -timeout 30m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz:
	$(GO) test ./matrix -run '^$$' -fuzz FuzzEngineInvariants -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN)
