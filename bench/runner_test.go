package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeTargets builds memory targets named like the real ones; "serve" is
// skipped as if not root, and "postgres" fails to start.
func fakeTargets(name string, env TargetEnv) (Target, error) {
	switch name {
	case "serve":
		return &memTarget{name: name, skip: skipf("not root")}, nil
	case "postgres":
		return &failingStart{memTarget{name: name}}, nil
	}
	return &memTarget{name: name}, nil
}

type failingStart struct{ memTarget }

func (f *failingStart) Start(ctx context.Context, d Durability) error { return errors.New("no disk") }

// A plan runs every cell, grouped by target, with skipped and failed
// targets reported per cell; YCSB cells count operations at every
// pipeline depth.
func TestRunnerPlan(t *testing.T) {
	for _, pipeline := range []int{1, 4} {
		t.Run(fmt.Sprintf("pipeline=%d", pipeline), func(t *testing.T) {
			p := testParams(200)
			p.Pipeline, p.Warmup, p.Duration = pipeline, 10*time.Millisecond, 60*time.Millisecond
			plan := CrossPlan(p, []Workload{WorkloadA, WorkloadF, WorkloadTransfer}, []string{"embedded", "serve", "postgres"}, []int{1, 3}, []Durability{Sync})
			r := &Runner{NewTarget: fakeTargets}
			results, err := r.Run(context.Background(), plan)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != len(plan.Cells) {
				t.Fatalf("%d results for %d cells", len(results), len(plan.Cells))
			}
			for _, res := range results {
				switch res.Target {
				case "serve":
					if res.Skipped != "not root" {
						t.Errorf("%s: skipped %q, want \"not root\"", res.Summary(), res.Skipped)
					}
				case "postgres":
					if res.Error == "" || res.Skipped != "" {
						t.Errorf("%s: want a start failure", res.Summary())
					}
				default:
					if res.Error != "" || res.Ops == 0 || res.Throughput <= 0 || res.Elapsed <= 0 {
						t.Errorf("%s: want a measured cell: %+v", res.Summary(), res)
					}
					if res.Workload != "transfer" && (res.Ops%int64(pipeline) != 0 || res.Pipeline != pipeline) {
						t.Errorf("%s: %d ops at pipeline %d", res.Summary(), res.Ops, pipeline)
					}
				}
			}
		})
	}
}

// Params.Ops ends a cell after that many operations.
func TestRunCellOpsBudget(t *testing.T) {
	p := testParams(100)
	p.Warmup, p.Ops, p.Pipeline = 0, 1000, 10
	p.Duration = MaxDuration
	plan := CrossPlan(p, []Workload{WorkloadC}, []string{"pebble"}, []int{4}, []Durability{Async})
	results, err := (&Runner{NewTarget: fakeTargets}).Run(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	if got := results[0].Ops; got < 1000 || got > 1000+4*10 {
		t.Errorf("ran %d ops for a budget of 1000", got)
	}
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Params)
		ok   bool
	}{
		{"defaults", func(*Params) {}, true},
		{"one key", func(p *Params) { p.Keys = 1 }, false},
		{"no duration", func(p *Params) { p.Duration = 0 }, false},
		{"pipeline 0", func(p *Params) { p.Pipeline = 0 }, false},
		{"theta 0", func(p *Params) { p.Theta = 0 }, false},
		{"uniform ignores theta", func(p *Params) { p.Distribution, p.Theta = DistUniform, 0 }, true},
	} {
		p := DefaultParams()
		tc.edit(&p)
		if err := p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}
