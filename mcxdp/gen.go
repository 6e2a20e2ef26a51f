package mcxdp

// The XDP program (bpf/mcxdp/mcxdp.c), compiled by bpf2go against the
// store's API header. The generated mcxdp_bpfel.{go,o} are committed, as
// the engine's are; `make generate` rebuilds them and CI checks them.
//go:generate go tool bpf2go -tags linux -target bpfel -no-global-types -type mcxdp_stat -type mcxdp_limit mcxdp ../bpf/mcxdp/mcxdp.c -- -I../bpf/include -I../bpf -I/usr/include/x86_64-linux-gnu -mcpu=v3 -Wall -Werror
