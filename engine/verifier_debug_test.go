package engine

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// TestVerifierStats loads each program alone and logs what the verifier
// processed, to keep every stage far from the 1M-instruction budget.
func TestVerifierStats(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	base, err := loadChain()
	if err != nil {
		t.Fatal(err)
	}
	for name := range base.Programs {
		spec := base.Copy()
		for other := range spec.Programs {
			if other != name {
				delete(spec.Programs, other)
			}
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
		if err != nil {
			msg := err.Error()
			var ve *ebpf.VerifierError
			if errors.As(err, &ve) {
				msg = strings.Join(ve.Log, "\n")
			}
			t.Errorf("%s: %s", name, msg[max(0, len(msg)-2000):])
			continue
		}
		log := coll.Programs[name].VerifierLog
		if i := strings.Index(log, "processed"); i >= 0 {
			t.Logf("%s: %s", name, strings.TrimSpace(log[i:]))
		}
		if os.Getenv("BPFDB_VERIFIER_LOG") != "" {
			t.Log(log)
		}
		coll.Close()
	}
}
