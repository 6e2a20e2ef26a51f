package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkExpiry1M: 1,000,000 keys of 100 bytes, of which 10% carry
// deadlines spread over the next 10 s. Reports how long after the last
// deadline the last of them was deleted (lag-ms), and the p99 of single
// GETs of the other keys while they expire against the same GETs after
// (get-p99-expiring-us, get-p99-idle-us). One pass; run with -benchtime 1x.
func BenchmarkExpiry1M(b *testing.B) {
	const n, expiring = 1_000_000, 100_000
	const spread = 10 * time.Second
	e := openTest(b, Options{MaxKeys: n + 1024, VacuumInterval: -1})
	value := make([]byte, 100)
	start := e.Now() + 2000 // after the load
	ops := make([]Op, 0, MaxBatch)
	var last int64
	for i := 0; i < n; i++ {
		op := Op{Kind: OpSet, Key: fmt.Appendf(nil, "key%d", i), Value: value}
		if i%10 == 0 {
			op.ExpireAt = start + int64(i/10)*spread.Milliseconds()/expiring
			last = max(last, op.ExpireAt)
		}
		if ops = append(ops, op); len(ops) == MaxBatch || i == n-1 {
			if err := e.Batch(ops); err != nil {
				b.Fatal(err)
			}
			for _, op := range ops {
				if op.Err != nil {
					b.Fatal(op.Err)
				}
			}
			ops = ops[:0]
		}
	}
	if e.Now() > start {
		b.Fatalf("loading took past the first deadline; raise the start")
	}
	b.ResetTimer()
	getP99 := func(until func() bool) time.Duration {
		var lat []time.Duration
		for !until() {
			k := fmt.Appendf(nil, "key%d", rand.N(n/10)*10+1+rand.N(9)) // a key without a deadline
			t0 := time.Now()
			if _, err := e.Get(k); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			time.Sleep(100 * time.Microsecond)
		}
		slices.Sort(lat)
		if len(lat) == 0 {
			return 0
		}
		return lat[len(lat)*99/100]
	}
	time.Sleep(time.Until(time.UnixMilli(start)))
	var doneAt int64
	expiringP99 := getP99(func() bool {
		st, _ := e.Stats()
		if st.ExpiredDeleted >= expiring {
			doneAt = e.Now()
			return true
		}
		if e.Now() > last+30_000 {
			b.Fatalf("%d of %d deleted 30 s after the last deadline", st.ExpiredDeleted, expiring)
		}
		return false
	})
	idleUntil := time.Now().Add(3 * time.Second)
	idleP99 := getP99(func() bool { return time.Now().After(idleUntil) })
	b.StopTimer()
	b.ReportMetric(float64(doneAt-last), "lag-ms")
	b.ReportMetric(float64(expiringP99.Microseconds()), "get-p99-expiring-us")
	b.ReportMetric(float64(idleP99.Microseconds()), "get-p99-idle-us")
}
