package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// group runs a cluster's goroutines (controller, workers) and collects their errors; Cluster
// and Compiled embed it.
type group struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	once   sync.Once
}

func (g *group) goRun(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			g.addErr(err)
		}
	}()
}

func (g *group) addErr(err error) {
	g.errMu.Lock()
	g.err = errors.Join(g.err, err)
	g.errMu.Unlock()
}

// Err is what the controller and workers returned, joined.
func (g *group) Err() error {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	return g.err
}

// shutdown cancels the goroutines and waits for them at most timeout (once; later calls do
// nothing), then runs after.
func (g *group) shutdown(timeout time.Duration, after func()) {
	g.once.Do(func() {
		g.cancel()
		done := make(chan struct{})
		go func() { g.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(timeout):
			g.addErr(fmt.Errorf("controller or workers did not stop within %v", timeout))
		}
		if after != nil {
			after()
		}
	})
}
