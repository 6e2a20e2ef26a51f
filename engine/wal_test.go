package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/bpfdb/bpfdb/logd"
)

func ringWrite(kind chainBpfdbWalKind, key, value []byte, del bool) []byte {
	b := make([]byte, walValOffset+len(value))
	binary.LittleEndian.PutUint32(b[0:], uint32(kind))
	binary.LittleEndian.PutUint64(b[8:], 7)
	binary.LittleEndian.PutUint64(b[16:], 9)
	vl := uint32(len(value))
	if del {
		vl = tombstone
	}
	binary.LittleEndian.PutUint32(b[24:], vl)
	binary.LittleEndian.PutUint32(b[walKeyOffset:], uint32(len(key)))
	copy(b[walKeyOffset+8:], key)
	copy(b[walValOffset:], value)
	return b
}

func TestDecodeRingRecord(t *testing.T) {
	r, err := decodeRingRecord(ringWrite(chainBpfdbWalKindBPFDB_WAL_WRITE_COMMIT, []byte("key"), []byte("value"), false))
	if err != nil || string(r.key) != "key" || string(r.value) != "value" || r.lsn != 9 || r.txnID != 7 {
		t.Fatalf("decoded %+v, %v", r, err)
	}
	r, err = decodeRingRecord(ringWrite(chainBpfdbWalKindBPFDB_WAL_WRITE, []byte("gone"), nil, true))
	if err != nil || !r.delete || string(r.key) != "gone" {
		t.Fatalf("decoded delete %+v, %v", r, err)
	}
	for name, b := range map[string][]byte{
		"short header": make([]byte, walHdrSize-1),
		"unknown kind": ringWrite(99, nil, nil, false),
		"long key": func() []byte {
			b := ringWrite(chainBpfdbWalKindBPFDB_WAL_WRITE, nil, nil, false)
			binary.LittleEndian.PutUint32(b[walKeyOffset:], uint32(MaxKeyLenLimit+1))
			return b
		}(),
		"value past the end": ringWrite(chainBpfdbWalKindBPFDB_WAL_WRITE, []byte("k"), []byte("v"), false)[:walValOffset],
	} {
		if _, err := decodeRingRecord(b); !errors.Is(err, errBadRingRecord) {
			t.Errorf("%s: err = %v, want errBadRingRecord", name, err)
		}
	}
}

// FuzzDecodeRingRecord: any sample decodes within its bounds or is refused.
func FuzzDecodeRingRecord(f *testing.F) {
	f.Add(ringWrite(chainBpfdbWalKindBPFDB_WAL_WRITE_COMMIT, []byte("k"), bytes.Repeat([]byte("v"), 100), false))
	f.Add(ringWrite(chainBpfdbWalKindBPFDB_WAL_COMMIT, nil, nil, false)[:walHdrSize])
	expiring := ringWrite(chainBpfdbWalKindBPFDB_WAL_WRITE_COMMIT, []byte("k"), []byte("value\x00\x01\x02\x03\x04\x05\x06\x07"), false)
	binary.LittleEndian.PutUint32(expiring[24:], uint32(13)|lenExpires)
	f.Add(expiring)
	blob := ringWrite(chainBpfdbWalKindBPFDB_WAL_WRITE_COMMIT, []byte("k"), make([]byte, blobHead), false)
	binary.LittleEndian.PutUint32(blob[24:], uint32(5000))
	binary.LittleEndian.PutUint64(blob[walValOffset+8:], 7)
	binary.LittleEndian.PutUint32(blob[walValOffset+24:], 5000)
	f.Add(blob)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRingRecord(b)
		if err != nil {
			if !errors.Is(err, errBadRingRecord) {
				t.Fatalf("error %v is not errBadRingRecord", err)
			}
			return
		}
		if len(r.key) > InlineKeyLen || len(r.value) > SlotValueLen {
			t.Fatalf("decoded a key of %d or value of %d bytes", len(r.key), len(r.value))
		}
		if r.blobID != 0 && (r.value != nil || r.expire != 0) {
			t.Fatalf("a blob's record carried %d value bytes, deadline %d", len(r.value), r.expire)
		}
	})
}

// Every autocommit write reaches the log whole, at every value size: the
// chain reserves its ring record at the size of the value's slab class
// (bpf/wal/wal.h, wal_reserve_auto), so each class boundary is written,
// as are an empty value and a tombstone.
func TestAutocommitLogRecordSizes(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 1024, MaxMemory: 16 << 20, Dir: t.TempDir()})
	sizes := []int{0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, SlotValueLen,
		SlotValueLen + 1, blobHeadRoom, blobHeadRoom + 1, PageSize, 10 << 10, DefaultMaxValueLen}
	want := map[string][]byte{}
	var ops []Op
	for i, n := range sizes {
		key := specKey("size", i)
		ops = append(ops, Op{Kind: OpSet, Key: key, Value: specPattern(n, byte(i+1))})
		want[string(key)] = specPattern(n, byte(i+1))
	}
	deleted := specKey("size", 3)
	ops = append(ops, Op{Kind: OpDelete, Key: deleted})
	if err := e.Batch(ops); err != nil {
		t.Fatal(err)
	}
	for i := range ops {
		if ops[i].Err != nil {
			t.Fatalf("op %d: %v", i, ops[i].Err)
		}
	}
	got := map[string][]byte{}
	deletes := 0
	if _, err := e.log.Replay(0, 0, func(txn *logd.Txn) error {
		for _, w := range txn.Writes {
			if w.Delete {
				deletes++
				delete(got, string(w.Key))
				continue
			}
			got[string(w.Key)] = bytes.Clone(w.Value)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	delete(want, string(deleted))
	if deletes != 1 || len(got) != len(want) {
		t.Fatalf("log holds %d values and %d deletes, want %d and 1", len(got), deletes, len(want))
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Errorf("%s: logged %d bytes, want %d bytes (%q...)", k, len(got[k]), len(v), v[:min(len(v), 8)])
		}
	}
}

// SyncLog writes what the ring holds on the caller's goroutine: a commit
// submitted without waiting is durable when it returns, without waiting
// for the ring reader (which, racing it, could only win now and then).
func TestSyncLog(t *testing.T) {
	e := openTest(t, Options{MaxKeys: 64, Dir: t.TempDir()})
	for i := 0; i < 50; i++ {
		lsn, err := e.Submit([]Op{{Kind: OpSet, Key: specKey("k", i), Value: []byte("v")}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SyncLog(); err != nil {
			t.Fatal(err)
		}
		if done, err := e.Durable(lsn); !done || err != nil {
			t.Fatalf("commit %d (LSN %d) after SyncLog: durable %v, %v", i, lsn, done, err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.SyncLog(); !errors.Is(err, ErrClosed) {
		t.Fatalf("SyncLog after Close = %v, want ErrClosed", err)
	}
}
