package bench

import (
	"math"
	"math/rand/v2"
	"testing"
)

// chiSquareCritical approximates the chi-square quantile for df degrees of
// freedom at upper tail 0.001 (Wilson–Hilferty; z = 3.0902).
func chiSquareCritical(df int) float64 {
	const z = 3.0902
	k := float64(df)
	return k * math.Pow(1-2/(9*k)+z*math.Sqrt(2/(9*k)), 3)
}

// chiSquare is the statistic of observed counts against probabilities.
func chiSquare(counts []int, prob func(int) float64, samples int) float64 {
	x := 0.0
	for i, c := range counts {
		e := prob(i) * float64(samples)
		x += (float64(c) - e) * (float64(c) - e) / e
	}
	return x
}

// The chooser draws the stated distribution: a chi-square test over every
// rank (seeded, so the verdict is reproducible) at the 0.001 level.
func TestChooserDistributions(t *testing.T) {
	const samples = 400_000
	for _, tc := range []struct {
		name  string
		dist  Distribution
		n     int
		theta float64
	}{
		{"uniform 1000", DistUniform, 1000, 0},
		{"zipfian 0.99 over 1000", DistZipfian, 1000, 0.99},
		{"zipfian 0.5 over 500", DistZipfian, 500, 0.5},
		{"zipfian 1.2 over 200", DistZipfian, 200, 1.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := NewKeyChooser(tc.dist, tc.n, tc.theta, 7)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			counts := make([]int, tc.n) // by popularity rank (uniform: by key)
			rankOf := make([]int, tc.n)
			for r := range rankOf {
				rankOf[r] = r
			}
			if s, ok := ch.(*ScrambledZipfian); ok {
				for r := range tc.n {
					rankOf[s.KeyOfRank(r)] = r
				}
			}
			for range samples {
				counts[rankOf[ch.Next(rng)]]++
			}
			prob := func(int) float64 { return 1 / float64(tc.n) }
			if tc.dist == DistZipfian {
				prob = NewZipfian(tc.n, tc.theta).Prob
			}
			x, crit := chiSquare(counts, prob, samples), chiSquareCritical(tc.n-1)
			if x > crit {
				t.Errorf("chi-square %.0f > %.0f (df %d, p = 0.001): not the stated distribution", x, crit, tc.n-1)
			}
		})
	}
}

// Rank-frequency of zipfian 0.99: the frequencies of ranks 1 to 100 fall on
// a line of slope -theta in log-log, and rank 0 has 1/zeta(n) of the draws.
func TestZipfianRankFrequency(t *testing.T) {
	const n, samples, theta = 10_000, 1_000_000, 0.99
	z := NewZipfian(n, theta)
	rng := rand.New(rand.NewPCG(3, 4))
	counts := make([]int, n)
	for range samples {
		counts[z.Rank(rng.Float64())]++
	}
	zeta := 0.0
	for i := 1; i <= n; i++ {
		zeta += math.Pow(float64(i), -theta)
	}
	if got, want := float64(counts[0])/samples, 1/zeta; math.Abs(got-want) > 0.005 {
		t.Errorf("rank 0 drew %.4f of the samples, want %.4f", got, want)
	}
	// Least squares of log(count) on log(rank+1) over ranks 0..99.
	var sx, sy, sxx, sxy float64
	const m = 100
	for i := range m {
		x, y := math.Log(float64(i+1)), math.Log(float64(counts[i]))
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	slope := (m*sxy - sx*sy) / (m*sxx - sx*sx)
	if math.Abs(slope+theta) > 0.03 {
		t.Errorf("log-log slope of ranks 1..100 is %.3f, want %.2f", slope, -theta)
	}
}

func TestZipfianRankBounds(t *testing.T) {
	z := NewZipfian(100, 0.99)
	for _, tc := range []struct {
		u    float64
		want int
	}{
		{0, 0},
		{z.cdf[0] / 2, 0},
		{z.cdf[0], 1}, // P(rank 0) covers [0, cdf[0])
		{z.cdf[98], 99},
		{math.Nextafter(1, 0), 99},
	} {
		if got := z.Rank(tc.u); got != tc.want {
			t.Errorf("Rank(%v) = %d, want %d", tc.u, got, tc.want)
		}
	}
}

// The scramble is a permutation: every key is some rank's.
func TestScrambleIsPermutation(t *testing.T) {
	const n = 5000
	s := NewScrambledZipfian(n, 0.99, 42)
	seen := make([]bool, n)
	for r := range n {
		k := s.KeyOfRank(r)
		if k < 0 || k >= n || seen[k] {
			t.Fatalf("rank %d maps to key %d twice or out of range", r, k)
		}
		seen[k] = true
	}
	if s.KeyOfRank(0) == 0 && s.KeyOfRank(1) == 1 {
		t.Error("the hottest keys are not scattered")
	}
}

// The chi-square check has power: samples of theta 0.99 fail against the
// probabilities of theta 0.9, and uniform samples against zipfian ones.
func TestChiSquareRejectsWrongDistribution(t *testing.T) {
	const n, samples = 1000, 400_000
	rng := rand.New(rand.NewPCG(1, 2))
	z := NewZipfian(n, 0.99)
	zipf, unif := make([]int, n), make([]int, n)
	for range samples {
		zipf[z.Rank(rng.Float64())]++
		unif[rng.IntN(n)]++
	}
	crit := chiSquareCritical(n - 1)
	if x := chiSquare(zipf, NewZipfian(n, 0.9).Prob, samples); x <= crit {
		t.Errorf("zipfian 0.99 passed as 0.9 (chi-square %.0f <= %.0f)", x, crit)
	}
	if x := chiSquare(unif, z.Prob, samples); x <= crit {
		t.Errorf("uniform passed as zipfian (chi-square %.0f <= %.0f)", x, crit)
	}
}
