package logd

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

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
	w.Close(time.Time{})
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
				group = appendRawFrame(group, f.lsn, body)
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
	if keys := groupKeys(t, l); len(keys) != 2 || keys[0] != 2 || keys[1] != 5 {
		t.Fatalf("groups after truncating at 5: %v, want 2 and 5 (3, 4 and 5 kept in one, 7 gone)", keys)
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
			again = appendRawFrame(again, fr.lsn, fr.body)
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

// Damage, as recovery meets it: replay stops exactly after the last good
// LSN (reporting damage unless nothing is lost), TruncateAfter keeps every
// LSN up to there, and the next replay, with new commits after them, is
// whole. Groups are written raw, damage included.
func TestRecoverFromDamage(t *testing.T) {
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	badFrame := func(lsn uint64) []byte { // parses; its checksum fails
		g := rawGroup(lsn)
		g[len(g)-3] ^= 0x55
		return g
	}
	unparsable := func(lsn uint64) []byte { return []byte{byte(lsn), 0xff} } // a length past the end
	relabel := func(frame []byte, lsn uint64) []byte {                       // the frame, its LSN byte changed
		return append([]byte{byte(lsn)}, frame[1:]...)
	}
	type group struct {
		key    uint64
		frames []byte
	}
	for _, tc := range []struct {
		name   string
		groups []group
		last   uint64 // where the first replay stops
		damage bool   // and whether it reports damage
	}{
		{"a group that does not parse hides nothing a later one holds",
			[]group{{6, cat(rawGroup(1, 2, 3, 5), unparsable(6))}, {8, rawGroup(4, 7, 8)}}, 5, true},
		{"an LSN logged twice, the copy in a group keyed above",
			[]group{{3, rawGroup(1, 2, 3)}, {10, rawGroup(3, 4, 5, 10)}}, 5, true},
		{"an LSN logged twice, below the largest kept",
			[]group{{3, rawGroup(1, 2, 3)}, {10, rawGroup(2, 4, 5, 10)}}, 5, true},
		{"an LSN logged twice in one group",
			[]group{{3, cat(rawGroup(1, 2, 3), rawGroup(2))}, {5, rawGroup(4, 5)}}, 5, false},
		{"an LSN logged twice in the group keyed by it",
			[]group{{2, rawGroup(1, 2)}, {3, rawGroup(3, 3)}, {5, rawGroup(4, 5)}}, 5, false},
		{"a group keyed above the LSNs it holds",
			[]group{{3, rawGroup(1, 3)}, {9, rawGroup(2)}}, 3, false},
		{"a damaged copy of an LSN in an earlier group than its good copy",
			[]group{{2, cat(rawGroup(1), badFrame(2))}, {3, rawGroup(2, 3)}, {6, rawGroup(4, 5, 6)}}, 6, false},
		{"a frame whose LSN was damaged to one already replayed",
			[]group{{3, rawGroup(1, 2, 3)}, {6, cat(rawGroup(4), relabel(badFrame(5), 2), rawGroup(5, 6))}}, 6, false},
		{"garbage after the frames of a group below the end loses nothing",
			[]group{{3, cat(rawGroup(1, 2, 3), unparsable(9))}, {6, rawGroup(4, 5, 6)}}, 6, false},
		{"a bad checksum, then a group that does not parse",
			[]group{{3, rawGroup(1, 2, 3)}, {6, cat(rawGroup(4), badFrame(5), rawGroup(6))}, {8, cat(rawGroup(7), unparsable(8))}}, 4, true},
		{"several groups that do not parse",
			[]group{{4, cat(rawGroup(1, 2, 4), []byte{3})}, {6, cat(rawGroup(3, 5), unparsable(6))}, {9, rawGroup(6, 7, 9)}}, 7, true},
		{"damage in the first group",
			[]group{{3, cat(rawGroup(1), badFrame(2), rawGroup(3))}, {5, rawGroup(4, 5)}}, 1, true},
		{"a first group that does not parse at all",
			[]group{{3, unparsable(1)}, {5, rawGroup(4, 5)}}, 0, true},
		{"a gap, then a group that does not parse",
			[]group{{2, rawGroup(1, 2)}, {5, rawGroup(4, 5)}, {7, cat(rawGroup(6), unparsable(7))}}, 2, true},
		{"a damaged copy of an LSN before its good copy in a group",
			[]group{{3, cat(rawGroup(1), badFrame(2), rawGroup(3, 2))}}, 3, false},
		{"the duplicate's group keyed at the largest kept, with garbage",
			[]group{{3, cat(rawGroup(1, 2, 3), unparsable(4))}, {10, rawGroup(3, 4, 10)}}, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLog(t, t.TempDir())
			defer l.Close()
			for _, g := range tc.groups {
				l.db.Set(groupKey(g.key), g.frames, pebble.Sync)
			}
			// recoverLog replays as engine/recover.go does, truncating
			// after damage or below a key past what it reached.
			recoverLog := func() ([]uint64, ReplayStats) {
				t.Helper()
				last, err := l.LastLSN()
				if err != nil {
					t.Fatal(err)
				}
				got, st := replayed(t, l, 0)
				if st.Damage != nil || last > st.Last {
					if err := l.TruncateAfter(st.Last); err != nil {
						t.Fatal(err)
					}
				}
				return got, st
			}
			got, st := recoverLog()
			if st.Last != tc.last || !equalLSNs(got, 1, tc.last) || (st.Damage != nil) != tc.damage {
				t.Fatalf("replay: %v, last %d, damage %v; want 1-%d, damage %v", got, st.Last, st.Damage, tc.last, tc.damage)
			}
			if got, st := replayed(t, l, 0); !equalLSNs(got, 1, tc.last) || st.Damage != nil {
				t.Fatalf("replay after recovery: %v, damage %v", got, st.Damage)
			}
			// New commits continue the log, in overlapping groups reaching
			// past every key the damage left, and survive the next
			// recoveries.
			l.Start(tc.last)
			var groups [][]uint64
			for lsn := tc.last + 1; lsn <= tc.last+12; lsn += 2 {
				groups = append(groups, []uint64{lsn + 1, lsn})
			}
			writeGroups(l, groups...)
			for i := 0; i < 2; i++ {
				if got, st := recoverLog(); !equalLSNs(got, 1, tc.last+12) || st.Damage != nil {
					t.Fatalf("recovery %d with new commits: %v, damage %v", i+2, got, st.Damage)
				}
			}
		})
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
	// Damage past the bound is not reported, even in the group that
	// reaches it.
	l.db.Set(groupKey(9), append(rawGroup(7, 8), 9, 0xff), pebble.Sync)
	for _, until := range []uint64{6, 8} {
		lsns = nil
		st, err = l.Replay(0, until, func(tx *Txn) error { lsns = append(lsns, tx.LSN); return nil })
		if err != nil || !equalLSNs(lsns, 1, until) || st.Damage != nil {
			t.Fatalf("replay until %d, damage at 9: %v %+v %v", until, lsns, st, err)
		}
	}
}
