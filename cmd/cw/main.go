// Command cw is clockwork's single binary: controller, worker, serve, bench and tools.
//
// Each subcommand lives in its own file and registers itself from an init function with
// register; flags are parsed by a flag.FlagSet per subcommand, never by package globals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand of cw.
type command struct {
	name    string
	summary string
	// run parses args with its own FlagSet and runs until ctx is done or the work ends.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; called from init functions only.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("BUG: cw subcommand registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cw: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "cw %s: %v\n", c.name, err)
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cw: clockwork, a DNN inference server with predictable tail latency")
	fmt.Fprintln(w, "\nusage: cw <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'cw <command> -h' for a command's flags.")
}

// newFlagSet returns a FlagSet for a subcommand that reports errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cw "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cw %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// subcommands dispatches a command group such as "cw tools <name>".
func subcommands(ctx context.Context, group string, sub map[string]command, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		names := make([]string, 0, len(sub))
		for n := range sub {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		fmt.Fprintf(&b, "usage: cw %s <command> [flags]\n\ncommands:\n", group)
		for _, n := range names {
			fmt.Fprintf(&b, "  %-12s %s\n", n, sub[n].summary)
		}
		fmt.Fprint(stderr, b.String())
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := sub[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q; run 'cw %s help' for the list", args[0], group)
	}
	return c.run(ctx, args[1:], stdout, stderr)
}
