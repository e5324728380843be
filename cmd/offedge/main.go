// Command offedge runs the network layer of a small multi-provider
// infrastructure from one inventory: HTTP edge, tunnels, forwards and IP
// filtering, with checks and explanations of the topology. See README.md.
package main

import (
	"github.com/offedge/offedge/internal/suggest"

	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// exitError carries an exit status through the command functions to the
// single exit point, main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// usageError marks a mistake in the command line (exit status 2).
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

type command struct {
	name    string
	args    string
	summary string
	run     func(env *env, args []string) error
	flags   []string // for completion
}

// env is what commands write to; tests replace it.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"check", "[--inventory PATH] [--format text|json] [--strict] [--explain ID]", "run the rules that refuse dangerous configurations", cmdCheck, []string{"--inventory", "--format", "--strict", "--explain"}},
		{"plan", "--node NAME [--inventory PATH] [--format text|json]", "print the listeners and handler chains a node runs", cmdPlan, []string{"--inventory", "--node", "--format"}},
		{"why", "FROM TO [--inventory PATH]", "explain how a node reaches a service, site or node, hop by hop", cmdWhy, []string{"--inventory"}},
		{"impact", "NODE... [--inventory PATH]", "what becomes unreachable, and for whom, when nodes are down", cmdImpact, []string{"--inventory"}},
		{"graph", "[--inventory PATH] [--format svg|dot|mermaid] [--output FILE]", "draw the topology", cmdGraph, []string{"--inventory", "--format", "--output"}},
		{"run", "--node NAME [--inventory PATH] [--admin ADDR]", "serve a node's listeners; SIGHUP reloads, SIGTERM drains", cmdRun, []string{"--inventory", "--node", "--admin", "--root", "--log-format"}},
		{"reload", "--admin ADDR", "ask a running offedge to reload its inventory", cmdReload, []string{"--admin"}},
		{"lab", "[--inventory PATH] [--dir DIR] [--status ADDR]", "run every node of the inventory on this machine, on loopback", cmdLab, []string{"--inventory", "--dir", "--status", "--tour"}},
		{"pki", "init|issue NODE [--dir DIR]", "make the internal CA and node certificates for pki tunnels", cmdPKI, []string{"--dir", "--out"}},
		{"import", "stunnel FILE [--node NAME]", "turn a stunnel4 config into inventory YAML", cmdImport, []string{"--node", "--network"}},
		{"export", "stunnel --node NAME [--inventory PATH] [--dir DIR]", "write a stunnel4 config that interoperates with offedge", cmdExport, []string{"--inventory", "--node", "--dir"}},
		{"version", "", "print the version", cmdVersion, nil},
		{"completion", "bash|zsh|fish", "print a shell completion script", cmdCompletion, nil},
		{"help", "[COMMAND]", "show help", nil, nil},
	}
}

func main() {
	e := &env{stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(e.main(os.Args[1:]))
}

// main runs one command line and returns the exit status: 0 ok, 1 failure
// (check found errors, a server failed), 2 usage error.
func (e *env) main(args []string) int {
	if len(args) == 0 {
		e.usage(e.stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	if name == "help" || name == "-h" || name == "--help" {
		if len(rest) > 0 {
			return e.helpFor(rest[0])
		}
		e.usage(e.stdout)
		return 0
	}
	if name == "--version" {
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			err := c.run(e, rest)
			if err == nil {
				return 0
			}
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			var xe *exitError
			if errors.As(err, &xe) {
				if xe.err != nil {
					fmt.Fprintf(e.stderr, "offedge %s: %v\n", name, xe.err)
				}
				if xe.code == 2 {
					fmt.Fprintf(e.stderr, "usage: offedge %s %s\n", c.name, c.args)
				}
				return xe.code
			}
			fmt.Fprintf(e.stderr, "offedge %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "offedge: unknown command %q\n", name)
	if s := closest(name); s != "" {
		fmt.Fprintf(e.stderr, "did you mean %q?\n", s)
	}
	fmt.Fprintln(e.stderr, "run 'offedge help' for the list of commands")
	return 2
}

// closest returns the command name nearest to a mistyped one, or "".
func closest(name string) string {
	var names []string
	for _, c := range commands() {
		if strings.HasPrefix(c.name, name) {
			return c.name
		}
		names = append(names, c.name)
	}
	return suggest.Closest(name, names, 2)
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "offedge runs a small infrastructure's network layer from one inventory.")
	fmt.Fprintln(w, "\nUsage: offedge COMMAND [ARGS]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nWithout --inventory, commands use the embedded Open Food Facts inventory.")
	fmt.Fprintln(w, "Run 'offedge help COMMAND' for a command's flags.")
}

func (e *env) helpFor(name string) int {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(e.stdout, "usage: offedge %s %s\n\n%s\n", c.name, c.args, c.summary)
			if c.run != nil {
				c.run(e, []string{"-h"})
			}
			return 0
		}
	}
	fmt.Fprintf(e.stderr, "offedge: unknown command %q\n", name)
	return 2
}

// newFlags makes a flag set that reports errors as usage errors and prints
// its defaults to stdout on -h.
func (e *env) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses flags anywhere among the arguments (offedge why A B --inventory X).
func (e *env) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(e.stdout)
				fmt.Fprintln(e.stdout, "flags:")
				fs.PrintDefaults()
				return nil, flag.ErrHelp
			}
			return nil, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func cmdVersion(e *env, args []string) error {
	fmt.Fprintf(e.stdout, "offedge %s\n", Version)
	return nil
}
