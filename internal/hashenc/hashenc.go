// Package hashenc is how a Redis hash is kept in the store: one value of
// type engine.TypeHash holding every field and its value.
//
// Why one value (docs/DESIGN.md, "Hashes", says more): the store's unit of
// versioning, locking, logging and checkpointing is a key, so a hash kept
// as one key's value is read at one snapshot, locked once, logged as one
// write and recovered whole, with no new kernel code; fields kept as keys
// of their own would need an ordered index (HGETALL, HSCAN) that BPF hash
// maps do not have, and a hash of 1,000 fields would be a 1,000-key
// transaction. The cost: a write rewrites the whole hash, and a hash is at
// most the store's longest value (engine.Options.MaxValueLen) encoded.
//
// Encoding: uvarint count, then per field, in the order fields were first
// set (as Redis's small hashes): uvarint field length, field, uvarint
// value length, value. Fields are distinct; the count matches.
//
// Invariants (Decode checks them on every value it reads; Hash keeps them):
//
//  1. No two fields are equal.
//  2. size is the length Encode returns.
package hashenc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt: bytes that are not a hash's encoding.
var ErrCorrupt = errors.New("hashenc: not a hash's encoding")

// indexAt is the field count from which a Hash keeps a map from field to
// position: below it a linear search is cheaper than the map.
const indexAt = 16

// Hash is a decoded hash. Its fields and values may alias the bytes it
// was decoded from, which must then not change.
type Hash struct {
	fields, values [][]byte
	index          map[string]int // field to position, from indexAt fields
	body           int            // encoded bytes after the count
}

// New returns an empty hash.
func New() *Hash { return &Hash{} }

// Decode parses b, written by Encode. The hash aliases b.
func Decode(b []byte) (*Hash, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b))/2 { // every field takes at least two bytes
		return nil, fmt.Errorf("%w: bad field count", ErrCorrupt)
	}
	h := &Hash{fields: make([][]byte, 0, n), values: make([][]byte, 0, n)}
	rest := b[k:]
	for i := uint64(0); i < n; i++ {
		var f, v []byte
		var ok bool
		if f, rest, ok = chunk(rest); !ok {
			return nil, fmt.Errorf("%w: field %d of %d is cut short", ErrCorrupt, i, n)
		}
		if v, rest, ok = chunk(rest); !ok {
			return nil, fmt.Errorf("%w: value %d of %d is cut short", ErrCorrupt, i, n)
		}
		if h.find(f) >= 0 {
			return nil, fmt.Errorf("%w: field %q twice", ErrCorrupt, f)
		}
		h.append(f, v)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last field", ErrCorrupt, len(rest))
	}
	return h, nil
}

// chunk splits a uvarint length and that many bytes off b.
func chunk(b []byte) (c, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], true
}

// Len is the number of fields.
func (h *Hash) Len() int { return len(h.fields) }

// Size is the length of the hash's encoding.
func (h *Hash) Size() int { return uvarintLen(len(h.fields)) + h.body }

// Get returns field f's value.
func (h *Hash) Get(f []byte) ([]byte, bool) {
	if i := h.find(f); i >= 0 {
		return h.values[i], true
	}
	return nil, false
}

// Set gives field f the value v, and reports whether f is new. New fields
// go last; a field set again keeps its place.
func (h *Hash) Set(f, v []byte) bool {
	if i := h.find(f); i >= 0 {
		h.body += pairLen(f, v) - pairLen(f, h.values[i])
		h.values[i] = v
		return false
	}
	h.append(f, v)
	return true
}

// Delete removes field f, and reports whether it was there.
func (h *Hash) Delete(f []byte) bool {
	i := h.find(f)
	if i < 0 {
		return false
	}
	h.body -= pairLen(f, h.values[i])
	h.fields = append(h.fields[:i], h.fields[i+1:]...)
	h.values = append(h.values[:i], h.values[i+1:]...)
	if h.index != nil {
		h.reindex()
	}
	return true
}

// Field returns the i-th field and its value, in the hash's order.
func (h *Hash) Field(i int) (f, v []byte) { return h.fields[i], h.values[i] }

// Encode returns the hash's encoding, Size bytes.
func (h *Hash) Encode() []byte {
	b := make([]byte, 0, h.Size())
	b = binary.AppendUvarint(b, uint64(len(h.fields)))
	for i, f := range h.fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
		b = binary.AppendUvarint(b, uint64(len(h.values[i])))
		b = append(b, h.values[i]...)
	}
	if len(b) != h.Size() {
		panic(fmt.Sprintf("hashenc: encoded %d bytes, size says %d (invariant 2)", len(b), h.Size()))
	}
	return b
}

func (h *Hash) append(f, v []byte) {
	h.fields = append(h.fields, f)
	h.values = append(h.values, v)
	h.body += pairLen(f, v)
	switch {
	case h.index != nil:
		h.index[string(f)] = len(h.fields) - 1
	case len(h.fields) >= indexAt:
		h.reindex()
	}
}

func (h *Hash) reindex() {
	h.index = make(map[string]int, len(h.fields))
	for i, f := range h.fields {
		h.index[string(f)] = i
	}
}

// find returns f's position, or -1.
func (h *Hash) find(f []byte) int {
	if h.index != nil {
		if i, ok := h.index[string(f)]; ok {
			return i
		}
		return -1
	}
	for i, g := range h.fields {
		if bytes.Equal(f, g) {
			return i
		}
	}
	return -1
}

func pairLen(f, v []byte) int { return uvarintLen(len(f)) + len(f) + uvarintLen(len(v)) + len(v) }

func uvarintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}
