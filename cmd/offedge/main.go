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
	name string
	// args is the positional part of the usage line ("FROM TO"); the flags
	// are added from the command's own flag set, so the usage line,
	// `help COMMAND`, the completion scripts and the man page never leave
	// one out.
	args    string
	summary string
	run     func(env *env, args []string) error
	// hidden commands serve the completion scripts and packaging; they are
	// not listed in the usage.
	hidden bool
}

// env is what commands write to; tests replace it.
type env struct {
	stdout io.Writer
	stderr io.Writer
	// flags is the flag set the running command declared (see newFlags),
	// kept so that help and completion can list it.
	flags *flag.FlagSet
}

func commands() []command {
	return []command{
		{"check", "[INVENTORY]", "run the rules that refuse dangerous configurations", cmdCheck, false},
		{"plan", "[INVENTORY]", "print the listeners and handler chains a node runs", cmdPlan, false},
		{"firewall", "plan|diff|apply|confirm|remove", "render, compare and apply a node's nftables firewall", cmdFirewall, false},
		{"why", "FROM TO", "explain how a node reaches a service, site or node, hop by hop", cmdWhy, false},
		{"impact", "NODE...", "what becomes unreachable, and for whom, when nodes are down", cmdImpact, false},
		{"graph", "[INVENTORY]", "draw the topology", cmdGraph, false},
		{"run", "", "serve a node's listeners; SIGHUP reloads, SIGTERM drains", cmdRun, false},
		{"reload", "", "ask a running offedge to reload its inventory", cmdReload, false},
		{"certs", "[renew NAME] [INVENTORY]", "what each name is served with, its issuer, expiry and next renewal; `certs renew NAME` renews an ACME certificate now", cmdCerts, false},
		{"ban", "add|del|list [ADDRESS]", "ban an address or prefix at accept on a running offedge, lift a ban, or list them", cmdBan, false},
		{"lab", "", "run every node of the inventory on this machine, on loopback", cmdLab, false},
		{"pki", "init|issue NODE", "make the internal CA and node certificates for pki tunnels", cmdPKI, false},
		{"secrets", "new FILE|init", "write tunnel secrets: one file, or every one a node's plan reads (never replacing one)", cmdSecrets, false},
		{"import", "stunnel FILE", "turn a stunnel4 config into inventory YAML; `import nginx PATH...` does nginx configs, with a report of every directive; `import sanoid NODE=PATH...` sanoid.conf and syncoid commands as datasets and replicas", cmdImport, false},
		{"export", "stunnel|prometheus", "write a stunnel4 config that interoperates with offedge, or the Prometheus and Alertmanager files", cmdExport, false},
		{"probe", "", "run the probes generated from the inventory once and print every failure with its reason", cmdProbe, false},
		{"version", "", "print the version and build information", cmdVersion, false},
		{"completion", "bash|zsh|fish", "print a shell completion script", cmdCompletion, false},
		{"help", "[COMMAND]", "show help", nil, false},
		{"__nodes", "", "list the inventory's node names (for completion)", cmdNodes, true},
		{"__man", "DIR", "write the man pages (for packaging)", cmdMan, true},
		{"__lab-node", "", "one node of offedge lab --netns, inside its namespace (started by the lab)", cmdLabNode, true},
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
	if strings.HasPrefix(name, "-") {
		fmt.Fprintf(e.stderr, "offedge: %q is a flag, and flags go after the command", name)
		for i, a := range args {
			if c := commandNamed(a); c != nil {
				fixed := append([]string{a}, append(append([]string{}, args[:i]...), args[i+1:]...)...)
				fmt.Fprintf(e.stderr, ": offedge %s", strings.Join(fixed, " "))
				break
			}
		}
		fmt.Fprintln(e.stderr, "\nrun 'offedge help' for the list of commands")
		return 2
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
					fmt.Fprintf(e.stderr, "usage: %s\n", usageLine(c))
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

// commandNamed returns the visible command called name, or nil.
func commandNamed(name string) *command {
	for _, c := range commands() {
		if c.name == name && !c.hidden {
			return &c
		}
	}
	return nil
}

// closest returns the command name nearest to a mistyped one, or "".
func closest(name string) string {
	var names []string
	for _, c := range commands() {
		if c.hidden {
			continue
		}
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
		if !c.hidden {
			fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "\nWithout --inventory, commands use the embedded Open Food Facts inventory.")
	fmt.Fprintln(w, "Run 'offedge help COMMAND' for a command's flags.")
}

func (e *env) helpFor(name string) int {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(e.stdout, "usage: %s\n\n%s\n", usageLine(c), c.summary)
			if fs := flagsOf(c); fs != nil && hasFlags(fs) {
				fmt.Fprintln(e.stdout, "\nflags:")
				printFlags(e.stdout, fs)
			}
			return 0
		}
	}
	fmt.Fprintf(e.stderr, "offedge: unknown command %q\n", name)
	if s := closest(name); s != "" {
		fmt.Fprintf(e.stderr, "did you mean %q?\n", s)
	}
	return 2
}

// newFlags makes a flag set that reports errors as usage errors and prints
// its defaults to stdout on -h.
func (e *env) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e.flags = fs
	return fs
}

// flagsOf returns the flag set command c declares, by running it with -h
// against a discarding env: the flag set is the one truth about a
// command's flags. Nil for commands without flags.
func flagsOf(c command) *flag.FlagSet {
	if c.run == nil {
		return nil
	}
	probe := &env{stdout: io.Discard, stderr: io.Discard}
	c.run(probe, []string{"-h"})
	return probe.flags
}

// flagName is how a flag is written: -v for one letter, --name otherwise
// (Go's flag package accepts either; the docs use these forms).
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// printFlags lists a flag set as the README and man pages write flags:
// "-i, --inventory PATH", the usage text, the default when it is not zero.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	short := map[string]string{} // long name -> shorthand
	fs.VisitAll(func(f *flag.Flag) {
		if isShorthand(f) {
			short[strings.TrimPrefix(strings.TrimPrefix(f.Usage, "shorthand for "), "--")] = f.Name
		}
	})
	fs.VisitAll(func(f *flag.Flag) {
		if isShorthand(f) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		head := flagName(f.Name)
		if s, ok := short[f.Name]; ok {
			head = flagName(s) + ", " + head
		}
		if name != "" {
			head += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  %s\n    \t%s\n", head, usage)
	})
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// isShorthand reports whether f only repeats another flag (-i for --inventory).
func isShorthand(f *flag.Flag) bool { return strings.HasPrefix(f.Usage, "shorthand for ") }

// isRequired reports whether f must be given; such flags say so in their usage.
func isRequired(f *flag.Flag) bool { return strings.HasSuffix(f.Usage, "(required)") }

// usageLine is "offedge NAME ARGS" followed by the command's flags, required
// ones first and bare, the others in brackets, with the placeholder their
// usage text names (flag.UnquoteUsage: the `back-quoted` word).
func usageLine(c command) string {
	var b strings.Builder
	b.WriteString("offedge " + c.name)
	if c.args != "" {
		b.WriteString(" " + c.args)
	}
	fs := flagsOf(c)
	if fs == nil {
		return b.String()
	}
	var req, opt []string
	fs.VisitAll(func(f *flag.Flag) {
		if isShorthand(f) {
			return
		}
		w := flagName(f.Name)
		if name, _ := flag.UnquoteUsage(f); name != "" {
			w += " " + name
		}
		if isRequired(f) {
			req = append(req, w)
		} else {
			opt = append(opt, "["+w+"]")
		}
	})
	for _, w := range append(req, opt...) {
		b.WriteString(" " + w)
	}
	return b.String()
}

// parse parses flags anywhere among the arguments (offedge why A B --inventory X).
func (e *env) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(e.stdout, "flags:")
				printFlags(e.stdout, fs)
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
	fs := e.newFlags("version")
	if err := e.parseNone(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, versionLine(Version, readBuildInfo()))
	return nil
}

// parseNone parses flags and refuses positional arguments: a command that
// takes none must not ignore one (a path given where --inventory was meant
// would otherwise be silently replaced by the embedded inventory).
func (e *env) parseNone(fs *flag.FlagSet, args []string) error {
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected argument %q", pos[0])
	}
	return nil
}
