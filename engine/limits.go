package engine

import (
	"fmt"
	"unsafe"
)

// Limits compiled into the chain (bpf/include/bpfdb.h, enum bpfdb_limit).
const (
	// Databases is how many databases (keyspaces) the store has: Op.DB is
	// 0 to Databases-1, as Redis's SELECT.
	Databases = int(chainBpfdbLimitBPFDB_DATABASES)
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

	// PageSize is the unit of the value store: the size classes carve
	// pages of this size into slots as they need them.
	PageSize = int(chainBpfdbLimitBPFDB_PAGE_SIZE)
	// MinValuePages is the smallest value store: a page for every class,
	// and some.
	MinValuePages = int64(4 * SlabClasses)

	// defaultBytesPerKey is the budget (Options.MaxMemory) per key of the
	// index when only one of the two is set: a record costs about a third
	// of it, which leaves the values about 700 bytes a key.
	defaultBytesPerKey = 1024
	// maxValuePages keeps every slot's ref, and ref + 1, within 32 bits:
	// class 0 has PageSize/32 slots a page.
	maxValuePages = 1<<(32-pageShift+minSlabShift) - 1

	pageShift    = int(chainBpfdbLimitBPFDB_PAGE_SHIFT)
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

// indexBytesPerKey estimates what one record of the index costs the
// kernel: its key and record, and the hash map's element header and
// bucket. Memory reports what the kernel accounts.
const indexBytesPerKey = int64(unsafe.Sizeof(chainBpfdbKey{})+unsafe.Sizeof(chainBpfdbRecord{})) + 64

// valuePages is the number of pages of the value store: what the budget
// leaves after the index.
func (e *Engine) valuePages() int64 { return e.opts.valuePages() }

func (o *Options) valuePages() int64 {
	n := (o.MaxMemory - int64(o.MaxKeys)*indexBytesPerKey) / int64(PageSize)
	return min(max(n, MinValuePages), maxValuePages)
}

// minMemory is the smallest budget for o.MaxKeys keys.
func (o *Options) minMemory() int64 {
	return int64(o.MaxKeys)*indexBytesPerKey + MinValuePages*int64(PageSize)
}

// checkLimits refuses a key limit above what the log takes and a value
// limit above what a blob holds.
func (o *Options) checkLimits() error {
	if o.MaxKeyLen > MaxKeyLenLimit {
		return fmt.Errorf("%w: MaxKeyLen %d bytes is above %d (MaxKeyLenLimit)", ErrBadOptions, o.MaxKeyLen, MaxKeyLenLimit)
	}
	if o.MaxValueLen > MaxValueLenLimit {
		return fmt.Errorf("%w: MaxValueLen %d bytes is above %d (MaxValueLenLimit: a blob's head page lists at most %d pages)",
			ErrBadOptions, o.MaxValueLen, MaxValueLenLimit, blobMaxPages)
	}
	return nil
}

// checkMemory refuses a budget that does not hold the index and the
// smallest value store.
func (o *Options) checkMemory() error {
	if need := o.minMemory(); o.MaxMemory < need {
		return fmt.Errorf("%w: MaxMemory %d bytes does not hold an index of %d keys (about %d bytes a key) and %d value pages of %d bytes: at least %d",
			ErrBadOptions, o.MaxMemory, o.MaxKeys, indexBytesPerKey, MinValuePages, PageSize, need)
	}
	return nil
}

// storedValue returns the stored bytes (a deadline included) of a value of
// stored > 0 bytes in slot ref of its class, in the mmapped value store
// (bpf/storage/slab.h: slot ref of class c is at byte ref << (5 + c)), or
// nil if that is out of the store (a torn copy of a record).
func (e *Engine) storedValue(ref uint32, stored int) []byte {
	if stored <= 0 || stored > SlotValueLen {
		return nil
	}
	off := int(ref) << (minSlabShift + slabClass(stored))
	if off+stored > len(e.pageMem) {
		return nil
	}
	return e.pageMem[off : off+stored : off+stored]
}
