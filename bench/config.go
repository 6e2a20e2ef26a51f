package bench

import (
	"fmt"
	"time"
)

// Durability says when a write is acknowledged; each target maps it to its
// own setting (see the target's doc comment).
type Durability string

const (
	// Sync acknowledges a write once it is on disk.
	Sync Durability = "sync"
	// Async acknowledges a write before it is on disk.
	Async Durability = "async"
)

// ParseDurability parses "sync" or "async".
func ParseDurability(s string) (Durability, error) {
	switch Durability(s) {
	case Sync, Async:
		return Durability(s), nil
	}
	return "", fmt.Errorf("durability must be sync or async, not %q", s)
}

// Distribution names how keys are chosen.
type Distribution string

const (
	// DistZipfian chooses key ranks with P(rank i) proportional to 1/(i+1)^theta,
	// the ranks scattered over the key space by a fixed permutation.
	DistZipfian Distribution = "zipfian"
	// DistUniform chooses every key with the same probability.
	DistUniform Distribution = "uniform"
)

// ParseDistribution parses "zipfian" or "uniform".
func ParseDistribution(s string) (Distribution, error) {
	switch Distribution(s) {
	case DistZipfian, DistUniform:
		return Distribution(s), nil
	}
	return "", fmt.Errorf("distribution must be zipfian or uniform, not %q", s)
}

// Params are the settings shared by the cells of a plan.
type Params struct {
	// Keys is the number of YCSB records, and of transfer accounts.
	Keys int `json:"keys"`
	// ValueSize is the size of a YCSB value in bytes.
	ValueSize int `json:"value_size"`
	// Distribution and Theta choose keys (Theta only for DistZipfian).
	Distribution Distribution `json:"distribution"`
	Theta        float64      `json:"theta"`
	// Warmup runs the clients before the measured window.
	Warmup time.Duration `json:"warmup_ns"`
	// Duration bounds the measured window of a cell.
	Duration time.Duration `json:"duration_ns"`
	// Ops, if positive, ends a cell once this many operations (YCSB) or
	// committed transfers were measured, unless Duration ends it first.
	Ops int64 `json:"ops"`
	// Pipeline is how many YCSB operations a client sends per round trip.
	Pipeline int `json:"pipeline"`
	// Seed makes key choices and operation mixes reproducible.
	Seed uint64 `json:"seed"`
}

// Limits on Params: they keep every allocation and loop of a plan bounded.
const (
	// MaxKeys bounds Params.Keys (the zipfian table takes 12 bytes a key).
	MaxKeys = 10_000_000
	// MaxClients bounds the clients of a cell.
	MaxClients = 1024
	// MaxPipeline bounds Params.Pipeline.
	MaxPipeline = 1024
	// MaxDuration bounds Params.Warmup and Params.Duration.
	MaxDuration = time.Hour
	// InitialBalance is every account's balance after loading.
	InitialBalance = 1000
	// MaxTransferAmount bounds the amount one transfer moves (1 to it).
	MaxTransferAmount = 100
	// MaxAttempts bounds the attempts of one transfer; past it the
	// transfer is counted as given up.
	MaxAttempts = 10_000
)

// DefaultParams are the settings of `bpfdb bench` without flags.
func DefaultParams() Params {
	return Params{
		Keys:         100_000,
		ValueSize:    100,
		Distribution: DistZipfian,
		Theta:        0.99,
		Warmup:       500 * time.Millisecond,
		Duration:     3 * time.Second,
		Pipeline:     1,
		Seed:         1,
	}
}

// Validate reports the first setting out of range.
func (p Params) Validate() error {
	switch {
	case p.Keys < 2 || p.Keys > MaxKeys:
		return fmt.Errorf("keys must be 2 to %d, not %d", MaxKeys, p.Keys)
	case p.ValueSize < 8 || p.ValueSize > 1<<20:
		return fmt.Errorf("value size must be 8 bytes to 1 MiB, not %d", p.ValueSize)
	case p.Distribution != DistZipfian && p.Distribution != DistUniform:
		return fmt.Errorf("unknown distribution %q", p.Distribution)
	case p.Distribution == DistZipfian && (p.Theta <= 0 || p.Theta >= 10):
		return fmt.Errorf("zipfian theta must be in (0, 10), not %v", p.Theta)
	case p.Warmup < 0 || p.Warmup > MaxDuration:
		return fmt.Errorf("warm-up must be 0 to %v, not %v", MaxDuration, p.Warmup)
	case p.Duration <= 0 || p.Duration > MaxDuration:
		return fmt.Errorf("duration must be positive and at most %v, not %v", MaxDuration, p.Duration)
	case p.Ops < 0:
		return fmt.Errorf("ops must not be negative")
	case p.Pipeline < 1 || p.Pipeline > MaxPipeline:
		return fmt.Errorf("pipeline depth must be 1 to %d, not %d", MaxPipeline, p.Pipeline)
	}
	return nil
}
