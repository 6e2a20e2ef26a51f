package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Progress prints a live line while a cell runs: workload, target,
// clients, elapsed time and the rate so far. On a terminal it rewrites
// one line four times a second; elsewhere it prints a line a second.
type Progress struct {
	w   io.Writer
	tty bool
}

// NewProgress writes progress to w (nil: nowhere).
func NewProgress(w io.Writer) *Progress {
	p := &Progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// cellMeter is what the clients of a cell update and Progress reads.
type cellMeter struct {
	label        string
	measureStart time.Time
	deadline     time.Time
	ops          atomic.Int64 // measured operations so far
}

// watch prints the meter until stop is closed; the returned func waits for
// the last line.
func (p *Progress) watch(m *cellMeter, stop <-chan struct{}) func() {
	if p == nil || p.w == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := time.Second
		if p.tty {
			every = 250 * time.Millisecond
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				if p.tty {
					fmt.Fprint(p.w, "\r\033[K")
				}
				return
			case <-tick.C:
				p.line(m)
			}
		}
	}()
	return wg.Wait
}

func (p *Progress) line(m *cellMeter) {
	now := time.Now()
	total := m.deadline.Sub(m.measureStart)
	var msg string
	if now.Before(m.measureStart) {
		msg = fmt.Sprintf("%s  warming up", m.label)
	} else {
		el := now.Sub(m.measureStart)
		msg = fmt.Sprintf("%s  %.1fs/%.1fs  %s ops/s", m.label, el.Seconds(), total.Seconds(),
			thousands(float64(m.ops.Load())/el.Seconds()))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", msg)
	} else {
		fmt.Fprintln(p.w, msg)
	}
}
