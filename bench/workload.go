package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Workload is what the clients of a cell do: a YCSB mix of reads, updates
// and read-modify-writes, or transfers.
type Workload struct {
	// Name is the short name used on the command line ("a", "transfer").
	Name string
	// Title describes the workload in reports.
	Title string
	// Read, Update and RMW are the fractions of a YCSB mix; they sum to 1.
	Read, Update, RMW float64
	// Transfer marks the transfer workloads (the fractions are then unused).
	Transfer bool
	// Proc makes each transfer attempt one call of a stored procedure on
	// the server (ProcConn.TransferProc) instead of a client-driven
	// transaction (Conn.Transfer).
	Proc bool
}

// The workloads. YCSB's core workloads A, B, C and F, with YCSB's
// fractions; D and E (inserts, scans) are not implemented.
var (
	WorkloadA        = Workload{Name: "a", Title: "YCSB A (50% read, 50% update)", Read: 0.5, Update: 0.5}
	WorkloadB        = Workload{Name: "b", Title: "YCSB B (95% read, 5% update)", Read: 0.95, Update: 0.05}
	WorkloadC        = Workload{Name: "c", Title: "YCSB C (100% read)", Read: 1}
	WorkloadF        = Workload{Name: "f", Title: "YCSB F (50% read, 50% read-modify-write)", Read: 0.5, RMW: 0.5}
	WorkloadTransfer = Workload{Name: "transfer", Title: "Transfer (read two balances, move an amount, write both, commit)", Transfer: true}
	// WorkloadTransferProc is the transfer as a stored procedure: a Lua
	// script run by EVALSHA on RESP servers, a plpgsql function at
	// SERIALIZABLE on PostgreSQL.
	WorkloadTransferProc = Workload{Name: "transfer-proc", Title: "Transfer stored procedure (one call reads two balances, moves an amount, writes both)", Transfer: true, Proc: true}
)

// Workloads lists every workload in report order.
var Workloads = []Workload{WorkloadA, WorkloadB, WorkloadC, WorkloadF, WorkloadTransfer, WorkloadTransferProc}

// ParseWorkloads parses a comma-separated list of workload names
// ("a,c,transfer"; "ycsb-a" is accepted for "a").
func ParseWorkloads(s string) ([]Workload, error) {
	var out []Workload
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(name)), "ycsb-")
		found := false
		for _, w := range Workloads {
			if w.Name == name {
				out, found = append(out, w), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown workload %q (have a, b, c, f, transfer, transfer-proc)", name)
		}
	}
	return out, nil
}

// Label is the workload's name in file names and table headings.
func (w Workload) Label() string {
	if w.Transfer {
		return w.Name
	}
	return "ycsb-" + w.Name
}

// OpKind is what one YCSB operation does.
type OpKind uint8

const (
	// Read reads one record.
	Read OpKind = iota
	// Update overwrites one record with a new value.
	Update
	// ReadModifyWrite reads one record, then overwrites it (YCSB F: two
	// requests, not a transaction).
	ReadModifyWrite
)

// String names the kind.
func (k OpKind) String() string {
	return [...]string{"read", "update", "read-modify-write"}[k]
}

// NextOp draws the kind of the next operation of the mix.
func (w Workload) NextOp(r *rand.Rand) OpKind {
	u := r.Float64()
	switch {
	case u < w.Read:
		return Read
	case u < w.Read+w.Update:
		return Update
	}
	if w.RMW > 0 {
		return ReadModifyWrite
	}
	return Update // rounding: Read+Update == 1
}
