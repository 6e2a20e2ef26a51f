package engine

import (
	"errors"
	"fmt"
)

// Errors returned by the engine. Errors about a limit wrap one of these with
// a message naming the limit; test with errors.Is.
var (
	// ErrNotFound: the key has no value.
	ErrNotFound = errors.New("bpfdb: key not found")
	// ErrConflict: a lock could not be taken at once (no-wait 2PL); the
	// transaction was aborted and may be retried.
	ErrConflict = errors.New("bpfdb: conflict with a concurrent transaction; transaction aborted")
	// ErrKeyTooLong: the key is longer than Options.MaxKeyLen.
	ErrKeyTooLong = errors.New("bpfdb: key too long")
	// ErrValueTooLarge: the value is longer than MaxValueLen.
	ErrValueTooLarge = errors.New("bpfdb: value too large")
	// ErrNoSuchDB: an Op.DB outside 0 to Databases-1.
	ErrNoSuchDB = errors.New("bpfdb: no such database")
	// ErrBadDeadline: an Op.ExpireAt the store cannot hold (negative).
	ErrBadDeadline = errors.New("bpfdb: bad deadline")
	// ErrStoreFull: the index (Options.MaxKeys) or the value store (Options.MaxMemory) is full.
	ErrStoreFull = errors.New("bpfdb: store full")
	// ErrBadOptions: Options that Open cannot honour.
	ErrBadOptions = errors.New("bpfdb: bad options")
	// ErrVersionsFull: every version of the key may still be read by an
	// active snapshot, so none could be reclaimed for the write.
	ErrVersionsFull = errors.New("bpfdb: versions full")
	// ErrTxnTableFull: MaxTxns transactions are already open.
	ErrTxnTableFull = errors.New("bpfdb: transaction table full")
	// ErrWriteSetFull: the transaction touched more than MaxTxnKeys keys.
	ErrWriteSetFull = errors.New("bpfdb: transaction write set full")
	// ErrReadOnly: a write in a read-only transaction.
	ErrReadOnly = errors.New("bpfdb: write in a read-only transaction")
	// ErrTxnDone: the transaction has already committed or aborted.
	ErrTxnDone = errors.New("bpfdb: transaction already ended")
	// ErrTxnExpired: the transaction was idle past Options.TxnTimeout and
	// was aborted, releasing its locks.
	ErrTxnExpired = errors.New("bpfdb: transaction expired and was aborted")
	// ErrLogFull: the log ring had no room for the commit; nothing was
	// applied, and the transaction may be retried.
	ErrLogFull = errors.New("bpfdb: log ring full; transaction aborted, retry")
	// ErrNotDurable: the commit is applied, but its log record could not be
	// written (a full or failing disk) before the log started refusing
	// commits: it is not acknowledged as durable. The log keeps retrying
	// and makes it durable once the disk lets it.
	ErrNotDurable = errors.New("bpfdb: commit not durable: the log cannot be written")
	// ErrLogUnavailable: the log cannot take writes now (a full or failing
	// disk, a write stalled), so the commit was refused before anything
	// was applied. The error names the cause; reads keep working, and
	// writes are taken again, by themselves, once the log writes again.
	ErrLogUnavailable = errors.New("bpfdb: writes refused: the log cannot take them")
	// ErrNotInteger: OpIncr of a value that is not a decimal int64.
	ErrNotInteger = errors.New("bpfdb: value is not an integer or out of range")
	// ErrWrongType: an op that reads a value as a string (OpIncr, the
	// Engine.Get family) met one of another type (Op.Type). Redis's
	// WRONGTYPE.
	ErrWrongType = errors.New("bpfdb: the key holds a value of another type than a string")
	// ErrOverflow: OpIncr whose sum is out of the int64 range.
	ErrOverflow = errors.New("bpfdb: increment or decrement would overflow")
	// ErrQuiesced: a checkpoint's gate refused a new writer; retry.
	ErrQuiesced = errors.New("bpfdb: closed for a checkpoint, retry")
	// ErrAborted: the operation was skipped because an earlier operation of
	// its transaction failed and aborted it.
	ErrAborted = errors.New("bpfdb: skipped, the transaction was aborted by an earlier operation")
	// ErrNotPermitted: the process may not load BPF programs.
	ErrNotPermitted = errors.New("bpfdb: loading BPF programs needs root (CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)")
	// ErrBatchTooLarge: more operations than fit in one transaction request.
	ErrBatchTooLarge = errors.New("bpfdb: too many operations")
	// ErrClosed: the engine is closed.
	ErrClosed = errors.New("bpfdb: engine closed")
	// ErrInternal: the chain reported a state that should be impossible.
	ErrInternal = errors.New("bpfdb: internal error")

	// errRetry: a lock-free reader raced an installer, or a commit lost
	// its timestamp race; the op is re-run. Never returned to a caller:
	// a budget that runs out returns ErrConflict.
	errRetry = errors.New("bpfdb: transient race, retry")
	// errTxnInvalid: the kernel's transaction slot does not match the caller.
	errTxnInvalid = errors.New("bpfdb: transaction is not open in the kernel")
)

