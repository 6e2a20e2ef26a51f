package logd

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble"
)

// replayed returns the LSNs Replay(after, 0) delivers, and its stats.
func replayed(t *testing.T, l *Log, after uint64) ([]uint64, ReplayStats) {
	t.Helper()
	var lsns []uint64
	st, err := l.Replay(after, 0, func(tx *Txn) error {
		if want := txn(tx.LSN); string(tx.Writes[0].Value) != string(want.Writes[0].Value) {
			t.Fatalf("LSN %d replayed with value %q", tx.LSN, tx.Writes[0].Value)
		}
		lsns = append(lsns, tx.LSN)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lsns, st
}

// writeGroups writes each list of LSNs as one group (one Writer batch), in
// the order given.
func writeGroups(l *Log, groups ...[]uint64) {
	w := l.NewWriter()
	for _, g := range groups {
		for _, lsn := range g {
			tx := txn(lsn)
			w.Add(&tx)
		}
		w.Commit()
	}
	w.Close()
}

// groupKeys lists the log's groups by their keys (largest LSNs).
func groupKeys(t *testing.T, l *Log) []uint64 {
	t.Helper()
	iter, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGroup}, UpperBound: []byte{prefixGroup + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer iter.Close()
	var keys []uint64
	for iter.First(); iter.Valid(); iter.Next() {
		keys = append(keys, binary.BigEndian.Uint64(iter.Key()[1:]))
	}
	return keys
}

// editFrames rewrites every group with edit applied to each of its
// frames' bodies; edit returns nil to drop the frame.
func editFrames(t *testing.T, l *Log, edit func(lsn uint64, body []byte) []byte) {
	t.Helper()
	iter, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGroup}, UpperBound: []byte{prefixGroup + 1}})
	if err != nil {
		t.Fatal(err)
	}
	b := l.db.NewBatch()
	for iter.First(); iter.Valid(); iter.Next() {
		var group []byte
		parseGroup(iter.Key(), iter.Value(), func(f frame) {
			if body := edit(f.lsn, append([]byte(nil), f.body...)); body != nil {
				group = binary.AppendUvarint(group, f.lsn)
				group = binary.AppendUvarint(group, uint64(len(body)))
				group = append(group, body...)
			}
		})
		b.Set(iter.Key(), group, nil)
	}
	iter.Close()
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func equalLSNs(got []uint64, from, to uint64) bool {
	if uint64(len(got)) != to-from+1 {
		return false
	}
	for i, lsn := range got {
		if lsn != from+uint64(i) {
			return false
		}
	}
	return true
}

// Groups overlap (a group may hold an LSN below the largest of the group
// before it): replay still delivers LSN order, replay after c skips what
// a group holds at or below c, and a checkpoint trims only groups it
// covers whole.
func TestReplayOrdersOverlappingGroups(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	l.Start(0)
	writeGroups(l, []uint64{2, 3}, []uint64{1, 5}, []uint64{4}, []uint64{7, 6})
	if keys := groupKeys(t, l); len(keys) != 4 || keys[0] != 3 || keys[1] != 4 || keys[2] != 5 || keys[3] != 7 {
		t.Fatalf("group keys %v, want their largest LSNs 3 4 5 7", keys)
	}
	if last, err := l.LastLSN(); last != 7 || err != nil {
		t.Fatalf("LastLSN %d, %v", last, err)
	}
	if got, st := replayed(t, l, 0); !equalLSNs(got, 1, 7) || st.Damage != nil || st.First != 1 || st.Last != 7 {
		t.Fatalf("replay from 0: %v %+v", got, st)
	}
	if got, st := replayed(t, l, 2); !equalLSNs(got, 3, 7) || st.Damage != nil {
		t.Fatalf("replay after 2: %v %+v", got, st)
	}
	cw := l.NewCheckpoint(4)
	if err := cw.Finish(); err != nil {
		t.Fatal(err)
	}
	if keys := groupKeys(t, l); len(keys) != 2 || keys[0] != 5 {
		t.Fatalf("after a checkpoint at 4, groups %v, want 5 (holding 1 and 5) and 7", keys)
	}
	if got, st := replayed(t, l, 4); !equalLSNs(got, 5, 7) || st.Damage != nil {
		t.Fatalf("replay after the checkpoint: %v %+v", got, st)
	}
}

