package engine

// Limits compiled into the chain (bpf/include/bpfdb.h, enum bpfdb_limit).
const (
	// MaxKeyLen is the longest key, in bytes.
	MaxKeyLen = int(chainBpfdbLimitBPFDB_MAX_KEY_LEN)
	// MaxValueLen is the longest value, in bytes.
	MaxValueLen = int(chainBpfdbLimitBPFDB_MAX_VALUE_LEN)
	// MaxVersions is how many versions of one key the store keeps.
	MaxVersions = int(chainBpfdbLimitBPFDB_MAX_VERSIONS)
	// MaxBatch is the most operations one chain run carries.
	MaxBatch = int(chainBpfdbLimitBPFDB_MAX_BATCH)
	// MaxTxns is the number of transactions that may be open at once.
	MaxTxns = int(chainBpfdbLimitBPFDB_MAX_TXNS)
	// MaxTxnKeys is the most distinct keys one read-write transaction may touch.
	MaxTxnKeys = int(chainBpfdbLimitBPFDB_MAX_TXN_KEYS)
	// SlabClasses is the number of value size classes (32, 64, ..., 1024 bytes).
	SlabClasses = int(chainBpfdbLimitBPFDB_SLAB_CLASSES)

	reqSlots     = int(chainBpfdbLimitBPFDB_REQ_SLOTS)
	minSlabShift = int(chainBpfdbLimitBPFDB_MIN_SLAB_SHIFT)
	runMagic     = uint32(chainBpfdbLimitBPFDB_RUN_MAGIC)
)

// SlabSize returns the bytes of one slot of value class c.
func SlabSize(c int) int { return 1 << (minSlabShift + c) }

// slabClass is the class a value of n bytes (n > 0) is stored in; it mirrors
// slab_class in bpf/storage/slab.h.
func slabClass(n int) int {
	c := 0
	for SlabSize(c) < n {
		c++
	}
	return c
}
