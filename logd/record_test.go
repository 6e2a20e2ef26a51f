package logd

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, txn := range []Txn{
		{LSN: 1, ID: 7},
		{LSN: 2, ID: 1 << 40, Writes: []Write{{Key: []byte("k"), Value: []byte("v")}}},
		{LSN: 3, ID: 9, Writes: []Write{{Key: []byte{}, Value: []byte{}}, {Key: []byte("gone"), Delete: true}, {Key: bytes.Repeat([]byte{0}, 64), Value: bytes.Repeat([]byte{0xff}, 1024)}}},
		{LSN: 4, ID: 10, Writes: []Write{{Key: []byte("ttl"), Value: []byte("v"), ExpireAt: 1_800_000_000_000}, {Key: []byte("x"), Value: []byte{}, ExpireAt: 1}}},
		{LSN: 5, ID: 11, Writes: []Write{{DB: 15, Key: []byte("k"), Value: []byte("v"), ExpireAt: 7, Type: MaxTypes - 1}, {Key: []byte("h"), Value: []byte("f"), Type: 1}, {DB: 1, Key: []byte("k"), Delete: true}, {DB: MaxDatabases - 1, Key: []byte("k"), Value: []byte{}}}},
	} {
		b := appendTxn(nil, &txn)
		got, err := decodeTxn(txn.LSN, b)
		if err != nil {
			t.Fatalf("LSN %d: %v", txn.LSN, err)
		}
		if len(txn.Writes) == 0 {
			txn.Writes = []Write{}
		}
		if !reflect.DeepEqual(got, txn) {
			t.Fatalf("round trip of %+v gave %+v", txn, got)
		}
	}
}

func TestRecordDetectsDamage(t *testing.T) {
	txn := Txn{LSN: 5, ID: 1, Writes: []Write{{Key: []byte("key"), Value: []byte("value")}}}
	b := appendTxn(nil, &txn)
	if _, err := decodeTxn(6, b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("record under the wrong LSN: err = %v, want ErrCorrupt", err)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x40
		if _, err := decodeTxn(5, bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("flipped byte %d: err = %v, want ErrCorrupt", i, err)
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := decodeTxn(5, b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err = %v, want ErrCorrupt", n, err)
		}
	}
}

// FuzzDecodeTxn: any input decodes or fails with ErrCorrupt, never panics,
// and whatever decodes re-encodes to the same bytes.
func FuzzDecodeTxn(f *testing.F) {
	f.Add(uint64(1), appendTxn(nil, &Txn{LSN: 1, ID: 2, Writes: []Write{{Key: []byte("a"), Value: []byte("b")}, {Key: []byte("c"), Delete: true}}}))
	f.Add(uint64(2), appendTxn(nil, &Txn{LSN: 2, ID: 3, Writes: []Write{{Key: []byte("a"), Value: []byte("b"), ExpireAt: 1 << 42}}}))
	f.Add(uint64(0), []byte{})
	f.Fuzz(func(t *testing.T, lsn uint64, b []byte) {
		txn, err := decodeTxn(lsn, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if again := appendTxn(nil, &txn); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v re-encodes differently", txn)
		}
	})
}
