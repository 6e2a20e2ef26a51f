// Package apitest holds BPF programs that use the store through
// bpf/include/bpfdb_api.h (bpf/test/apitest.c), for the engine's tests:
// they are loaded against an open engine's maps and run with BPF_PROG_RUN.
// The generated apitest_bpfel.{go,o} are committed, as the chain's are.
package apitest

//go:generate go tool bpf2go -tags linux -target bpfel -type api_slot -type api_packet -type api_step_kind Apitest ../../../bpf/test/apitest.c -- -I../../../bpf/include -I../../../bpf -I/usr/include/x86_64-linux-gnu -mcpu=v3 -Wall -Werror
