package main

// The XDP program (bpf/flowcount.c), compiled by bpf2go against bpfdb's API
// header. The generated flowcount_bpfel.{go,o} are committed, as the
// engine's are, so building needs no clang; `make generate` rebuilds them.
//go:generate go tool bpf2go -tags linux -target bpfel -no-global-types flowcount bpf/flowcount.c -- -I../../bpf/include -I../../bpf -I/usr/include/x86_64-linux-gnu -mcpu=v3 -Wall -Werror
