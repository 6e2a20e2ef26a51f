package engine

// The chain's programs and maps, compiled from bpf/ by bpf2go. The generated
// chain_bpfel.go and chain_bpfel.o are committed so that building needs no
// clang; `make generate` rebuilds them and CI checks they match the C.
//go:generate go tool bpf2go -tags linux -target bpfel -no-global-types -type bpfdb_op -type bpfdb_req -type bpfdb_run -type bpfdb_control -type bpfdb_record -type bpfdb_version -type bpfdb_key -type bpfdb_txn -type bpfdb_txn_entry -type bpfdb_snapshots -type bpfdb_limit -type bpfdb_status -type bpfdb_op_kind -type bpfdb_mode -type bpfdb_stat -type bpfdb_stage -type bpfdb_begin_flag -type bpfdb_full_detail -type bpfdb_len_flag -type bpfdb_value_type -type bpfdb_wal_hdr -type bpfdb_wal_write -type bpfdb_wal_kind -type bpfdb_layout chain ../bpf/chain.c -- -I../bpf/include -I../bpf -I/usr/include/x86_64-linux-gnu -mcpu=v3 -Wall -Werror
