# TuxTape: two commands set everything up on a fresh Debian/Ubuntu machine:
#   make demo   the main job, end to end on real data
#   make test   vet, staticcheck and the tests against SQLite and PostgreSQL
GO ?= go
BIN := bin
STATICCHECK ?= $(shell command -v staticcheck || echo $(HOME)/go/bin/staticcheck)
STATICCHECK_VERSION := v0.8.2
# The protobuf generators, pinned; protoc is Debian's protobuf-compiler.
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1

.PHONY: all build deps test vet lint demo bench fuzz clean proto

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

# test first runs the fast tests under the race detector (it needs cgo):
# -short and TUXTAPE_SKIP_VM=1 leave out the kernel builds and VM boots,
# far too slow race-instrumented; the rest takes a few minutes on 2 cores,
# mostly compiling. Then every test runs as it is.
test: vet lint
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	./scripts/with-postgres env CGO_ENABLED=1 TUXTAPE_SKIP_VM=1 $(GO) test -race -short -count=1 -timeout 20m ./...
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
	$(GO) test -run=^$$ -fuzz=FuzzParseRecord -fuzztime=60s ./internal/model/kmsg/
	$(GO) test -run=^$$ -fuzz=FuzzParseText -fuzztime=60s ./internal/model/kmsg/
	$(GO) test -run=^$$ -fuzz=FuzzParseSecret -fuzztime=60s ./internal/model/authz/
	$(GO) test -run=^$$ -fuzz=FuzzCheckPatchPaths -fuzztime=60s ./internal/build/ktree/
	$(GO) test -run=^$$ -fuzz=FuzzOpen -fuzztime=60s ./internal/build/elfobj/
	$(GO) test -run=^$$ -fuzz=FuzzNamesIn -fuzztime=60s ./internal/build/klp/
	$(GO) test -run=^$$ -fuzz=FuzzSafe -fuzztime=60s ./internal/frontend/termtext/
	$(GO) test -run=^$$ -fuzz=FuzzParseMeta -fuzztime=60s ./internal/archive/feed/
	$(GO) test -run=^$$ -fuzz=FuzzReadModinfo -fuzztime=60s ./internal/archive/repo/
	$(GO) test -run=^$$ -fuzz=FuzzParseDiff -fuzztime=60s ./internal/analysis/risk/
	$(GO) test -run=^$$ -fuzz=FuzzParseCompilerErrors -fuzztime=60s ./internal/build/fixsource/
	$(GO) test -run=^$$ -fuzz=FuzzDecompress -fuzztime=60s ./internal/build/kmodfile/
	$(GO) test -run=^$$ -fuzz=FuzzBlockEnd -fuzztime=60s ./internal/build/elfobj/

# proto regenerates the committed gRPC code from proto/ (needs Debian's
# protobuf-compiler and libprotobuf-dev for protoc and its well-known types).
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I proto --go_out=. --go_opt=module=github.com/tuxtape/tuxtape \
		--go-grpc_out=. --go-grpc_opt=module=github.com/tuxtape/tuxtape proto/tuxtape/v1/*.proto

clean:
	rm -rf $(BIN)
