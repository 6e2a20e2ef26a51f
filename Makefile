# bpfdb: `make` builds bin/bpfdb; `make run` serves; `make test` runs every
# test (as root: the tests load real BPF programs).
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build generate check-generated deps test run clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/bpfdb ./cmd/bpfdb

# Regenerate the bpf2go output (engine/chain_bpfel.{go,o}) from bpf/*.c.
# Needs clang and libbpf-dev (make deps).
generate:
	$(GO) generate ./engine

# Fails when the committed bpf2go output does not match the C sources.
check-generated: generate
	git diff --exit-code -- engine/chain_bpfel.go engine/chain_bpfel.o

# Debian packages needed to regenerate the BPF objects (not to build).
deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev linux-libc-dev

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

run: build
	./bin/bpfdb serve --dir ./data

clean:
	rm -rf bin
