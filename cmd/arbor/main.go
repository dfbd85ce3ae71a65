// Command arbor turns every branch of a repository into a live environment on
// Kubernetes, from the .release.yaml committed to that repository.
//
// Subcommands: validate, render and init work offline (CI, laptops); diff,
// apply and delete act on one environment in a cluster; run is the daemon;
// deploy and env talk to a running daemon's API.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/arbordev/arbor/schema"
)

func main() {
	os.Exit(cli())
}

// cli runs the command line, prints its error and returns the exit code.
func cli() int {
	code, err := run()
	if err != nil {
		// Errors quote what they read from a repository; SafeLines keeps a
		// control character in it from reaching the terminal.
		fmt.Fprintln(os.Stderr, "arbor:", schema.SafeLines(err.Error()))
	}
	return code
}

// run executes the command line and returns the process exit code. Kept apart
// from main so that every defer runs before os.Exit.
func run() (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	var ec *exitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ec):
		return ec.code, ec.err
	default:
		// cobra's own errors (unknown flag, wrong argument count) are usage errors.
		return exitUsage, err
	}
}
