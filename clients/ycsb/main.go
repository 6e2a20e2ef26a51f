// Command ycsb runs YCSB through go-ycsb (github.com/pingcap/go-ycsb) against a
// Redis-protocol server such as bpfdb, with go-ycsb's own packages: its core
// workload (pkg/workload), client (pkg/client), measurements
// (pkg/measurement) and redis database (db/redis), which by default keeps a
// record as a hash: HSET to insert and update, HMGET to read.
//
// It is go-ycsb's `go-ycsb load redis` and `go-ycsb run redis` with only the
// redis database linked in (go-ycsb's own command links every database it
// knows, some needing C libraries), taking one or more phases in order:
//
//	ycsb load run -P workloada -p redis.addr=127.0.0.1:6380 [-p name=value]... [--threads n]
//
// -P names a properties file (workloada here is YCSB's workload A: 50%
// reads, 50% updates, zipfian requests, 10 fields of 100 bytes), -p sets one
// property, and --threads, --target, --interval and --table are go-ycsb's
// flags. Each phase prints its properties and go-ycsb's measurement summary.
//
// Unlike go-ycsb it exits non-zero when an operation failed or a phase
// did fewer operations than asked (an interrupt), so a run cannot pass
// with errors only in its summary. go-ycsb's redis database drops the
// error of a hash read (HMGET), returning an empty record: a read of a
// record the load phase wrote (keys 0 to recordcount-1) that comes back
// short is therefore counted as a READ error here too. (go-ycsb's zipfian
// request generator also picks key recordcount, which no phase loads, so
// reads of keys outside the table are not judged.)
//
// go-ycsb's HTTP pprof listener (debug.pprof) is not started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/magiconair/properties"
	_ "github.com/pingcap/go-ycsb/db/redis" // registers "redis"
	"github.com/pingcap/go-ycsb/pkg/client"
	"github.com/pingcap/go-ycsb/pkg/measurement"
	"github.com/pingcap/go-ycsb/pkg/prop"
	"github.com/pingcap/go-ycsb/pkg/util"
	_ "github.com/pingcap/go-ycsb/pkg/workload" // registers "core"
	"github.com/pingcap/go-ycsb/pkg/ycsb"
)

// listFlag is a repeatable string flag (-P and -p).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	files, values listFlag
	flags         *flag.FlagSet
	threads       int
	target        int
	interval      int
	table         string
}