// Replay stops exactly after the last good LSN: at a damaged record, at a
// missing one, and at a group whose framing is damaged.
func TestReplayStopsAtDamage(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	l.Start(0)
	writeGroups(l, []uint64{1, 2, 3, 4, 5, 6}, []uint64{7, 8, 9, 10})
	editFrames(t, l, func(lsn uint64, body []byte) []byte {
		switch lsn {
		case 6:
			body[len(body)/2] ^= 0x55
		case 9:
			return nil
		}
		return body
	})
	got, st := replayed(t, l, 0)
	if !equalLSNs(got, 1, 5) || !errors.Is(st.Damage, ErrCorrupt) || st.Last != 5 {
		t.Fatalf("replay over a corrupt LSN 6: %v %+v", got, st)
	}
	got, st = replayed(t, l, 6)
	if !equalLSNs(got, 7, 8) || st.Damage == nil || st.Last != 8 {
		t.Fatalf("replay over a missing LSN 9: %v %+v", got, st)
	}
	l.db.Set(groupKey(12), []byte{0x0b, 0xff}, pebble.Sync) // LSN 11, a length past the end
	got, st = replayed(t, l, 9)
	if !equalLSNs(got, 10, 10) || !errors.Is(st.Damage, ErrCorrupt) {
		t.Fatalf("replay over a group that does not parse: %v %+v", got, st)
	}
}

// After damage, TruncateAfter keeps every frame at or below the last good
// LSN, even in a group keyed above it, and new commits continue the log.
func TestTruncateAfterKeepsEarlierFrames(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	l.Start(0)
	writeGroups(l, []uint64{1, 2}, []uint64{3, 5}, []uint64{4, 7}) // 6 never arrived
	got, st := replayed(t, l, 0)
	if !equalLSNs(got, 1, 5) || st.Damage == nil {
		t.Fatalf("replay over the gap at 6: %v %+v", got, st)
	}
	if err := l.TruncateAfter(st.Last); err != nil {
		t.Fatal(err)
	}
	if keys := groupKeys(t, l); len(keys) != 3 || keys[1] != 4 {
		t.Fatalf("groups after truncating at 5: %v, want 2 4 5 (LSN 4 kept, 7 gone)", keys)
	}
	if last, _ := l.LastLSN(); last != 5 {
		t.Fatalf("LastLSN %d after truncating at 5", last)
	}
	l.Close()

	l = openLog(t, dir)
	defer l.Close()
	l.Start(5)
	writeGroups(l, []uint64{6, 7})
	if got, st := replayed(t, l, 0); !equalLSNs(got, 1, 7) || st.Damage != nil {
		t.Fatalf("replay after new commits: %v %+v", got, st)
	}
}

// A log written one key per transaction (before groups) is rewritten as
// groups when opened, and reads the same.
func TestMigrateLegacyLog(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for lsn := uint64(1); lsn <= 3; lsn++ {
		tx := txn(lsn)
		db.Set(binary.BigEndian.AppendUint64([]byte{'w'}, lsn), appendTxn(nil, &tx), nil)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir)
	defer l.Close()
	if got, st := replayed(t, l, 0); !equalLSNs(got, 1, 3) || st.Damage != nil {
		t.Fatalf("replay of a migrated log: %v %+v", got, st)
	}
	iter, _ := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'w'}, UpperBound: []byte{'w' + 1}})
	defer iter.Close()
	if iter.First() {
		t.Fatalf("legacy key %x left after the migration", iter.Key())
	}
}

