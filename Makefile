# bpfdb: `make` builds bin/bpfdb and the examples (bin/flowcount); `make run` serves; `make test` runs every
# test (as root: the tests load real BPF programs).
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build examples generate check-generated deps test run clean

all: build examples

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/bpfdb ./cmd/bpfdb

# The example applications of examples/ (each has a README).
examples:
	$(GO) build -o bin/flowcount ./examples/flowcount

# Regenerate the bpf2go output (engine/chain_bpfel.{go,o}, the API test
# programs engine/internal/apitest/apitest_bpfel.{go,o}, the XDP memcached
# front end mcxdp/mcxdp_bpfel.{go,o}, and the examples' programs) from their C.
# Needs clang and libbpf-dev (make deps).
generate:
	$(GO) generate ./engine ./engine/internal/apitest ./mcxdp ./examples/flowcount

# Fails when the committed bpf2go output does not match the C sources.
check-generated: generate
	git diff --exit-code -- engine/chain_bpfel.go engine/chain_bpfel.o
	git diff --exit-code -- engine/internal/apitest/apitest_bpfel.go engine/internal/apitest/apitest_bpfel.o
	git diff --exit-code -- mcxdp/mcxdp_bpfel.go mcxdp/mcxdp_bpfel.o
	git diff --exit-code -- examples/flowcount/flowcount_bpfel.go examples/flowcount/flowcount_bpfel.o

# Debian packages needed to regenerate the BPF objects (not to build).
deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev linux-libc-dev

# -timeout: the engine's package runs about 8 minutes under -race on
# two CPUs, close to go test's default bound of 10.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

run: build
	./bin/bpfdb serve --dir ./data

clean:
	rm -rf bin

# The benchmark suite (bench/, `bpfdb bench --suite standard`), as root, in
# about 5 minutes: YCSB A, B, C, F and transfers on bpfdb embedded and
# serve, redis-server, pebble and PostgreSQL. Writes docs/bench/
# (results.json, results.md, SVG charts) and regenerates the section of
# docs/BENCHMARKS.md between <!-- bench:begin --> and <!-- bench:end -->.
.PHONY: bench
bench: build
	./bin/bpfdb bench --suite standard --out docs/bench --docs docs/BENCHMARKS.md

# What the benchmark suite compares against (Debian packages); without
# them `bpfdb bench` skips those targets and says so.
.PHONY: bench-deps
bench-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools postgresql
