package server

// Key locks in the server: read-write server transactions whose keys are
// known before they run (every data command, a MULTI/EXEC, a script's
// declared KEYS) wait here, in Go, for the transactions ahead of them on
// the same keys, instead of meeting them in the kernel, whose locks do
// not wait: many clients writing one hot key (HSET of one hash, INCR
// through MULTI) would otherwise conflict on every attempt until the
// retries run out.
//
// The kernel's locks stay what makes a transaction serializable: these
// only order the server's own transactions, so they never need to be
// right, only cheap. Invariants:
//
//  1. A transaction takes the stripes of its keys in increasing order,
//     so no two wait for each other in a cycle: no deadlock.
//  2. Stripes are taken before the database names' hold (swapdb.go) and
//     released after it, and nothing waits for a stripe while holding
//     the names, so SWAPDB's write lock waits only for engine calls.

import (
	"hash/maphash"
	"slices"
	"sync"
)

// keyStripes is how many locks the keys hash into.
const keyStripes = 1024

type keyLocks struct {
	seed    maphash.Seed
	stripes [keyStripes]sync.Mutex
}

func newKeyLocks() *keyLocks { return &keyLocks{seed: maphash.MakeSeed()} }

// lock takes the stripes of keys (dbKey names) and returns what releases
// them.
func (kl *keyLocks) lock(keys []string) func() {
	idx := kl.stripesOf(keys)
	for _, i := range idx {
		kl.stripes[i].Lock()
	}
	return kl.unlocker(idx)
}

// tryLock takes the stripes of keys if none is taken, and returns what
// releases them; ok false, holding none, if one is. The event loop
// (loop.go), which must not wait, takes them this way.
func (kl *keyLocks) tryLock(keys []string) (unlock func(), ok bool) {
	idx := kl.stripesOf(keys)
	for n, i := range idx {
		if !kl.stripes[i].TryLock() {
			kl.unlocker(idx[:n])()
			return nil, false
		}
	}
	return kl.unlocker(idx), true
}

// stripesOf is the stripes of keys, each once, in increasing order
// (invariant 1).
func (kl *keyLocks) stripesOf(keys []string) []int {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, int(maphash.String(kl.seed, k)%keyStripes))
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

func (kl *keyLocks) unlocker(idx []int) func() {
	return func() {
		for _, i := range idx {
			kl.stripes[i].Unlock()
		}
	}
}
