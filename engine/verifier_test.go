package engine

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// verifierBudget is the most instructions any stage may cost the verifier:
// half the kernel's 1M limit, so a change that doubles a stage shows here
// before it breaks loading.
const verifierBudget = 500_000

// TestVerifierBudget loads each program alone, logs what the verifier
// processed, and fails when a stage costs more than verifierBudget. Set
// BPFDB_VERIFIER_LOG=1 for the whole log.
func TestVerifierBudget(t *testing.T) {
	openTest(t, Options{}) // skips, or fails under BPFDB_REQUIRE_BPF=1, without privileges
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
		var insns int
		if i := strings.Index(log, "processed"); i >= 0 {
			t.Logf("%s: %s", name, strings.TrimSpace(log[i:]))
			fmt.Sscanf(log[i:], "processed %d insns", &insns)
		}
		if insns == 0 || insns > verifierBudget {
			t.Errorf("%s: verifier processed %d instructions, budget %d", name, insns, verifierBudget)
		}
		if os.Getenv("BPFDB_VERIFIER_LOG") != "" {
			t.Log(log)
		}
		coll.Close()
	}
}
