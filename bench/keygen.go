package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// KeyChooser picks key indexes in [0, N()). It is read-only once built, so
// clients share one; each client brings its own *rand.Rand.
type KeyChooser interface {
	// Next returns the index of the next key.
	Next(r *rand.Rand) int
	// N is the number of keys.
	N() int
}

// NewKeyChooser returns the chooser for a distribution over n keys. seed
// fixes the permutation that scatters zipfian ranks over the keys.
func NewKeyChooser(d Distribution, n int, theta float64, seed uint64) (KeyChooser, error) {
	switch d {
	case DistUniform:
		return UniformChooser{Keys: n}, nil
	case DistZipfian:
		return NewScrambledZipfian(n, theta, seed), nil
	}
	return nil, fmt.Errorf("unknown distribution %q", d)
}

// UniformChooser picks each of Keys keys with probability 1/Keys.
type UniformChooser struct{ Keys int }

// Next returns a uniformly chosen index.
func (u UniformChooser) Next(r *rand.Rand) int { return r.IntN(u.Keys) }

// N is the number of keys.
func (u UniformChooser) N() int { return u.Keys }

// Zipfian draws ranks 0..n-1 with P(rank i) = (1/(i+1)^theta) / zeta(n, theta):
// rank 0 is the most popular. It samples exactly, by inverting the
// cumulative distribution (a binary search in a table of n float64s),
// rather than with YCSB's approximation (Gray et al.), so that the
// distribution it produces is the stated one and tests can check it.
type Zipfian struct {
	cdf []float64 // cdf[i] = P(rank <= i); cdf[n-1] == 1
}

// NewZipfian builds the table for n ranks; O(n) time and 8n bytes.
func NewZipfian(n int, theta float64) *Zipfian {
	cdf := make([]float64, n)
	sum := 0.0
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), theta)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	cdf[n-1] = 1
	return &Zipfian{cdf: cdf}
}

// Rank returns the rank for a uniform u in [0, 1).
func (z *Zipfian) Rank(u float64) int {
	i := sort.SearchFloat64s(z.cdf, u)
	if i < len(z.cdf) && z.cdf[i] == u {
		i++ // cdf[i] == u belongs to rank i+1: P(rank <= i) counts u < cdf[i]
	}
	return min(i, len(z.cdf)-1)
}

// Prob returns the probability of rank i.
func (z *Zipfian) Prob(i int) float64 {
	if i == 0 {
		return z.cdf[0]
	}
	return z.cdf[i] - z.cdf[i-1]
}

// N is the number of ranks.
func (z *Zipfian) N() int { return len(z.cdf) }

// ScrambledZipfian picks keys with zipfian popularity, the popular ones
// scattered over the key space by a fixed pseudo-random permutation (as
// YCSB's ScrambledZipfianGenerator does with a hash, but without
// collisions), so hot keys are not neighbours.
type ScrambledZipfian struct {
	z    *Zipfian
	perm []int32 // perm[rank] = key index
}

// NewScrambledZipfian builds the chooser for n keys.
func NewScrambledZipfian(n int, theta float64, seed uint64) *ScrambledZipfian {
	perm := make([]int32, n)
	for i, p := range rand.New(rand.NewPCG(seed, 0x5c4a3b1e)).Perm(n) {
		perm[i] = int32(p)
	}
	return &ScrambledZipfian{z: NewZipfian(n, theta), perm: perm}
}

// Next returns the index of a key chosen with zipfian popularity.
func (s *ScrambledZipfian) Next(r *rand.Rand) int { return int(s.perm[s.z.Rank(r.Float64())]) }

// N is the number of keys.
func (s *ScrambledZipfian) N() int { return s.z.N() }

// KeyOfRank returns the key index of popularity rank i (0: the hottest).
func (s *ScrambledZipfian) KeyOfRank(i int) int { return int(s.perm[i]) }
