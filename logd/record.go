package logd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Write is one write of a committed transaction.
type Write struct {
	// DB is the key's database (keyspace), below MaxDatabases.
	DB     int
	Key    []byte
	Value  []byte // nil for a deletion
	Delete bool
	// ExpireAt is the value's deadline, Unix milliseconds (0: none).
	ExpireAt int64
	// Type is the value's type (engine.ValueType: 0 a string), below
	// MaxTypes; a deletion has none.
	Type uint8
}

// Txn is a committed transaction as the log holds it. LSN is its commit
// timestamp: LSNs are dense (every commit timestamp the kernel hands out
// belongs to exactly one logged transaction), which is what lets recovery
// check continuity.
type Txn struct {
	LSN    uint64
	ID     uint64
	Writes []Write
}

// Bounds the decoder enforces before allocating; they are above the
// store's own limits, so a record within them is not necessarily valid
// for a store, only safe to read.
const (
	maxRecordKey    = MaxKeyLen
	maxRecordValue  = MaxValueLen
	maxRecordWrites = 1 << 16
)

// MaxDatabases bounds a write's DB: above any store's (engine.Databases).
const MaxDatabases = 256

// MaxTypes bounds a write's Type: the types a value's length can flag
// (bpf/include/bpfdb.h, BPFDB_LEN_TYPE).
const MaxTypes = 8

// MaxValueLen is the longest value a log record may carry: above any
// store's (engine.MaxValueLenLimit, which the engine checks against it).
const MaxValueLen = 4 << 20

// MaxKeyLen is the longest key a log record may carry: any store's
// (engine.MaxKeyLenLimit, which the engine checks against it).
const MaxKeyLen = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned for a record that fails its checksum or does not parse.
var ErrCorrupt = errors.New("logd: corrupt record")

// Flags of a write in a record.
const (
	flagDelete  = 1
	flagExpires = 2 // a uvarint deadline follows the value
	flagDB      = 4 // a uvarint database follows the flags (none: 0)
	flagType    = 8 // a uvarint type follows the database (none: 0, a string)
)

// appendTxn encodes t's body: crc32c(lsn || rest) then rest, where rest is
// uvarint id, uvarint count, and per write: flags byte, with flagDB the
// uvarint database, with flagType the uvarint type, uvarint key length, key, unless deleted uvarint value
// length and value, and with flagExpires the uvarint deadline. The LSN is the
// pebble key, not in the body, but it is covered by the checksum, so a
// record under the wrong key fails.
func appendTxn(dst []byte, t *Txn) []byte { return appendBody(dst, t.LSN, t.ID, t.Writes) }

// appendBody is appendTxn of the transaction lsn, id, writes.
func appendBody(dst []byte, lsn, id uint64, writes []Write) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.AppendUvarint(dst, id)
	dst = binary.AppendUvarint(dst, uint64(len(writes)))
	for _, w := range writes {
		var flags byte
		if w.Delete {
			flags = flagDelete
		} else if w.ExpireAt > 0 {
			flags = flagExpires
		}
		if w.DB != 0 {
			flags |= flagDB
		}
		if w.Type != 0 && !w.Delete {
			flags |= flagType
		}
		dst = append(dst, flags)
		if w.DB != 0 {
			dst = binary.AppendUvarint(dst, uint64(w.DB))
		}
		if flags&flagType != 0 {
			dst = binary.AppendUvarint(dst, uint64(w.Type))
		}
		dst = binary.AppendUvarint(dst, uint64(len(w.Key)))
		dst = append(dst, w.Key...)
		if !w.Delete {
			dst = binary.AppendUvarint(dst, uint64(len(w.Value)))
			dst = append(dst, w.Value...)
		}
		if flags&flagExpires != 0 {
			dst = binary.AppendUvarint(dst, uint64(w.ExpireAt))
		}
	}
	binary.LittleEndian.PutUint32(dst[start:], checksum(lsn, dst[start+4:]))
	return dst
}

func checksum(lsn uint64, body []byte) uint32 {
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], lsn)
	return crc32.Update(crc32.Checksum(l[:], castagnoli), castagnoli, body)
}

// decodeTxn parses a body written by appendTxn for lsn. The writes alias b.
func decodeTxn(lsn uint64, b []byte) (Txn, error) {
	t := Txn{LSN: lsn}
	if len(b) < 4 {
		return t, fmt.Errorf("%w: LSN %d: %d bytes, shorter than a checksum", ErrCorrupt, lsn, len(b))
	}
	if got, want := checksum(lsn, b[4:]), binary.LittleEndian.Uint32(b); got != want {
		return t, fmt.Errorf("%w: LSN %d: checksum %08x, expected %08x", ErrCorrupt, lsn, got, want)
	}
	d := decoder{b: b[4:], lsn: lsn}
	t.ID = d.uvarint("transaction id", 1<<64-1)
	n := d.uvarint("write count", maxRecordWrites)
	if d.err == nil {
		t.Writes = make([]Write, 0, min(n, uint64(len(d.b)/2+1)))
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var w Write
		flags := d.bytes("flags", 1)
		if d.err != nil {
			break
		}
		if flags[0]&^(flagDelete|flagExpires|flagDB|flagType) != 0 ||
			flags[0]&flagDelete != 0 && flags[0]&(flagExpires|flagType) != 0 {
			d.fail("unknown flags %#x", flags[0])
			break
		}
		w.Delete = flags[0]&flagDelete != 0
		if flags[0]&flagDB != 0 {
			w.DB = int(d.uvarint("database", MaxDatabases-1))
		}
		if flags[0]&flagType != 0 {
			w.Type = uint8(d.uvarint("type", MaxTypes-1))
		}
		w.Key = d.bytes("key", int(d.uvarint("key length", maxRecordKey)))
		if !w.Delete {
			w.Value = d.bytes("value", int(d.uvarint("value length", maxRecordValue)))
		}
		if flags[0]&flagExpires != 0 {
			w.ExpireAt = int64(d.uvarint("deadline", 1<<63-1))
		}
		t.Writes = append(t.Writes, w)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return t, d.err
}

type decoder struct {
	b   []byte
	lsn uint64
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: LSN %d: %s", ErrCorrupt, d.lsn, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	if v > limit {
		d.fail("%s %d above %d", what, v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("%s of %d bytes, %d left", what, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
