// Command bpfdb runs the bpfdb transactional key-value store, whose storage
// and concurrency control run inside the kernel as BPF programs. The
// command line is built with github.com/spf13/cobra.
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/mcudp"
	"github.com/bpfdb/bpfdb/mcxdp"
	"github.com/bpfdb/bpfdb/server"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "bpfdb",
		Short:         "A transactional key-value store that runs inside the Linux kernel as BPF programs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), recoverCmd(), walCmd(), checkpointCmd(), versionCmd())
	root.AddCommand(benchCmd())
	return root
}

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bpfdb:", trimPrefix(err))
		os.Exit(1)
	}
}

func trimPrefix(err error) string {
	msg := err.Error()
	if len(msg) > 7 && msg[:7] == "bpfdb: " {
		return msg[7:]
	}
	return msg
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the compiled-in limits",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Printf("bpfdb %s (keys up to %d bytes and values up to %d bytes by default, %d versions per key, %d ops per run)\n",
				version, engine.DefaultMaxKeyLen, engine.DefaultMaxValueLen, engine.MaxVersions, engine.MaxBatch)
		},
	}
}

func parseDurability(s string) (engine.Durability, error) {
	switch s {
	case "sync":
		return engine.Sync, nil
	case "async":
		return engine.Async, nil
	}
	return 0, fmt.Errorf("--durability must be sync or async, not %q", s)
}

// openEngine opens the store in dir, showing recovery progress on stderr,
// and says in one line what is missing when it may not load BPF programs.
func openEngine(opts engine.Options) (*engine.Engine, error) {
	bar := newProgress("recovering")
	opts.Progress = bar.update
	e, err := engine.Open(opts)
	bar.finish()
	if errors.Is(err, engine.ErrNotPermitted) {
		fmt.Fprintln(os.Stderr, "bpfdb: needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN) to load its BPF programs")
		os.Exit(1)
	}
	return e, err
}

func describeRecovery(r engine.Recovery) string {
	msg := fmt.Sprintf("recovered to LSN %d (checkpoint at LSN %d with %d keys, %d transactions replayed)",
		r.LSN, r.Checkpoint.LSN, r.Checkpoint.Entries, r.Replay.Txns)
	if r.Replay.Damage != nil {
		msg += fmt.Sprintf("; log damaged after LSN %d: %v (the damaged tail was dropped)", r.LSN, r.Replay.Damage)
	}
	return msg
}

// engineFS, when set, is the file system under serve's log: the tests
// inject disk faults through it (fault_test.go).
var engineFS vfs.FS

