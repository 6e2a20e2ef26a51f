// Package bench is bpfdb's benchmark harness: YCSB workloads A, B, C and F
// and a SmallBank-like transfer workload, run against bpfdb (embedded in
// process, and `bpfdb serve` over RESP) and against the alternatives a user
// would consider (redis-server, pebble used directly, PostgreSQL).
//
// A plan is a list of cells, one per workload × target × client count ×
// durability. Runner.Run starts each target once per durability, loads its
// keys and accounts, runs every cell of that group against it (a warm-up,
// then a measured window), and stops it before the next target starts.
//
// Invariants the harness keeps:
//
//   - Every loop is bounded in time (a deadline per cell, a timeout per
//     load and per start-up) and, where it counts operations, in count.
//   - Servers are started by the harness on 127.0.0.1 ports it picked, in
//     temporary directories it removes, and are stopped by it (or killed
//     with the harness through Pdeathsig). Nothing else is contacted.
//   - A transfer cell ends with a check that the sum of all balances is the
//     sum that was loaded; a cell that breaks it is reported as failed.
//   - Latencies are recorded per operation in HDR histograms (one per
//     client, merged). With a pipeline of depth d, each of the d operations
//     of a round trip is recorded with the round trip's latency. A transfer's
//     latency spans all of its attempts, retries and back-off included.
package bench
