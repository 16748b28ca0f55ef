package main

import (
	"context"
	"io"
)

// toolCommands are the "cw tools <name>" subcommands; each registers itself with registerTool.
var toolCommands = map[string]command{}

//lint:ignore U1000 called by the init of each tools subcommand file.
func registerTool(c command) {
	if _, dup := toolCommands[c.name]; dup {
		panic("BUG: cw tools subcommand registered twice: " + c.name)
	}
	toolCommands[c.name] = c
}

func init() {
	register(command{name: "tools", summary: "diagnostics: check, wirecat, profile, probe, zoo", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return subcommands(ctx, "tools", toolCommands, args, stdout, stderr)
	}})
}
