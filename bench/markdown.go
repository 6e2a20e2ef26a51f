package bench

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// notes numbers the reasons for skipped and failed cells of a document,
// so table cells stay short ("skipped¹").
type notes struct{ reasons []string }

var superscripts = []string{"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"}

// mark returns the cell text for a result without numbers.
func (n *notes) mark(r Result) string {
	word, reason := "skipped", r.Skipped
	if r.Skipped == "" {
		word, reason = "failed", r.Error
		if reason == "" {
			reason = "no operation completed"
		}
	}
	reason = fmt.Sprintf("%s %s: %s", DisplayName(r.Target), word, reason)
	i := len(n.reasons)
	for j, s := range n.reasons {
		if s == reason {
			i = j
		}
	}
	if i == len(n.reasons) {
		n.reasons = append(n.reasons, reason)
	}
	sup := ""
	for _, d := range fmt.Sprint(i + 1) {
		sup += superscripts[d-'0']
	}
	return word + sup
}

// write appends the numbered reasons.
func (n *notes) write(b *strings.Builder) {
	if len(n.reasons) == 0 {
		return
	}
	b.WriteString("\n")
	for i, r := range n.reasons {
		fmt.Fprintf(b, "%d. %s\n", i+1, r)
	}
}

// clientsHeader is a table header row: the first column, then one per client count.
func clientsHeader(b *strings.Builder, first string, clients []int) {
	b.WriteString("| " + first + " |")
	for _, c := range clients {
		b.WriteString(" " + clientsLabel(c) + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(clients)) + "\n")
}

// throughputTable writes ops/s per target and client count; bpfdb's rows
// carry their ratio to the best alternative.
func throughputTable(b *strings.Builder, s series, n *notes) {
	seriesTable(b, s, n, "ops/s", func(t string, c int, r Result) string {
		cell := thousands(r.Throughput)
		if !IsBpfdb(t) {
			return cell
		}
		best, ok := s.bestAlternative(c)
		if !ok {
			return cell
		}
		cell += fmt.Sprintf(" (**%.2f×** %s", r.Throughput/best.Throughput, DisplayName(best.Target))
		// A server is compared with the server users would run instead,
		// too: the best alternative is often an in-process library.
		if redis, ok := s.get("redis", c); t == "serve" && best.Target != "redis" && ok && measured(redis) {
			cell += fmt.Sprintf("; %.2f× redis", r.Throughput/redis.Throughput)
		}
		return cell + ")"
	})
}

// latencyTable writes p50 / p99 / p99.9 in µs.
func latencyTable(b *strings.Builder, s series, n *notes) {
	seriesTable(b, s, n, "µs: p50 / p99 / p99.9", func(t string, c int, r Result) string {
		l := r.Latency
		return fmt.Sprintf("%s / %s / %s", shortFloat(l.P50), shortFloat(l.P99), shortFloat(l.P999))
	})
}

// abortTable writes, for transfers, the aborted share of attempts and the
// share of committed transfers that were retried.
func abortTable(b *strings.Builder, s series, n *notes) {
	seriesTable(b, s, n, "aborted attempts / retried transfers", func(t string, c int, r Result) string {
		return fmt.Sprintf("%s / %s", percent(r.AbortRate), percent(r.RetryRate))
	})
}

// serverTable writes the servers' CPU time per operation and, where the
// server counts them, its own retries (conflicts no client saw).
func serverTable(b *strings.Builder, s series, n *notes) {
	seriesTable(b, s, n, "server CPU µs/op (server retries)", func(t string, c int, r Result) string {
		return serverCell(r)
	})
}

// serverCell is a result's server CPU per operation and server retries.
func serverCell(r Result) string {
	cell := "—"
	if r.ServerCPU > 0 {
		cell = fmt.Sprintf("%.1f", r.ServerCPU)
	}
	if r.ServerRetries != nil {
		cell += fmt.Sprintf(" (%s)", thousands(float64(*r.ServerRetries)))
	}
	return cell
}

