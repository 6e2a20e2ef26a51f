package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// postgresTarget is PostgreSQL (Debian's 15) started by the harness:
// initdb into a temporary directory, then postgres on a free loopback port
// with its unix socket in that directory, run as the postgres user when
// the harness is root (postgres refuses root). Records and accounts are
// rows of kv (k text primary key, v bytea). Sync durability is
// synchronous_commit=on, async synchronous_commit=off. A YCSB pipeline is
// one pgx.Batch (its statements in key order: PostgreSQL runs a batch as
// one implicit transaction, and key order keeps two of them from
// deadlocking). A transfer is BEGIN ISOLATION LEVEL SERIALIZABLE, one
// SELECT of both rows, two UPDATEs in one batch, COMMIT; serialization
// failures and deadlocks abort it. The stored-procedure transfer is one
// statement, SELECT transfer(from, to, amount) of the plpgsql function
// pgTransferFunc, on a session whose transactions are SERIALIZABLE; its
// serialization failures and deadlocks abort it the same way, and the
// harness retries and counts them.
type postgresTarget struct {
	env  TargetEnv
	dir  string
	url  string
	cred *syscall.Credential
	proc *process
}

func newPostgres(env TargetEnv) *postgresTarget { return &postgresTarget{env: env} }

func (t *postgresTarget) Name() string { return "postgres" }

func (t *postgresTarget) bin(name string) string { return filepath.Join(t.env.PostgresBin, name) }

func (t *postgresTarget) Check() error {
	for _, name := range []string{"initdb", "postgres"} {
		if err := executable(t.bin(name)); err != nil {
			return skipf("PostgreSQL: %v", err)
		}
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return skipf("PostgreSQL refuses to run as root, and there is no postgres user to run it as: %v", err)
		}
	}
	return nil
}

