package bench

import (
	"testing"
	"time"
)

func TestOtherCPUShare(t *testing.T) {
	at := time.Unix(0, 0)
	for _, tc := range []struct {
		name     string
		from, to CPUSample
		want     float64
	}{
		{"half of two CPUs busy, all ours", CPUSample{At: at, ok: true},
			CPUSample{At: at.Add(time.Second), MachineBusy: time.Second, Own: time.Second, ok: true}, 0},
		{"one of two CPUs busy with others", CPUSample{At: at, MachineBusy: time.Second, Own: time.Second, ok: true},
			CPUSample{At: at.Add(2 * time.Second), MachineBusy: 4 * time.Second, Own: 2 * time.Second, ok: true}, 0.5},
		{"unreadable", CPUSample{At: at}, CPUSample{At: at.Add(time.Second), ok: true}, -1},
	} {
		if got := OtherCPUShare(tc.from, tc.to, 2); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if s := SampleCPU(); !s.ok || s.Own <= 0 {
		t.Errorf("SampleCPU() = %+v", s)
	}
}