// seriesTable writes one row per target and one column per client count,
// each measured cell formatted by cell; a cell not measured shows its note.
func seriesTable(b *strings.Builder, s series, n *notes, header string, cell func(target string, clients int, r Result) string) {
	clients := s.clients()
	clientsHeader(b, header, clients)
	for _, t := range s.targets() {
		fmt.Fprintf(b, "| %s |", DisplayName(t))
		for _, c := range clients {
			r, ok := s.get(t, c)
			switch {
			case !ok:
				b.WriteString(" |")
			case !measured(r):
				b.WriteString(" " + n.mark(r) + " |")
			default:
				b.WriteString(" " + cell(t, c, r) + " |")
			}
		}
		b.WriteString("\n")
	}
}

func percent(f float64) string {
	if f == 0 {
		return "0"
	}
	if f < 0.001 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

// ResultsTable returns every result as one Markdown table.
func ResultsTable(results []Result) string {
	var b strings.Builder
	b.WriteString("| workload | durability | target | clients | pipeline | ops/s | p50 µs | p99 µs | p99.9 µs | aborts | retried | server CPU µs/op (retries) | total | note |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range results {
		note := r.Error
		if r.Skipped != "" {
			note = "skipped: " + r.Skipped
		}
		total := ""
		if r.Conserved != nil {
			total = "conserved"
			if !*r.Conserved {
				total = fmt.Sprintf("**%+d**", r.Total-r.Expected)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Workload, r.Durability, DisplayName(r.Target), r.Clients, r.Pipeline, thousands(r.Throughput),
			shortFloat(r.Latency.P50), shortFloat(r.Latency.P99), shortFloat(r.Latency.P999),
			percent(r.AbortRate), percent(r.RetryRate), serverCell(r), total, strings.ReplaceAll(note, "|", "\\|"))
	}
	return b.String()
}

// SeriesTables returns the comparison tables of every series: throughput
// with bpfdb's ratios, latency, and for transfers aborts; chartDir, if
// not empty, is the path (relative to the document) of the charts to link.
func SeriesTables(results []Result, chartDir string) string {
	var b strings.Builder
	n := &notes{}
	for _, s := range groupSeries(results) {
		fmt.Fprintf(&b, "### %s\n\n", s.title())
		throughputTable(&b, s, n)
		b.WriteString("\n")
		latencyTable(&b, s, n)
		if slices.ContainsFunc(s.results, func(r Result) bool { return r.ServerCPU > 0 || r.ServerRetries != nil }) {
			b.WriteString("\n")
			serverTable(&b, s, n)
		}
		if s.workload.Transfer {
			b.WriteString("\n")
			abortTable(&b, s, n)
			b.WriteString("\n" + conservationLine(s) + "\n")
		}
		if chartDir != "" {
			b.WriteString("\n")
			for _, c := range chartsOf(s) {
				fmt.Fprintf(&b, "![%s](%s) ", c.alt, path.Join(chartDir, c.file))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	n.write(&b)
	return b.String()
}

// conservationLine says whether every transfer cell kept the total.
func conservationLine(s series) string {
	var ok, bad []string
	for _, r := range s.results {
		if r.Conserved == nil {
			continue
		}
		name := fmt.Sprintf("%s at %d", DisplayName(r.Target), r.Clients)
		if *r.Conserved {
			ok = append(ok, name)
		} else {
			bad = append(bad, fmt.Sprintf("%s (%+d)", name, r.Total-r.Expected))
		}
	}
	switch {
	case len(bad) > 0:
		return "**Money not conserved** in: " + strings.Join(bad, ", ") + "."
	case len(ok) > 0:
		return fmt.Sprintf("The sum of all balances was checked after each of the %d measured cells: conserved in every one.", len(ok))
	}
	return "No cell was checked for conservation."
}