func serveCmd() *cobra.Command {
	var (
		dir                string
		listen             string
		unixPath           string
		metricsAddr        string
		durability         string
		syncInterval       time.Duration
		maxKeys            int
		maxMemory          string
		maxValueLen        string
		maxKeyLen          string
		requirePass        string
		maxClients         int
		scriptInstructions int64
		minFree            int64
		stopTimeout        time.Duration
		pinDir             string
		udpPort            int
		xdpIface           string
		xdpMode            string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the store over the Redis protocol (RESP)",
		RunE: func(cmd *cobra.Command, args []string) error {
			serverGC()
			d, err := parseDurability(durability)
			if err != nil {
				return err
			}
			budget, err := parseMemory(maxMemory)
			if err != nil {
				return err
			}
			valueLen, err := parseMaxValueLen(maxValueLen)
			if err != nil {
				return err
			}
			keyLen, err := parseMaxKeyLen(maxKeyLen)
			if err != nil {
				return err
			}
			e, err := openEngine(engine.Options{MaxKeys: maxKeys, MaxMemory: budget, MaxKeyLen: keyLen, MaxValueLen: valueLen, Dir: dir, Durability: d,
				SyncInterval: syncInterval, MinFreeBytes: minFree, CloseTimeout: stopTimeout / 2, FS: engineFS, PinDir: pinDir})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "bpfdb %s: %s: %s\n", version, dir, describeRecovery(e.Recovery()))
			var mc *mcudp.Server
			var mcStats *mcudp.Stats
			var fe *mcxdp.Frontend
			if xdpIface != "" && udpPort == 0 {
				udpPort = 11211
			}
			if udpPort > 0 {
				host, _, _ := net.SplitHostPort(listen)
				if xdpIface != "" {
					host = "" // what XDP passes up is addressed to the interface
				}
				if mc, err = mcudp.Listen(e, net.JoinHostPort(host, strconv.Itoa(udpPort)), version); err != nil {
					e.Close()
					return err
				}
				mcStats = mc.Stats()
				go mc.Serve()
				fmt.Fprintf(os.Stderr, "bpfdb %s: memcached UDP on %s\n", version, mc.Addr())
			}
			if xdpIface != "" {
				mode, err := mcxdp.ParseMode(xdpMode)
				if err == nil {
					fe, err = mcxdp.Attach(e, mcxdp.Config{Interface: xdpIface, Port: udpPort, Mode: mode})
				}
				if err != nil {
					if mc != nil {
						mc.Close()
					}
					e.Close()
					return err
				}
				fmt.Fprintf(os.Stderr, "bpfdb %s: memcached gets answered in XDP on %s, port %d\n", version, xdpIface, udpPort)
			}
			// The memcached front ends stop before the engine closes.
			stopMemcache := func() {
				if fe != nil {
					fe.Close()
				}
				if mc != nil {
					mc.Close()
				}
			}
			srv, err := server.New(e, server.Config{
				Addr: listen, Unix: unixPath, RequirePass: requirePass, MaxClients: maxClients, ScriptInstructionLimit: scriptInstructions, Version: version,
				Memcache: mcStats, MemcacheXDP: fe,
			})
			if err != nil {
				stopMemcache()
				e.Close()
				return err
			}
			var metricsSrv *http.Server
			if metricsAddr != "" {
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					stopMemcache()
					e.Close()
					return fmt.Errorf("metrics: listening on %s: %w", metricsAddr, err)
				}
				mux := http.NewServeMux()
				mux.Handle("/metrics", srv.MetricsHandler())
				mux.HandleFunc("/debug/pprof/", pprof.Index)
				mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
				metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
				go metricsSrv.Serve(ln)
				fmt.Fprintf(os.Stderr, "bpfdb %s: metrics on http://%s/metrics\n", version, ln.Addr())
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve() }()
			where := listen
			if unixPath != "" {
				where = strings.TrimPrefix(where+" and "+unixPath, " and ")
			}
			fmt.Fprintf(os.Stderr, "bpfdb %s: serving RESP on %s (max %d keys, maxmemory %d bytes, keys up to %d bytes, values up to %d bytes, %s durability)\n",
				version, where, e.Options().MaxKeys, e.Options().MaxMemory, e.MaxKeyLen(), e.MaxValueLen(), durability)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			select {
			case s := <-sig:
				fmt.Fprintf(os.Stderr, "bpfdb: %v: finishing in-flight commands, checkpointing and stopping (within %v)\n", s, stopTimeout)
			case <-srv.ShutdownRequested():
				fmt.Fprintf(os.Stderr, "bpfdb: SHUTDOWN: finishing in-flight commands, checkpointing and stopping (within %v)\n", stopTimeout)
			}
			// Half the bound for the connections' last commands, half for
			// the checkpoint and the log (engine.Options.CloseTimeout).
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout/2)
			defer cancel()
			srv.Shutdown(ctx)
			<-served
			if metricsSrv != nil {
				metricsSrv.Shutdown(ctx)
			}
			stopMemcache()
			if err := e.Close(); err != nil {
				if errors.Is(err, engine.ErrNotDurable) {
					return fmt.Errorf("stopped with commits that are not on disk (never acknowledged; the next start recovers every acknowledged one): %w", err)
				}
				return fmt.Errorf("stopping: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./data", "data directory (log and checkpoints)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:6380", "TCP address to serve RESP on (\"\" for none)")
	cmd.Flags().StringVar(&unixPath, "unix", "", "unix socket to serve RESP on as well")
	cmd.Flags().StringVar(&metricsAddr, "metrics", "127.0.0.1:9380", "address of the Prometheus /metrics endpoint, and of Go's /debug/pprof (\"\" for none)")
	cmd.Flags().StringVar(&durability, "durability", "sync", "sync: acknowledge a commit once it is on disk; async: at once")
	cmd.Flags().DurationVar(&syncInterval, "sync-interval", 10*time.Millisecond, "with async durability, the most a crash can lose")
	cmd.Flags().IntVar(&maxKeys, "max-keys", 1<<18, "capacity of the index")
	cmd.Flags().StringVar(&maxMemory, "maxmemory", "", "kernel memory for the index and the values, as Redis writes it (1gb, 512mb, 100000000; default: 1 KiB a key of --max-keys); writes past it get OOM")
	cmd.Flags().StringVar(&maxKeyLen, "max-key-len", "", fmt.Sprintf("longest key, written as --maxmemory is (default: %d bytes; at most %d, engine.MaxKeyLenLimit); a longer key is refused with an error naming the limit; one of more than %d bytes is held in the kernel by its SHA-256 and whole in the server's memory",
		engine.DefaultMaxKeyLen, engine.MaxKeyLenLimit, engine.InlineKeyLen))
	cmd.Flags().StringVar(&maxValueLen, "max-value-len", "", fmt.Sprintf("longest value a write may carry, written as --maxmemory is (1mb, 512kb, bytes; default: %d bytes, 1mb; at most %d, engine.MaxValueLenLimit); a longer value is refused with an error naming the limit; one of more than %d bytes takes whole pages of %d bytes of --maxmemory",
		engine.DefaultMaxValueLen, engine.MaxValueLenLimit, engine.SlotValueLen, engine.PageSize))
	cmd.Flags().StringVar(&requirePass, "requirepass", "", "password clients must AUTH with")
	cmd.Flags().IntVar(&maxClients, "maxclients", 10000, "most client connections at once")
	cmd.Flags().Int64Var(&scriptInstructions, "script-instruction-limit", 0, "most Lua instructions one run of a script or function may take (0: 100 million)")
	cmd.Flags().Int64Var(&minFree, "min-free-bytes", 0, "free space kept in --dir's volume: writes are refused (MISCONF) below twice this (default: a sixteenth of the volume, 1 to 64 MiB)")
	cmd.Flags().IntVar(&udpPort, "udp-port", 0, "serve memcached's UDP protocol (get, gets, set, add, replace, delete, incr, decr) on this port of --listen's host (0: off; 11211 with --xdp)")
	cmd.Flags().StringVar(&xdpIface, "xdp", "", "answer memcached UDP get and gets arriving on this interface in XDP, in the kernel; the rest goes to --udp-port, then on every address")
	cmd.Flags().StringVar(&xdpMode, "xdp-mode", "auto", "XDP attach mode: auto (native where the driver has it), native or generic")
	cmd.Flags().StringVar(&pinDir, "pin", "", "pin the store's maps by name in this bpffs directory (e.g. /sys/fs/bpf/bpfdb), for other BPF programs and loaders; removed at exit")
	cmd.Flags().DurationVar(&stopTimeout, "shutdown-timeout", 10*time.Second, "longest SIGTERM, SIGINT or SHUTDOWN takes, whatever the disk does (then it exits 1 naming the commits not on disk)")
	return cmd
}

func checkpointCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Recover a data directory (not in use) and write a checkpoint of it",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(engine.Options{Dir: dir, MaxKeys: 1 << 20})
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, describeRecovery(e.Recovery()))
			st, err := e.Checkpoint()
			if err != nil {
				e.Close()
				return err
			}
			fmt.Printf("checkpoint at LSN %d: %d keys, gate closed %v, took %v\n", st.LSN, st.Keys, st.GateClosed, st.Duration)
			return e.Close()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "./data", "data directory")
	return cmd
}

// parseMaxValueLen parses --max-value-len as parseMemory does, and refuses
// a length above engine.MaxValueLenLimit. Empty is 0, the engine's default
// (engine.DefaultMaxValueLen).
func parseMaxValueLen(s string) (int, error) {
	return parseLimit("--max-value-len", s, engine.MaxValueLenLimit, "engine.MaxValueLenLimit")
}

// parseMaxKeyLen parses --max-key-len as parseMaxValueLen does, up to
// engine.MaxKeyLenLimit.
func parseMaxKeyLen(s string) (int, error) {
	return parseLimit("--max-key-len", s, engine.MaxKeyLenLimit, "engine.MaxKeyLenLimit")
}

// parseLimit parses a length flag's value s as parseMemory does, and
// refuses one above limit (named limitName).
func parseLimit(flag, s string, limit int, limitName string) (int, error) {
	n, err := parseSize(flag, s)
	if err != nil {
		return 0, err
	}
	if n > int64(limit) {
		return 0, fmt.Errorf("%s %q is %d bytes: at most %d (%s)", flag, s, n, limit, limitName)
	}
	return int(n), nil
}

// parseMemory parses a size as Redis's maxmemory does: bytes, or a number
// with k, kb, m, mb, g or gb (k is 1000, kb 1024). Empty is 0, the engine's
// default.
func parseMemory(s string) (int64, error) { return parseSize("--maxmemory", s) }

// parseSize parses the size s of flag as parseMemory says.
func parseSize(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mul    int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}, {"", 1}}
	lower := strings.ToLower(strings.TrimSpace(s))
	for _, u := range units {
		num, ok := strings.CutSuffix(lower, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 || n > math.MaxInt64/u.mul {
			break
		}
		return n * u.mul, nil
	}
	return 0, fmt.Errorf("%s %q: want a positive size such as 1gb, 512mb or 100000000", flag, s)
}

// serverGCPercent is the server's GOGC unless the environment sets one.
// The server's Go heap is small (the data lives in kernel maps), and most
// of what a request allocates (a transaction's view, a script's Lua
// tables) dies with it, so collecting four times less often costs little
// memory and gives the requests back the collector's CPU
// (docs/BENCHMARKS.md, "GOGC").
const serverGCPercent = 400

func serverGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}
