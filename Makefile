# kforge's build, tests and tools. Every target installs what it needs, so a
# fresh Debian machine needs only Go and `make`.
SHELL := /bin/bash
GO ?= go
BIN := bin/kforge
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
DRY_RUN_DIR ?= $(CURDIR)/_output/dry-run

.PHONY: all deps build run test fmt-check vet unit clean

all: build

## deps: install the Debian packages kforge's tests use (idempotent)
deps:
	@bash scripts/install-deps.sh

## build: build bin/kforge
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kforge

## run: set up and run kforge's main job on this machine
run: deps build
	./$(BIN) init --dry-run --output-dir $(DRY_RUN_DIR)

## test: formatting, vet and every test, including the real-sshd integration tests
test: deps fmt-check vet unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 20m ./...

clean:
	rm -rf bin _output

-include scripts/artifacts.mk
