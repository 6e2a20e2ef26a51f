package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
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
			binary.LittleEndian.PutUint32(b[walKeyOffset:], uint32(MaxKeyLen+1))
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
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRingRecord(b)
		if err != nil {
			if !errors.Is(err, errBadRingRecord) {
				t.Fatalf("error %v is not errBadRingRecord", err)
			}
			return
		}
		if len(r.key) > MaxKeyLen || len(r.value) > MaxValueLen {
			t.Fatalf("decoded a key of %d or value of %d bytes", len(r.key), len(r.value))
		}
	})
}
