package main

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/internal/hashenc"
	"github.com/bpfdb/bpfdb/logd"
	"github.com/bpfdb/bpfdb/server"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// progress draws a progress bar on stderr (github.com/schollz/progressbar)
// for a long recovery or checkpoint; nothing for short ones.
type progress struct {
	what string
	bar  *progressbar.ProgressBar
}

func newProgress(what string) *progress { return &progress{what: what} }

func (p *progress) update(stage string, done, total uint64) {
	if total < 100000 && p.bar == nil {
		return
	}
	if p.bar == nil || p.bar.GetMax64() != int64(total) {
		p.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(p.what+" "+stage), progressbar.OptionShowCount(), progressbar.OptionThrottle(100e6))
	}
	p.bar.Set64(int64(done))
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
}

func openLog(dir string) (*logd.Log, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no data directory %s: %w", dir, err)
	}
	return logd.Open(dir, logd.Options{})
}

func recoverCmd() *cobra.Command {
	var (
		dir   string
		dump  string
		until uint64
	)
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Check a data directory offline and rebuild the state it recovers to",
		Long: `recover reads a data directory that no server is using, checks every
checkpoint entry and log record (checksums, LSN continuity), rebuilds the
state a server would recover to, and reports what it found. It needs no
privileges: the state is rebuilt in memory, not in the kernel.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLog(dir)
			if err != nil {
				return err
			}
			defer l.Close()
			bar := newProgress("replaying")
			// Keys are judged expired by the wall clock, as a server
			// opened now would (its clock is the Unix time), with
			// --until-lsn too: the log records no commit times.
			state, rep, err := logd.Rebuild(l, until, time.Now().UnixMilli(), func(done, total uint64) { bar.update("log", done, total) })
			bar.finish()
			if err != nil {
				return err
			}
			fmt.Printf("checkpoint:   LSN %d, %d keys\n", rep.Checkpoint.LSN, rep.Checkpoint.Entries)
			fmt.Printf("log replayed: %d transactions, %d writes, LSN %d to %d\n", rep.Replay.Txns, rep.Replay.Writes, rep.Replay.First, rep.Replay.Last)
			fmt.Printf("recovered:    %d keys at LSN %d (%d more expired)\n", rep.Keys, rep.LastLSN, rep.Expired)
			if rep.Replay.Damage != nil {
				fmt.Printf("damage:       %v\n", rep.Replay.Damage)
			} else {
				fmt.Println("damage:       none")
			}
			if dump != "" {
				stored, err := l.Meta(server.DBNamesMeta)
				if err != nil {
					return err
				}
				names, err := server.DBNames(stored) // SWAPDB's: the databases as clients name them
				if err != nil {
					return err
				}
				if err := dumpState(dump, state, names); err != nil {
					return err
				}
				fmt.Printf("dumped %d keys to %s\n", len(state), dump)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./data", "data directory")
	cmd.Flags().StringVar(&dump, "dump", "", "write the recovered keys and values to this file as JSON lines")
	cmd.Flags().Uint64Var(&until, "until-lsn", 0, "recover to this LSN (point in time); 0 for all")
	return cmd
}

// dumpRecord is one line of a dump. A key or value that is not UTF-8 is
// written base64-encoded in the _base64 field instead.
type dumpRecord struct {
	// DB is the key's database as clients name it (SELECT, after any
	// SWAPDB), when not 0.
	DB          int    `json:"db,omitempty"`
	Key         string `json:"key,omitempty"`
	KeyBase64   string `json:"key_base64,omitempty"`
	Value       string `json:"value,omitempty"`
	ValueBase64 string `json:"value_base64,omitempty"`
	// ExpireAtMs is the key's deadline, Unix ms (PXAT), if it has one.
	ExpireAtMs int64 `json:"expire_at_ms,omitempty"`
	// Type is the value's type, when not a string (engine.ValueType).
	Type string `json:"type,omitempty"`
	// Hash is a hash's fields and values, in its order, when all are
	// UTF-8; otherwise its encoding (internal/hashenc) is in ValueBase64.
	Hash [][2]string `json:"hash,omitempty"`
}

// setValue fills r's value fields with v, of type typ.
func (r *dumpRecord) setValue(v []byte, typ engine.ValueType) {
	switch {
	case typ == engine.TypeString && utf8.Valid(v):
		r.Value = string(v)
		return
	case typ == engine.TypeHash:
		if h, err := hashenc.Decode(v); err == nil && hashUTF8(h) {
			r.Type, r.Hash = typ.String(), make([][2]string, 0, h.Len())
			for i := range h.Len() {
				f, fv := h.Field(i)
				r.Hash = append(r.Hash, [2]string{string(f), string(fv)})
			}
			return
		}
	}
	if typ != engine.TypeString {
		r.Type = typ.String()
	}
	r.ValueBase64 = base64.StdEncoding.EncodeToString(v)
}

func hashUTF8(h *hashenc.Hash) bool {
	for i := range h.Len() {
		if f, v := h.Field(i); !utf8.Valid(f) || !utf8.Valid(v) {
			return false
		}
	}
	return true
}

// dumpState writes state, naming each database by names (by the store's
// number).
func dumpState(path string, state map[logd.EntryKey]logd.Entry, names [engine.Databases]int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	keys := make([]logd.EntryKey, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b logd.EntryKey) int {
		return cmp.Or(cmp.Compare(names[a.DB], names[b.DB]), cmp.Compare(a.Key, b.Key))
	})
	enc := json.NewEncoder(w)
	for _, k := range keys {
		r := dumpRecord{DB: names[k.DB]}
		if utf8.ValidString(k.Key) {
			r.Key = k.Key
		} else {
			r.KeyBase64 = base64.StdEncoding.EncodeToString([]byte(k.Key))
		}
		e := state[k]
		r.setValue(e.Value, engine.ValueType(e.Type))
		r.ExpireAtMs = e.ExpireAt
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func walCmd() *cobra.Command {
	wal := &cobra.Command{Use: "wal", Short: "Inspect the write-ahead log"}
	var dir string
	dump := &cobra.Command{
		Use:   "dump",
		Short: "Print the logged transactions after the newest checkpoint",
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLog(dir)
			if err != nil {
				return err
			}
			defer l.Close()
			cp, _, err := l.LatestCheckpoint()
			if err != nil {
				return err
			}
			w := bufio.NewWriter(os.Stdout)
			defer w.Flush()
			fmt.Fprintf(w, "# checkpoint at LSN %d (%d keys); log after it:\n", cp.LSN, cp.Entries)
			st, err := l.Replay(cp.LSN, 0, func(t *logd.Txn) error {
				fmt.Fprintf(w, "LSN %d txn %d: %d writes\n", t.LSN, t.ID, len(t.Writes))
				for _, wr := range t.Writes {
					if wr.DB != 0 {
						fmt.Fprintf(w, "  (db %d)", wr.DB)
					}
					typ := ""
					if wr.Type != 0 {
						typ = " " + engine.ValueType(wr.Type).String()
					}
					if wr.Delete {
						fmt.Fprintf(w, "  DEL %q\n", wr.Key)
					} else if wr.ExpireAt != 0 {
						fmt.Fprintf(w, "  SET %q =%s %s PXAT %d\n", wr.Key, typ, preview(wr.Value), wr.ExpireAt)
					} else {
						fmt.Fprintf(w, "  SET %q =%s %s\n", wr.Key, typ, preview(wr.Value))
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "# %d transactions, %d writes", st.Txns, st.Writes)
			if st.Damage != nil {
				fmt.Fprintf(w, "; stopped at damage: %v", st.Damage)
			}
			fmt.Fprintln(w)
			return nil
		},
	}
	dump.Flags().StringVar(&dir, "dir", "./data", "data directory")
	wal.AddCommand(dump)
	return wal
}

// preview quotes a value, cut to 64 bytes, with its length.
func preview(v []byte) string {
	if len(v) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", v[:64], len(v))
	}
	return fmt.Sprintf("%q (%d bytes)", v, len(v))
}
