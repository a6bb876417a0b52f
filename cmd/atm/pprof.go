//go:build pprof

package main

// Built with -tags pprof (make memprofile does), the appliance serves
// net/http/pprof on the address in ATM_PPROF_ADDR (127.0.0.1:6060 when
// empty), so that heap profiles of the running process can be taken:
//
//	go tool pprof -sample_index=inuse_space http://127.0.0.1:6060/debug/pprof/heap
//
// A production build has no such endpoint.

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("ATM_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof endpoint", "addr", addr, "err", err)
		}
	}()
}