// FuzzParseGroup: any input splits into frames within it, or stops at an
// ErrCorrupt, and never panics; a well-formed group reads back its frames.
func FuzzParseGroup(f *testing.F) {
	tx := txn(7)
	g, _ := appendFrame(nil, tx.LSN, tx.ID, tx.Writes, nil)
	f.Add(g)
	f.Add([]byte{})
	f.Add([]byte{0x0b, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var frames []frame
		err := parseGroup([]byte{prefixGroup}, b, func(fr frame) { frames = append(frames, fr) })
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
		size := 0
		for _, fr := range frames {
			size += len(fr.body)
		}
		if size > len(b) {
			t.Fatalf("frames of %d bytes from %d", size, len(b))
		}
		var again []byte
		for _, fr := range frames {
			again = binary.AppendUvarint(again, fr.lsn)
			again = binary.AppendUvarint(again, uint64(len(fr.body)))
			again = append(again, fr.body...)
		}
		var back []frame
		if err := parseGroup([]byte{prefixGroup}, again, func(fr frame) { back = append(back, fr) }); err != nil || len(back) != len(frames) {
			t.Fatalf("re-encoded frames parse to %d of %d: %v", len(back), len(frames), err)
		}
	})
}

// rawGroup encodes txn(lsn) for each lsn as one group's frames.
func rawGroup(lsns ...uint64) []byte {
	var g []byte
	for _, lsn := range lsns {
		tx := txn(lsn)
		g, _ = appendFrame(g, lsn, tx.ID, tx.Writes, nil)
	}
	return g
}

// A group that does not parse does not hide the LSNs a later, overlapping
// group holds: replay goes on as far as the log is gap-free, then reports
// the damage, and TruncateAfter keeps every frame up to there.
func TestReplayPastAGroupThatDoesNotParse(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	l.db.Set(groupKey(6), append(rawGroup(1, 2, 3, 5), 0x06, 0xff), pebble.Sync) // LSN 6: a length past the end
	l.db.Set(groupKey(8), rawGroup(4, 7, 8), pebble.Sync)
	got, st := replayed(t, l, 0)
	if !equalLSNs(got, 1, 5) || !errors.Is(st.Damage, ErrCorrupt) {
		t.Fatalf("replay: %v %+v, want 1-5 and the damage", got, st)
	}
	if err := l.TruncateAfter(st.Last); err != nil {
		t.Fatal(err)
	}
	if got, st := replayed(t, l, 0); !equalLSNs(got, 1, 5) || st.Damage != nil {
		t.Fatalf("replay after TruncateAfter(5): %v %+v", got, st)
	}
}

// TruncateAfter never overwrites a group it keeps: an LSN logged twice
// (damage replay reports) leaves the group already keyed by it whole.
func TestTruncateAfterKeepsAGroupUnderTheSameKey(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	l.db.Set(groupKey(3), rawGroup(1, 2, 3), pebble.Sync)
	l.db.Set(groupKey(10), rawGroup(3, 4, 5, 10), pebble.Sync)
	got, st := replayed(t, l, 0)
	if !equalLSNs(got, 1, 3) || !errors.Is(st.Damage, ErrCorrupt) {
		t.Fatalf("replay over LSN 3 logged twice: %v %+v", got, st)
	}
	if err := l.TruncateAfter(st.Last); err != nil {
		t.Fatal(err)
	}
	if got, st := replayed(t, l, 0); !equalLSNs(got, 1, 3) || st.Damage != nil {
		t.Fatalf("replay after TruncateAfter(3): %v %+v", got, st)
	}
	if keys := groupKeys(t, l); len(keys) != 1 || keys[0] != 3 {
		t.Fatalf("groups %v after TruncateAfter(3), want 3", keys)
	}
}

// Replay up to a bound stops there without calling what lies past it
// damage, over overlapping groups too.
func TestReplayUntilOverOverlappingGroups(t *testing.T) {
	l := openLog(t, t.TempDir())
	defer l.Close()
	l.Start(0)
	writeGroups(l, []uint64{1, 3}, []uint64{2, 5}, []uint64{4, 6})
	var lsns []uint64
	st, err := l.Replay(0, 4, func(tx *Txn) error { lsns = append(lsns, tx.LSN); return nil })
	if err != nil || !equalLSNs(lsns, 1, 4) || st.Damage != nil || st.Last != 4 {
		t.Fatalf("replay until 4: %v %+v %v", lsns, st, err)
	}
}
