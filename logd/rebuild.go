package logd

// Report is what Rebuild found in a log directory.
type Report struct {
	// Checkpoint is the checkpoint the state starts from (LSN 0: none).
	Checkpoint Checkpoint
	// Replay is what replaying the log after it found, damage included.
	Replay ReplayStats
	// LastLSN is the last commit in the rebuilt state.
	LastLSN uint64
	// Keys is the number of live keys.
	Keys int
	// Expired is the number of keys whose value's deadline had passed at
	// the instant of the rebuild: absent, as to every reader of a store.
	Expired int
}

// EntryKey is a key of a rebuilt state: its database and bytes.
type EntryKey struct {
	DB  int
	Key string
}

// Entry is a key's value in a checkpoint or a rebuilt state, its
// deadline (Unix ms; 0: none) and its type (Write.Type).
type Entry struct {
	Value    []byte
	ExpireAt int64
	Type     uint8
}

// Rebuild reconstructs, in memory, the state a store recovering from l
// would hold, as its readers would see it at now (Unix ms): the newest
// checkpoint, then the log after it up to until (0: all of it), checking
// every checksum and the continuity of LSNs, less the keys whose deadline
// is before now (a store's expired keys, which its expirer deletes). now
// is independent of until: a point-in-time rebuild is judged at now, not
// at the time of its last commit (which the log does not record). It
// stops at the first damage, which the report describes. progress, if not
// nil, is called with the LSNs replayed so far and the last LSN in the log.
func Rebuild(l *Log, until uint64, now int64, progress func(done, total uint64)) (map[EntryKey]Entry, Report, error) {
	var rep Report
	state := map[EntryKey]Entry{}
	cp, ok, err := l.LatestCheckpoint()
	if err != nil {
		return nil, rep, err
	}
	if ok && (until == 0 || cp.LSN <= until) {
		rep.Checkpoint = cp
		err := l.LoadCheckpoint(cp, func(db int, k []byte, e Entry) error {
			e.Value = append([]byte{}, e.Value...)
			state[EntryKey{db, string(k)}] = e
			return nil
		})
		if err != nil {
			return nil, rep, err
		}
	}
	last, err := l.LastLSN()
	if err != nil {
		return nil, rep, err
	}
	if until != 0 {
		last = min(last, until)
	}
	rep.Replay, err = l.Replay(rep.Checkpoint.LSN, until, func(t *Txn) error {
		for _, w := range t.Writes {
			if w.Delete {
				delete(state, EntryKey{w.DB, string(w.Key)})
			} else {
				state[EntryKey{w.DB, string(w.Key)}] = Entry{Value: append([]byte{}, w.Value...), ExpireAt: w.ExpireAt, Type: w.Type}
			}
		}
		if progress != nil && t.LSN%4096 == 0 {
			progress(t.LSN-rep.Checkpoint.LSN, last-rep.Checkpoint.LSN)
		}
		return nil
	})
	if err != nil {
		return nil, rep, err
	}
	rep.LastLSN = max(rep.Replay.Last, rep.Checkpoint.LSN)
	for k, e := range state {
		if e.ExpireAt != 0 && now > e.ExpireAt { // as the store compares (bpf/storage/expiry.h)
			delete(state, k)
			rep.Expired++
		}
	}
	rep.Keys = len(state)
	if progress != nil {
		progress(rep.LastLSN-rep.Checkpoint.LSN, max(last, rep.LastLSN)-rep.Checkpoint.LSN)
	}
	return state, rep, nil
}