func main() {
	fs := flag.NewFlagSet("ycsb", flag.ContinueOnError)
	o := &options{flags: fs}
	fs.Var(&o.files, "P", "a properties file (repeatable)")
	fs.Var(&o.values, "p", "a property, name=value (repeatable)")
	fs.IntVar(&o.threads, "threads", 1, `client threads (the "threadcount" property)`)
	fs.IntVar(&o.target, "target", 0, `operations a second, 0 for no limit (the "target" property)`)
	fs.IntVar(&o.interval, "interval", 10, "seconds between interim summaries")
	fs.StringVar(&o.table, "table", "", `the table name (default "`+prop.TableNameDefault+`")`)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: ycsb load|run [load|run]... [-P file]... [-p name=value]... [flags]\n")
		fs.PrintDefaults()
	}

	args := os.Args[1:]
	var phases []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		phases = append(phases, args[0])
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 || len(phases) == 0 {
		fs.Usage()
		os.Exit(2)
	}
	for _, ph := range phases {
		if ph != "load" && ph != "run" {
			fmt.Fprintf(os.Stderr, "ycsb: unknown phase %q: load or run\n", ph)
			os.Exit(2)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	failed := false
	for _, ph := range phases {
		if err := runPhase(ctx, ph, o); err != nil {
			fmt.Fprintf(os.Stderr, "ycsb: %s: %v\n", ph, err)
			failed = true
			break
		}
	}
	if failed {
		os.Exit(1)
	}
}

// properties builds a phase's properties the way go-ycsb's initialGlobal and
// runClientCommandFunc do: the -P files, then the -p values, then the phase
// and the flags given.
func (o *options) properties(phase string) (*properties.Properties, error) {
	p := properties.NewProperties()
	if len(o.files) > 0 {
		var err error
		if p, err = properties.LoadFiles(o.files, properties.UTF8, false); err != nil {
			return nil, err
		}
	}
	for _, v := range o.values {
		name, value, ok := strings.Cut(v, "=")
		if !ok {
			return nil, fmt.Errorf("bad property %q, expected name=value", v)
		}
		p.Set(name, value)
	}
	set := map[string]bool{}
	o.flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	p.Set(prop.DoTransactions, strconv.FormatBool(phase == "run"))
	p.Set(prop.Command, phase)
	// go-ycsb sets threadcount only from --threads; its redis database
	// MustGetInt's it, so it is set to the client's default of 1 if absent.
	if _, ok := p.Get(prop.ThreadCount); set["threads"] || !ok {
		p.Set(prop.ThreadCount, strconv.Itoa(o.threads))
	}
	if set["target"] {
		p.Set(prop.Target, strconv.Itoa(o.target))
	}
	if set["interval"] {
		p.Set(prop.LogInterval, strconv.Itoa(o.interval))
	}
	table := o.table
	if table == "" {
		table = p.GetString(prop.TableName, prop.TableNameDefault)
	}
	p.Set(prop.TableName, table)
	return p, nil
}

// runPhase loads or runs the workload once, prints go-ycsb's summary and
// says whether every operation asked for was done without error.
func runPhase(ctx context.Context, phase string, o *options) error {
	p, err := o.properties(phase)
	if err != nil {
		return err
	}
	measurement.InitMeasure(p)

	workloadName := p.GetString(prop.Workload, "core")
	wc := ycsb.GetWorkloadCreator(workloadName)
	if wc == nil {
		return fmt.Errorf("workload %s is not registered", workloadName)
	}
	workload, err := wc.Create(p)
	if err != nil {
		return fmt.Errorf("create workload %s: %v", workloadName, err)
	}
	defer workload.Close()
	db, err := ycsb.GetDBCreator("redis").Create(p)
	if err != nil {
		return fmt.Errorf("create db redis: %v", err)
	}
	cdb := &checkedDB{DB: db}
	if phase == "run" && p.GetString("redis.datatype", "hash") == "hash" {
		cdb.table = newTable(p)
	}
	wrapped := client.DbWrapper{DB: cdb}
	defer wrapped.Close()

	fmt.Println("***************** properties *****************")
	m := p.Map()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("%q=%q\n", k, m[k])
	}
	fmt.Println("**********************************************")

	start := time.Now()
	client.NewClient(p, workload, wrapped).Run(ctx)
	fmt.Println("**********************************************")
	fmt.Printf("Run finished, takes %s\n", time.Since(start))
	measurement.Output()

	var want int64
	if phase == "run" {
		want = p.GetInt64(prop.OperationCount, 0)
	} else if _, ok := p.Get(prop.InsertCount); ok {
		want = p.GetInt64(prop.InsertCount, 0)
	} else {
		want = p.GetInt64(prop.RecordCount, 0)
	}
	return cdb.report(phase, want, ctx.Err())
}

// table tells the keys the load phase wrote: key numbers 0 to
// recordcount-1 named as the core workload's buildKeyName names them
// (hashed unless insertorder is "ordered"). It exists only for hash
// records, where a short read is the only trace of an error.
type table struct {
	prefix string
	n      int64
	hashed []int64 // sorted util.Hash64 of 0..n-1, when the keys are hashed
}

func newTable(p *properties.Properties) *table {
	t := &table{
		prefix: p.GetString(prop.KeyPrefix, prop.KeyPrefixDefault),
		n:      p.GetInt64(prop.RecordCount, prop.RecordCountDefault),
	}
	if t.n <= 0 {
		return nil // the core workload takes 0 as "unbounded": nothing to judge by
	}
	if p.GetString(prop.InsertOrder, prop.InsertOrderDefault) == "hashed" {
		t.hashed = make([]int64, t.n)
		for i := range t.hashed {
			t.hashed[i] = util.Hash64(int64(i))
		}
		slices.Sort(t.hashed)
	}
	return t
}

