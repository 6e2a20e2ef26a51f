// Command bpfdb runs the bpfdb transactional key-value store, whose storage
// and concurrency control run inside the kernel as BPF programs. The
// command line is built with github.com/spf13/cobra.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/server"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "bpfdb",
		Short:         "A transactional key-value store that runs inside the Linux kernel as BPF programs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), versionCmd())
	if err := root.Execute(); err != nil {
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
			fmt.Printf("bpfdb %s (keys up to %d bytes, values up to %d bytes, %d versions per key, %d ops per run)\n",
				version, engine.MaxKeyLen, engine.MaxValueLen, engine.MaxVersions, engine.MaxBatch)
		},
	}
}

func serveCmd() *cobra.Command {
	var (
		listen  string
		maxKeys int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the store over the Redis protocol",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := engine.Open(engine.Options{MaxKeys: maxKeys})
			if errors.Is(err, engine.ErrNotPermitted) {
				fmt.Fprintln(os.Stderr, "bpfdb: serve needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN) to load its BPF programs")
				os.Exit(1)
			}
			if err != nil {
				return err
			}
			defer e.Close()
			srv := server.New(e, listen)
			bound := make(chan error, 1)
			done := make(chan error, 1)
			go func() { done <- srv.ListenAndServe(bound) }()
			if err := <-bound; err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			fmt.Fprintf(os.Stderr, "bpfdb %s: serving RESP on %s (max %d keys, in kernel memory only)\n", version, srv.Addr(), e.Options().MaxKeys)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			select {
			case s := <-sig:
				fmt.Fprintf(os.Stderr, "bpfdb: %v, shutting down\n", s)
				srv.Close()
				return nil
			case err := <-done:
				return err
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:6380", "TCP address to serve RESP on")
	cmd.Flags().IntVar(&maxKeys, "max-keys", 1<<18, "capacity of the index")
	return cmd
}
