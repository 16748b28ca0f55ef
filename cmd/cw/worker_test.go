package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the worker's logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWorkerCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{"worker", "-addr", "127.0.0.1:0", "-gpus", "2", "-host-io-mib", "16"}, &out, &errb)
	}()
	// The worker logs "worker listening" once it is serving; then stop it.
	for !strings.Contains(errb.String(), "worker listening") {
		select {
		case code := <-done:
			t.Fatalf("exited %d: %s", code, errb.String())
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "worker listening on 127.0.0.1:") {
		t.Fatalf("stdout %q", out.String())
	}
	// Without a GPU (CI), -backend cuda fails naming why; on a GPU host it would serve.
	var e2 syncBuffer
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if code := runMain(cctx, []string{"worker", "-backend", "cuda", "-addr", "127.0.0.1:0"}, &out, &e2); code == 0 {
		t.Skip("a GPU is present: -backend cuda serves")
	} else if !strings.Contains(e2.String(), "not supported") {
		t.Fatalf("-backend cuda without a GPU: %s", e2.String())
	}
}
