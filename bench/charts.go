package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// chart is one SVG of a series: a plot and its legend, drawn beside it.
type chart struct {
	file, alt string
	build     func() (*plot.Plot, plot.Legend, error)
}

// chartsOf lists a series' charts: throughput against clients, then the
// latency percentiles at each client count; only those with a measured
// result to draw (a log axis cannot be empty).
func chartsOf(s series) []chart {
	var out []chart
	measuredAt := func(clients int) bool {
		for _, r := range s.results {
			if measured(r) && (clients == 0 || r.Clients == clients) {
				return true
			}
		}
		return false
	}
	if measuredAt(0) {
		out = append(out, chart{
			file:  s.key() + "-throughput.svg",
			alt:   s.title() + ": throughput",
			build: func() (*plot.Plot, plot.Legend, error) { return throughputPlot(s) },
		})
	}
	for _, c := range s.clients() {
		if !measuredAt(c) {
			continue
		}
		out = append(out, chart{
			file:  fmt.Sprintf("%s-latency-%d.svg", s.key(), c),
			alt:   fmt.Sprintf("%s: latency at %s", s.title(), clientsLabel(c)),
			build: func() (*plot.Plot, plot.Legend, error) { return latencyPlot(s, c) },
		})
	}
	return out
}

// WriteCharts writes the SVG charts of every series into dir and returns
// their file names.
func WriteCharts(results []Result, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, s := range groupSeries(results) {
		for _, c := range chartsOf(s) {
			p, legend, err := c.build()
			if err != nil {
				return files, fmt.Errorf("%s: %w", c.file, err)
			}
			if err := saveSVG(p, legend, filepath.Join(dir, c.file)); err != nil {
				return files, err
			}
			files = append(files, c.file)
		}
	}
	return files, nil
}

// Chart geometry: the legend gets a column right of the plot, so that
// it never hides a line.
const (
	chartWidth   = 6.5 * vg.Inch
	chartHeight  = 3.5 * vg.Inch
	legendColumn = 1.75 * vg.Inch
)

// saveSVG draws p with its legend on an SVG canvas (fonts not embedded).
func saveSVG(p *plot.Plot, legend plot.Legend, path string) error {
	c := vgsvg.New(chartWidth, chartHeight)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendColumn, 0, 0))
	legend.Top, legend.Left = true, true
	legend.Draw(draw.Crop(dc, chartWidth-legendColumn+6, 0, 0, -0.3*vg.Inch))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// addLine adds a target's line with points in the target's style (by its
// place in TargetNames, so a target looks the same in every chart).
func addLine(p *plot.Plot, legend *plot.Legend, name string, xys plotter.XYs) error {
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	i := slices.Index(TargetNames, name)
	if i < 0 {
		i = len(TargetNames)
	}
	l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
	pts.Shape = plotutil.Shape(i)
	p.Add(l, pts)
	legend.Add(DisplayName(name), l, pts)
	return nil
}

func throughputPlot(s series) (*plot.Plot, plot.Legend, error) {
	p, legend := plot.New(), plot.NewLegend()
	p.Title.Text = s.shortTitle() + ": throughput"
	p.X.Label.Text = "clients"
	p.Y.Label.Text = "ops/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	var xt []plot.Tick
	for _, c := range s.clients() {
		xt = append(xt, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = humanLogTicks{}
	for _, t := range s.targets() {
		var xys plotter.XYs
		for _, c := range s.clients() {
			if r, ok := s.get(t, c); ok && measured(r) {
				xys = append(xys, plotter.XY{X: float64(c), Y: r.Throughput})
			}
		}
		if len(xys) == 0 {
			continue
		}
		if err := addLine(p, &legend, t, xys); err != nil {
			return nil, legend, err
		}
	}
	widenLogAxis(&p.X)
	widenLogAxis(&p.Y)
	return p, legend, nil
}

// widenLogAxis gives a log axis whose data is one value v the range v/2
// to 2v: plot would widen it to v-1..v+1, which reaches 0 or below for
// v <= 1 (one client), where a log scale panics.
func widenLogAxis(a *plot.Axis) {
	if a.Min == a.Max && a.Min > 0 {
		a.Min, a.Max = a.Min/2, a.Max*2
	}
}

func latencyPlot(s series, clients int) (*plot.Plot, plot.Legend, error) {
	p, legend := plot.New(), plot.NewLegend()
	p.Title.Text = fmt.Sprintf("%s, %s: latency", s.shortTitle(), clientsLabel(clients))
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (µs)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = humanLogTicks{}
	var xt []plot.Tick
	for i, pc := range Percentiles {
		xt = append(xt, plot.Tick{Value: float64(i), Label: pc.Label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.X.Min, p.X.Max = -0.2, float64(len(Percentiles))-0.8
	for _, t := range s.targets() {
		r, ok := s.get(t, clients)
		if !ok || !measured(r) {
			continue
		}
		var xys plotter.XYs
		for j, pc := range Percentiles {
			if v := pc.Of(r.Latency); v > 0 {
				xys = append(xys, plotter.XY{X: float64(j), Y: v})
			}
		}
		if err := addLine(p, &legend, t, xys); err != nil {
			return nil, legend, err
		}
	}
	widenLogAxis(&p.Y)
	return p, legend, nil
}

// humanLogTicks marks 1, 2 and 5 times each power of ten (only the powers
// themselves over more than three decades), labelled "2k", "50k", "1M";
// other integers times a power of ten get unlabelled ticks.
type humanLogTicks struct{}

// Ticks returns the ticks in [min, max].
func (humanLogTicks) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || max <= min {
		return nil
	}
	wide := math.Log10(max/min) > 3
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		pow := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * pow
			if v < min || v > max {
				continue
			}
			label := ""
			if m == 1 || (!wide && (m == 2 || m == 5)) {
				label = humanNumber(v)
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: label})
		}
	}
	return ticks
}

// humanNumber writes 2000 as "2k", 1e6 as "1M", 0.5 as "0.5".
func humanNumber(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

// clientsLabel is "1 client" or "n clients".
func clientsLabel(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}
