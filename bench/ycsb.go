package bench

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// ycsbClient runs the YCSB mix until the window closes. Each round sends
// Params.Pipeline operations in one Conn.Do; the writes of its
// read-modify-writes follow in a second Do (they depend on the reads).
func ycsbClient(ctx context.Context, c Conn, spec CellSpec, rng *rand.Rand, win *window, st *clientStats) error {
	depth := spec.Params.Pipeline
	ops := make([]Op, depth)
	rmw := make([]Op, 0, depth)
	values := make([][]byte, depth) // one buffer per pipeline slot, stamped per write
	for i := range values {
		values[i] = make([]byte, spec.Params.ValueSize)
		for j := range values[i] {
			values[i][j] = byte('a' + rng.IntN(26))
		}
	}
	var stamp uint64
	for win.running(ctx) {
		rmw = rmw[:0]
		for i := range ops {
			key := spec.Records[spec.Chooser.Next(rng)]
			switch spec.Workload.NextOp(rng) {
			case Read:
				ops[i] = Op{Key: key}
			case Update:
				stamp++
				binary.LittleEndian.PutUint64(values[i], stamp)
				ops[i] = Op{Key: key, Value: values[i], Write: true}
			case ReadModifyWrite:
				ops[i] = Op{Key: key}
				stamp++
				binary.LittleEndian.PutUint64(values[i], stamp)
				rmw = append(rmw, Op{Key: key, Value: values[i], Write: true})
			}
		}
		t0 := time.Now()
		if !win.take(t0, int64(depth)) {
			break
		}
		aborted, err := c.Do(ctx, ops)
		if err == nil && len(rmw) > 0 {
			var more int
			more, err = c.Do(ctx, rmw)
			aborted += more
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // the cell ended or was cancelled mid-request
			}
			return err
		}
		t1 := time.Now()
		if t0.Before(win.measureStart) {
			continue
		}
		done := int64(max(depth-aborted, 0))
		st.attempts += int64(depth)
		st.aborts += int64(aborted)
		st.ops += done
		st.end = t1
		if done > 0 {
			record(st.hist, t1.Sub(t0), done)
		}
		win.meter.ops.Add(done)
	}
	return nil
}
