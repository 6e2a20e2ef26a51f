package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/logd"
)

// run executes the CLI with args and returns what it printed on stdout.
func run(t *testing.T, args ...string) string {
	t.Helper()
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	root := rootCmd()
	root.SetArgs(args)
	err := root.Execute()
	w.Close()
	os.Stdout = stdout
	var out bytes.Buffer
	out.ReadFrom(r)
	if err != nil {
		t.Fatalf("bpfdb %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// recover and wal dump read a log offline: what it holds, to a point in time.
func TestRecoverAndWalDump(t *testing.T) {
	dir := t.TempDir()
	l, err := logd.Open(dir, logd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Start(0)
	w := l.NewWriter()
	later := time.Now().Add(time.Hour).UnixMilli()
	for _, tx := range []logd.Txn{
		{LSN: 1, ID: 1, Writes: []logd.Write{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte{0xff}, Value: []byte{0xfe, 0}}}},
		{LSN: 2, ID: 2, Writes: []logd.Write{{Key: []byte("a"), Delete: true}}},
		{LSN: 3, ID: 3, Writes: []logd.Write{{Key: []byte("b"), Value: []byte("2")}}},
		{LSN: 4, ID: 4, Writes: []logd.Write{{Key: []byte("c"), Value: []byte("3"), ExpireAt: later},
			{Key: []byte("d"), Value: []byte("4"), ExpireAt: 1000}}}, // long expired
	} {
		w.Add(&tx)
	}
	w.Close(time.Time{})
	if err := l.WaitDurable(4); err != nil {
		t.Fatal(err)
	}
	l.Close()

	dump := filepath.Join(t.TempDir(), "dump.jsonl")
	out := run(t, "recover", "--dir", dir, "--dump", dump)
	for _, want := range []string{"4 transactions", "3 keys at LSN 4 (1 more expired)", "damage:       none"} {
		if !strings.Contains(out, want) {
			t.Errorf("recover output lacks %q:\n%s", want, out)
		}
	}
	data, _ := os.ReadFile(dump)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var first, second dumpRecord
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.Key != "b" || first.Value != "2" || first.ExpireAtMs != 0 {
		t.Fatalf("dump:\n%s", data)
	}
	if json.Unmarshal([]byte(lines[1]), &second) != nil || second.Key != "c" || second.ExpireAtMs != later {
		t.Fatalf("dump of an expiring key: %s, want expire_at_ms %d", lines[1], later)
	}
	if !strings.Contains(lines[2], `"key_base64":"/w=="`) || !strings.Contains(lines[2], `"value_base64":"/gA="`) {
		t.Errorf("binary key and value are not base64 in the dump: %s", lines[2])
	}
	if out := run(t, "recover", "--dir", dir, "--until-lsn", "1"); !strings.Contains(out, "2 keys at LSN 1") {
		t.Errorf("recover --until-lsn 1:\n%s", out)
	}
	out = run(t, "wal", "dump", "--dir", dir)
	for _, want := range []string{`LSN 2 txn 2: 1 writes`, `DEL "a"`, `SET "b" = "2" (1 bytes)`, "# 4 transactions, 6 writes"} {
		if !strings.Contains(out, want) {
			t.Errorf("wal dump lacks %q:\n%s", want, out)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true}, {"100000000", 100000000, true}, {"1gb", 1 << 30, true}, {"512MB", 512 << 20, true},
		{"64kb", 64 << 10, true}, {"2g", 2e9, true}, {"5m", 5e6, true}, {"7k", 7000, true}, {"10b", 10, true},
		{"0", 0, false}, {"-1mb", 0, false}, {"1tb", 0, false}, {"mb", 0, false}, {"99999999999gb", 0, false},
	} {
		got, err := parseMemory(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseMaxKeyLen(t *testing.T) {
	if n, err := parseMaxKeyLen("1kb"); err != nil || n != 1024 {
		t.Errorf("parseMaxKeyLen(1kb) = %d, %v", n, err)
	}
	if _, err := parseMaxKeyLen(fmt.Sprint(engine.MaxKeyLenLimit + 1)); err == nil || !strings.Contains(err.Error(), "--max-key-len") {
		t.Errorf("parseMaxKeyLen above the limit: %v", err)
	}
}

func TestParseMaxValueLen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true}, {"1mb", 1 << 20, true}, {"512kb", 512 << 10, true}, {"100", 100, true},
		{fmt.Sprint(engine.MaxValueLenLimit), engine.MaxValueLenLimit, true},
		{fmt.Sprint(engine.MaxValueLenLimit + 1), 0, false}, {"8mb", 0, false}, {"0", 0, false}, {"big", 0, false},
	} {
		got, err := parseMaxValueLen(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseMaxValueLen(%q) = %d, %v; want %d (ok %v)", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--max-value-len") {
			t.Errorf("parseMaxValueLen(%q): %v does not name the flag", c.in, err)
		}
	}
}
