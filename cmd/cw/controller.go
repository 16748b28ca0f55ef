package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clockwork-go/clockwork/controller"
	"github.com/clockwork-go/clockwork/runtime/sim"
)

func init() {
	register(command{name: "controller", summary: "run the controller: schedule requests onto workers", run: runController})
}

func runController(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := controller.DefaultConfig()
	fs := newFlagSet("controller", "controller -workers host:port[,host:port...] [flags]", stderr)
	workers := fs.String("workers", "", "comma-separated worker addresses (host:port; workers listen on :12345 by default)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "client address (host:port); 12346 is Clockwork's port")
	models := fs.String("models", "", "models to register at start, comma-separated name=path (path under the workers' model root)")
	fs.DurationVar(&cfg.DefaultSLO, "slo", cfg.DefaultSLO, "SLO of requests that carry none; Clockwork's default is 100ms")
	ahead := fs.Duration("schedule-ahead", time.Duration(cfg.Sched.ScheduleAheadNs), "predicted work queued per GPU (1ms..1s); longer survives controller hiccups, shorter batches more")
	margin := fs.Duration("margin", time.Duration(cfg.Sched.MarginNs), "taken off each deadline for planning: covers exec noise and the result's trip back")
	maxBatch := fs.Int("max-batch", int(cfg.Sched.MaxBatch), "largest batch size used (Clockwork: 16)")
	classes := fs.Int("classes", cfg.Sched.Classes, "priority classes (1..4); a request's priority is capped to classes-1")
	fs.BoolVar(&cfg.SynthInput, "synth", false, "workers synthesise inputs and return no outputs (measures the controller apart from data movement)")
	secret := fs.String("secret-file", "", "file holding the shared secret for both links (HMAC in the hello); empty: no authentication")
	fs.DurationVar(&cfg.WorkerTimeout, "worker-timeout", cfg.WorkerTimeout, "a worker silent this long is declared lost and redialled (>= 10ms)")
	logDir := fs.String("log-dir", "", "directory for clockwork_request_log.tsv and clockwork_action_log.tsv (Clockwork's columns); empty: none")
	profile := fs.String("profile", "", "measured profile (runtime/sim JSON, as cw tools profile writes) seeding exec estimates; \"v100\": the embedded Clockwork V100 zoo; empty: -default-exec until measured")
	defExec := fs.Duration("default-exec", time.Duration(cfg.DefaultExecNs), "batch-1 exec estimate of a model with no profile, until its first runs are measured")
	verbose := fs.Bool("v", false, "log debug events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workers == "" {
		fs.Usage()
		return fmt.Errorf("no workers: pass -workers host:port[,...]: %w", errUsage)
	}
	cfg.Workers = strings.Split(*workers, ",")
	if *models != "" {
		for _, kv := range strings.Split(*models, ",") {
			name, path, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("-models entry %q is not name=path", kv)
			}
			cfg.Models = append(cfg.Models, controller.ModelSource{Name: name, Path: path})
		}
	}
	cfg.Sched.ScheduleAheadNs, cfg.Sched.MarginNs = int64(*ahead), int64(*margin)
	cfg.Sched.MaxBatch, cfg.Sched.Classes = int32(*maxBatch), *classes
	if *secret != "" {
		b, err := os.ReadFile(*secret)
		if err != nil {
			return fmt.Errorf("cannot read the secret: %w", err)
		}
		cfg.Secret = []byte(strings.TrimSpace(string(b)))
		if len(cfg.Secret) == 0 {
			return errors.New("the secret file is empty; put a shared secret in it")
		}
	}
	cfg.DefaultExecNs = int64(*defExec)
	switch *profile {
	case "":
	case "v100":
		cfg.Profile = controller.SimProfile(sim.DefaultProfile())
	default:
		p, err := sim.LoadProfile(*profile)
		if err != nil {
			return fmt.Errorf("cannot load -profile: %w", err)
		}
		cfg.Profile = controller.SimProfile(p)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *logDir != "" {
		for _, f := range []struct {
			name string
			dst  *io.Writer
		}{{"clockwork_request_log.tsv", &cfg.RequestLog}, {"clockwork_action_log.tsv", &cfg.ActionLog}} {
			fh, err := os.Create(filepath.Join(*logDir, f.name))
			if err != nil {
				return fmt.Errorf("cannot create telemetry file: %w; create the -log-dir directory first", err)
			}
			defer fh.Close()
			*f.dst = fh
		}
	}
	c, err := controller.New(cfg)
	if err != nil {
		return err
	}
	go func() {
		<-c.Ready()
		if a := c.Addr(); a != nil {
			cfg.Logger.Info("serving clients", "addr", a.String(), "workers", len(cfg.Workers))
		}
	}()
	return c.Run(ctx)
}