// credential returns the postgres user's when running as root, else nil.
func (t *postgresTarget) credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func (t *postgresTarget) Start(ctx context.Context, d Durability) error {
	var err error
	if t.cred, err = t.credential(); err != nil {
		return err
	}
	if t.dir, err = os.MkdirTemp("", "bpfdb-bench-postgres-"); err != nil {
		return err
	}
	if t.cred != nil {
		if err := os.Chown(t.dir, int(t.cred.Uid), int(t.cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(t.dir, "data")
	initdb := exec.CommandContext(ctx, t.bin("initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = t.dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: t.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	syncCommit := "on"
	if d == Async {
		syncCommit = "off"
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", t.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "synchronous_commit=" + syncCommit,
		"-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=256MB"}
	t.proc, err = startProcess("postgres", t.bin("postgres"), args, t.dir, t.cred)
	if err != nil {
		return err
	}
	t.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := t.proc.waitReady(ctx, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, t.url)
		if err == nil {
			c.Close(ctx)
		}
		return err
	}); err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, t.url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err = c.Exec(ctx, "CREATE TABLE kv (k text PRIMARY KEY, v bytea NOT NULL)"); err != nil {
		return err
	}
	_, err = c.Exec(ctx, pgTransferFunc)
	return err
}

// pgTransferFunc creates the transfer stored procedure: read both
// balances (decimal text, as FormatBalance writes them), fail on a
// missing account, write both.
const pgTransferFunc = `CREATE FUNCTION transfer(a text, b text, amount bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	va bigint;
	vb bigint;
BEGIN
	SELECT convert_from(v, 'UTF8')::bigint INTO va FROM kv WHERE k = a;
	SELECT convert_from(v, 'UTF8')::bigint INTO vb FROM kv WHERE k = b;
	IF va IS NULL OR vb IS NULL THEN
		RAISE EXCEPTION 'transfer: account not found';
	END IF;
	UPDATE kv SET v = convert_to((va - amount)::text, 'UTF8') WHERE k = a;
	UPDATE kv SET v = convert_to((vb + amount)::text, 'UTF8') WHERE k = b;
END $$`

func (t *postgresTarget) Load(ctx context.Context, pairs []KV) error {
	err := parallelChunks(ctx, len(pairs), 2, 20_000, func(lo, hi int) error {
		c, err := pgx.Connect(ctx, t.url)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		rows := make([][]any, 0, hi-lo)
		for _, kv := range pairs[lo:hi] {
			rows = append(rows, []any{string(kv.Key), kv.Value})
		}
		_, err = c.CopyFrom(ctx, pgx.Identifier{"kv"}, []string{"k", "v"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, t.url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "VACUUM ANALYZE kv")
	return err
}

func (t *postgresTarget) Supports(ctx context.Context, w Workload) error { return nil }

func (t *postgresTarget) Connect(ctx context.Context) (Conn, error) {
	c, err := pgx.Connect(ctx, t.url)
	if err != nil {
		return nil, err
	}
	return &pgConn{c: c}, nil
}

// Stop asks for a fast shutdown (SIGINT).
func (t *postgresTarget) Stop() error {
	var err error
	if t.proc != nil {
		err = t.proc.stop(syscall.SIGINT, time.Minute)
		t.proc = nil
	}
	if t.dir != "" {
		err = errors.Join(err, os.RemoveAll(t.dir))
		t.dir = ""
	}
	return err
}

// pgConn is one client's connection.
type pgConn struct {
	c *pgx.Conn
	// serializable: the session's transactions are SERIALIZABLE (set by
	// the first TransferProc).
	serializable bool
}

const (
	pgRead   = "SELECT v FROM kv WHERE k = $1"
	pgUpdate = "UPDATE kv SET v = $2 WHERE k = $1"
)

// pgRetryable reports a serialization failure or a deadlock.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (c *pgConn) Do(ctx context.Context, ops []Op) (int, error) {
	if len(ops) == 1 {
		err := c.one(ctx, &ops[0], func(sql string, args ...any) pgx.Row { return c.c.QueryRow(ctx, sql, args...) },
			func(sql string, args ...any) (pgconn.CommandTag, error) { return c.c.Exec(ctx, sql, args...) })
		if pgRetryable(err) {
			return 1, nil
		}
		return 0, err
	}
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(x, y int) bool { return string(ops[order[x]].Key) < string(ops[order[y]].Key) })
	b := &pgx.Batch{}
	for _, i := range order {
		if ops[i].Write {
			b.Queue(pgUpdate, string(ops[i].Key), ops[i].Value)
		} else {
			b.Queue(pgRead, string(ops[i].Key))
		}
	}
	br := c.c.SendBatch(ctx, b)
	var err error
	for _, i := range order {
		err = c.one(ctx, &ops[i], func(string, ...any) pgx.Row { return br.QueryRow() },
			func(string, ...any) (pgconn.CommandTag, error) { return br.Exec() })
		if err != nil {
			break
		}
	}
	err = errors.Join(err, br.Close())
	if pgRetryable(err) {
		return len(ops), nil // the batch is one implicit transaction: all of it aborted
	}
	return 0, err
}

// one runs a read or an update through query or exec.
func (c *pgConn) one(ctx context.Context, op *Op, query func(string, ...any) pgx.Row, exec func(string, ...any) (pgconn.CommandTag, error)) error {
	if op.Write {
		tag, err := exec(pgUpdate, string(op.Key), op.Value)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%s: %w", op.Key, ErrNotFound)
		}
		return err
	}
	var v []byte
	err := query(pgRead, string(op.Key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%s: %w", op.Key, ErrNotFound)
	}
	op.Value = v
	return err
}

func (c *pgConn) Transfer(ctx context.Context, from, to []byte, amount int64) error {
	err := c.transfer(ctx, string(from), string(to), amount)
	if pgRetryable(err) {
		return fmt.Errorf("%w: %v", ErrAborted, err)
	}
	return err
}

func (c *pgConn) transfer(ctx context.Context, from, to string, amount int64) error {
	tx, err := c.c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, "SELECT k, v FROM kv WHERE k = ANY($1)", []string{from, to})
	if err != nil {
		return err
	}
	bal := map[string]int64{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		if bal[k], err = ParseBalance(v); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, k := range []string{from, to} {
		if _, ok := bal[k]; !ok {
			return fmt.Errorf("%s: %w", k, ErrNotFound)
		}
	}
	b := &pgx.Batch{}
	b.Queue(pgUpdate, from, FormatBalance(bal[from]-amount))
	b.Queue(pgUpdate, to, FormatBalance(bal[to]+amount))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// TransferProc calls the transfer function: one round trip, one implicit
// SERIALIZABLE transaction.
func (c *pgConn) TransferProc(ctx context.Context, from, to []byte, amount int64) error {
	if !c.serializable {
		if _, err := c.c.Exec(ctx, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"); err != nil {
			return err
		}
		c.serializable = true
	}
	_, err := c.c.Exec(ctx, "SELECT transfer($1, $2, $3)", string(from), string(to), amount)
	if pgRetryable(err) {
		return fmt.Errorf("%w: %v", ErrAborted, err)
	}
	return err
}

// ServerCPU is the CPU time of the postmaster and its backends.
func (t *postgresTarget) ServerCPU() (time.Duration, error) {
	if t.proc == nil {
		return 0, errors.New("not started")
	}
	return processTreeCPU(t.proc.cmd.Process.Pid)
}

// ServerRetries is not ok: PostgreSQL retries nothing itself.
func (t *postgresTarget) ServerRetries(ctx context.Context) (int64, bool, error) {
	return 0, false, nil
}

func (c *pgConn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.c.Close(ctx)
}