// retryableErrors are the errors after which nothing was applied and the
// same operation or transaction, run again, may succeed.
var retryableErrors = []error{errRetry, ErrConflict, ErrVersionsFull, ErrLogFull, ErrQuiesced,
	ErrTxnTableFull, ErrTxnExpired, ErrAborted}

// Retryable reports whether err (from any call of the engine) means that
// nothing was applied and that running the same autocommit operation, or
// the whole transaction, again may succeed: a no-wait conflict, a full
// version array or log ring, a checkpoint's gate, a full transaction
// table, an expired transaction, an op skipped after one of these. It is
// the one definition the engine, the server and the bench retry by.
// ErrLogUnavailable is not retryable: it lasts until the disk is mended.
func Retryable(err error) bool {
	if err == nil || err == ErrNotFound { // nearly every op: skip errors.Is's walk
		return false
	}
	for _, target := range retryableErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func (e *Engine) keyTooLong(n int) error {
	return fmt.Errorf("%w: key is %d bytes, the limit is %d (Options.MaxKeyLen)", ErrKeyTooLong, n, e.opts.MaxKeyLen)
}

func (e *Engine) valueTooLarge(n int) error {
	return fmt.Errorf("%w: value is %d bytes, the limit is %d (Options.MaxValueLen)", ErrValueTooLarge, n, e.opts.MaxValueLen)
}

func (e *Engine) checkKeyValue(key, value []byte, write bool) error {
	if err := e.CheckKey(key); err != nil {
		return err
	}
	if write {
		return e.CheckValue(value)
	}
	return nil
}

// CheckKey returns ErrKeyTooLong, naming the limit, for a key longer than
// MaxKeyLen: what any call with key would fail with.
func (e *Engine) CheckKey(key []byte) error {
	if len(key) > e.opts.MaxKeyLen {
		return e.keyTooLong(len(key))
	}
	return nil
}

// MaxKeyLen is the longest key the store takes (Options.MaxKeyLen).
func (e *Engine) MaxKeyLen() int { return e.opts.MaxKeyLen }

// CheckValue returns ErrValueTooLarge, naming the limit, for a value longer
// than MaxValueLen.
func (e *Engine) CheckValue(value []byte) error {
	if len(value) > e.opts.MaxValueLen {
		return e.valueTooLarge(len(value))
	}
	return nil
}

// MaxValueLen is the longest value the store takes (Options.MaxValueLen).
func (e *Engine) MaxValueLen() int { return e.opts.MaxValueLen }

// statusError turns an op status from the chain into an error (nil for OK).
func (e *Engine) statusError(status int32, detail uint8) error {
	switch chainBpfdbStatus(status) {
	case chainBpfdbStatusBPFDB_OK:
		return nil
	case chainBpfdbStatusBPFDB_ERR_NOT_FOUND:
		return ErrNotFound
	case chainBpfdbStatusBPFDB_ERR_CONFLICT:
		return ErrConflict
	case chainBpfdbStatusBPFDB_ERR_KEY_TOO_LONG:
		return fmt.Errorf("%w: the limit is %d bytes (Options.MaxKeyLen)", ErrKeyTooLong, e.opts.MaxKeyLen)
	case chainBpfdbStatusBPFDB_ERR_VALUE_TOO_LARGE:
		return fmt.Errorf("%w: the limit is %d bytes (Options.MaxValueLen)", ErrValueTooLarge, e.opts.MaxValueLen)
	case chainBpfdbStatusBPFDB_ERR_STORE_FULL:
		if detail == uint8(chainBpfdbFullDetailBPFDB_FULL_INDEX) || int(detail) >= SlabClasses {
			return fmt.Errorf("%w: the index holds at most %d keys (Options.MaxKeys)", ErrStoreFull, e.opts.MaxKeys)
		}
		return fmt.Errorf("%w: no memory left for a %d-byte value slot: the value store's %d pages of %d bytes are in use (Options.MaxMemory, %d bytes)",
			ErrStoreFull, SlabSize(int(detail)), e.valuePages(), PageSize, e.opts.MaxMemory)
	case chainBpfdbStatusBPFDB_ERR_VERSIONS_FULL:
		return fmt.Errorf("%w: all %d versions of the key may still be read by active snapshots (BPFDB_MAX_VERSIONS)", ErrVersionsFull, MaxVersions)
	case chainBpfdbStatusBPFDB_ERR_WRITE_SET_FULL:
		return fmt.Errorf("%w: a transaction may touch at most %d keys (BPFDB_MAX_TXN_KEYS)", ErrWriteSetFull, MaxTxnKeys)
	case chainBpfdbStatusBPFDB_ERR_READ_ONLY:
		return ErrReadOnly
	case chainBpfdbStatusBPFDB_ERR_RETRY:
		return errRetry
	case chainBpfdbStatusBPFDB_ERR_TXN_INVALID:
		return errTxnInvalid
	case chainBpfdbStatusBPFDB_ERR_ABORTED:
		return ErrAborted
	case chainBpfdbStatusBPFDB_ERR_LOG_FULL:
		return fmt.Errorf("%w: the ring holds %d bytes (Options.LogRingBytes)", ErrLogFull, e.maps.WalRing.MaxEntries())
	case chainBpfdbStatusBPFDB_ERR_QUIESCED:
		return ErrQuiesced
	case chainBpfdbStatusBPFDB_ERR_LOG_REFUSED:
		return e.logRefusedError()
	case chainBpfdbStatusBPFDB_ERR_LAYOUT:
		return fmt.Errorf("%w: the program was built for another layout than %#x, or the store is not open", ErrLayout, LayoutVersion)
	case chainBpfdbStatusBPFDB_ERR_TXN_TABLE_FULL:
		return fmt.Errorf("%w: all %d kernel transaction slots are in use (BPFDB_KERNEL_TXNS)", ErrTxnTableFull, KernelTxns)
	case chainBpfdbStatusBPFDB_ERR_NOT_INTEGER:
		if detail == uint8(chainBpfdbFullDetailBPFDB_DETAIL_OVERFLOW) {
			return ErrOverflow
		}
		if detail == uint8(chainBpfdbFullDetailBPFDB_DETAIL_WRONG_TYPE) {
			return ErrWrongType
		}
		return ErrNotInteger
	case chainBpfdbStatusBPFDB_ERR_WRONG_TYPE:
		return ErrWrongType
	default:
		return fmt.Errorf("%w: chain status %d", ErrInternal, status)
	}
}
