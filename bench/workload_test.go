package bench

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Each YCSB mix draws its stated read / update / read-modify-write
// fractions, within four standard deviations.
func TestWorkloadMixes(t *testing.T) {
	const draws = 200_000
	for _, tc := range []struct {
		w                 Workload
		read, update, rmw float64
	}{
		{WorkloadA, 0.5, 0.5, 0},
		{WorkloadB, 0.95, 0.05, 0},
		{WorkloadC, 1, 0, 0},
		{WorkloadF, 0.5, 0, 0.5},
	} {
		t.Run(tc.w.Label(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			var n [3]int
			for range draws {
				n[tc.w.NextOp(rng)]++
			}
			for kind, want := range []float64{tc.read, tc.update, tc.rmw} {
				got := float64(n[kind]) / draws
				tol := 4 * math.Sqrt(want*(1-want)/draws)
				if math.Abs(got-want) > tol+1e-12 {
					t.Errorf("%v: %.4f of the operations, want %.2f ± %.4f", OpKind(kind), got, want, tol)
				}
			}
		})
	}
}

func TestParseWorkloads(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"a,c,transfer", []string{"ycsb-a", "ycsb-c", "transfer"}, false},
		{"YCSB-B, f", []string{"ycsb-b", "ycsb-f"}, false},
		{"d", nil, true},
	} {
		ws, err := ParseWorkloads(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseWorkloads(%q) error %v", tc.in, err)
			continue
		}
		for i, w := range ws {
			if w.Label() != tc.want[i] {
				t.Errorf("ParseWorkloads(%q)[%d] = %s, want %s", tc.in, i, w.Label(), tc.want[i])
			}
		}
	}
}