// loaded says whether key is one of the records the load phase wrote.
func (t *table) loaded(key string) bool {
	s, ok := strings.CutPrefix(key, t.prefix)
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false
	}
	if t.hashed == nil {
		return v >= 0 && v < t.n
	}
	_, found := slices.BinarySearch(t.hashed, v)
	return found
}

// Operation kinds counted by checkedDB.
const (
	opRead = iota
	opUpdate
	opInsert
	opDelete
	opScan
	nOps
)

var opNames = [nOps]string{"READ", "UPDATE", "INSERT", "DELETE", "SCAN"}

type opCount struct {
	done, errs atomic.Int64
	once       sync.Once
	first      error
}

// checkedDB is go-ycsb's redis database with every operation and error
// counted. It sits under client.DbWrapper, so an error it adds (a short
// hash read) is measured as X_ERROR in go-ycsb's summary as well.
type checkedDB struct {
	ycsb.DB
	table   *table // nil: reads are not checked for shortness
	ops     [nOps]opCount
	outside atomic.Int64 // reads of keys the load phase did not write
}

func (c *checkedDB) count(op int, err error) error {
	oc := &c.ops[op]
	oc.done.Add(1)
	if err != nil {
		oc.errs.Add(1)
		oc.once.Do(func() { oc.first = err })
	}
	return err
}

func (c *checkedDB) Read(ctx context.Context, tbl, key string, fields []string) (map[string][]byte, error) {
	data, err := c.DB.Read(ctx, tbl, key, fields)
	if err == nil && c.table != nil && len(data) < len(fields) {
		if c.table.loaded(key) {
			err = fmt.Errorf("read %s/%s: %d of the %d fields asked for (go-ycsb's redis db drops HMGET errors)",
				tbl, key, len(data), len(fields))
		} else {
			c.outside.Add(1)
		}
	}
	return data, c.count(opRead, err)
}

func (c *checkedDB) Scan(ctx context.Context, tbl, startKey string, n int, fields []string) ([]map[string][]byte, error) {
	rows, err := c.DB.Scan(ctx, tbl, startKey, n, fields)
	return rows, c.count(opScan, err)
}

func (c *checkedDB) Update(ctx context.Context, tbl, key string, values map[string][]byte) error {
	return c.count(opUpdate, c.DB.Update(ctx, tbl, key, values))
}

func (c *checkedDB) Insert(ctx context.Context, tbl, key string, values map[string][]byte) error {
	return c.count(opInsert, c.DB.Insert(ctx, tbl, key, values))
}

func (c *checkedDB) Delete(ctx context.Context, tbl, key string) error {
	return c.count(opDelete, c.DB.Delete(ctx, tbl, key))
}

// report prints the phase's operation and error counts and returns an
// error if any operation failed or fewer than want were done.
func (c *checkedDB) report(phase string, want int64, interrupted error) error {
	var done, errs int64
	var parts []string
	var firsts []string
	for i := range c.ops {
		oc := &c.ops[i]
		d, e := oc.done.Load(), oc.errs.Load()
		if d == 0 {
			continue
		}
		done += d
		errs += e
		parts = append(parts, fmt.Sprintf("%s %d (%d errors)", opNames[i], d, e))
		if oc.first != nil {
			firsts = append(firsts, fmt.Sprintf("first %s error: %v", opNames[i], oc.first))
		}
	}
	fmt.Printf("ycsb %s: %d operations: %s", phase, done, strings.Join(parts, ", "))
	if n := c.outside.Load(); n > 0 {
		fmt.Printf("; %d reads of keys outside the loaded table (not judged)", n)
	}
	fmt.Println()
	for _, f := range firsts {
		fmt.Println(f)
	}
	switch {
	case errs > 0:
		return fmt.Errorf("%d of %d operations failed", errs, done)
	case interrupted != nil:
		return fmt.Errorf("interrupted after %d of %d operations: %v", done, want, interrupted)
	case done < want:
		return fmt.Errorf("%d operations done, %d asked for", done, want)
	}
	return nil
}
