# TuxTape: two commands set everything up on a fresh Debian/Ubuntu machine:
#   make demo   the main job, end to end on real data
#   make test   vet, staticcheck and the tests against SQLite and PostgreSQL
GO ?= go
BIN := bin
STATICCHECK ?= $(shell command -v staticcheck || echo $(HOME)/go/bin/staticcheck)
STATICCHECK_VERSION := v0.8.2

.PHONY: all build deps test vet lint demo bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# deps installs what the tests and the demo need (root: apt packages).
deps:
	./scripts/install-deps

vet:
	$(GO) vet ./...

lint:
	@test -x "$(STATICCHECK)" || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...

test: vet lint
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	./scripts/with-postgres $(GO) test -count=1 -timeout 60m ./...

demo: build
	./scripts/demo

bench: build
	./bench/sync.sh
	./bench/applicability.sh

fuzz:
	$(GO) test -run=^$$ -fuzz=FuzzParseJSON -fuzztime=60s ./internal/model/vulns/
	$(GO) test -run=^$$ -fuzz=FuzzParseDyad -fuzztime=60s ./internal/model/vulns/
	$(GO) test -run=^$$ -fuzz=FuzzParseAnnouncement -fuzztime=60s ./internal/model/vulns/
	$(GO) test -run=^$$ -fuzz=FuzzLoadKEV -fuzztime=60s ./internal/analysis/priority/
	$(GO) test -run=^$$ -fuzz=FuzzLoadEPSS -fuzztime=60s ./internal/analysis/priority/
	$(GO) test -run=^$$ -fuzz=FuzzParseConfig -fuzztime=60s ./internal/model/kconfig/

clean:
	rm -rf $(BIN)
