package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cmdMan writes offedge(1) and one offedge-COMMAND(1) page per command,
// from the command table and each command's flag set: the man pages the
// package installs can never disagree with `offedge help`.
func cmdMan(e *env, args []string) error {
	fs := e.newFlags("__man")
	date := fs.String("date", "", "date printed in the pages (`YYYY-MM-DD`; default: today, or SOURCE_DATE_EPOCH)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("name the directory to write the pages to")
	}
	d := *date
	if d == "" {
		d = manDate()
	}
	if err := os.MkdirAll(pos[0], 0o755); err != nil {
		return err
	}
	write := func(name string, f func(io.Writer)) error {
		var b strings.Builder
		f(&b)
		return os.WriteFile(filepath.Join(pos[0], name), []byte(b.String()), 0o644)
	}
	if err := write("offedge.1", func(w io.Writer) { writeMainPage(w, d) }); err != nil {
		return err
	}
	n := 1
	for _, c := range commands() {
		if c.hidden || c.run == nil {
			continue
		}
		c := c
		if err := write("offedge-"+c.name+".1", func(w io.Writer) { writeCommandPage(w, c, d) }); err != nil {
			return err
		}
		n++
	}
	fmt.Fprintf(e.stdout, "wrote %d man pages to %s\n", n, pos[0])
	return nil
}

func manDate() string {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscanf(s, "%d", &sec); err == nil {
			return time.Unix(sec, 0).UTC().Format("2006-01-02")
		}
	}
	return time.Now().UTC().Format("2006-01-02")
}

// roff escapes text for a man page: backslashes, and a leading dot or
// quote that roff would take for a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func writeMainPage(w io.Writer, date string) {
	fmt.Fprintf(w, ".TH OFFEDGE 1 %q \"offedge %s\" \"offedge manual\"\n", date, Version)
	fmt.Fprintln(w, ".SH NAME\noffedge \\- run a small infrastructure's network layer from one inventory")
	fmt.Fprintln(w, ".SH SYNOPSIS\n.B offedge\n.I COMMAND\n[\\fIARGS\\fR]")
	fmt.Fprintln(w, ".SH DESCRIPTION")
	fmt.Fprintln(w, roff("offedge is one binary driven by one YAML inventory: it checks the inventory, explains the topology, and serves a node's reverse proxy, static files, TLS tunnels, forwards and IP filtering. Without --inventory, commands use the embedded Open Food Facts inventory."))
	fmt.Fprintln(w, ".SH COMMANDS")
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", roff(c.name), roff(c.summary))
	}
	fmt.Fprintln(w, ".SH EXIT STATUS\n0 ok, 1 failure (findings, no path, a server failed), 2 usage error.")
	fmt.Fprintln(w, ".SH FILES\n.TP\n.I /etc/offedge/offedge.env\nthe service's settings (OFFEDGE_INVENTORY, OFFEDGE_NODE, OFFEDGE_ARGS)\n.TP\n.I /etc/offedge/inventory\nthe inventory\n.TP\n.I /var/lib/offedge\nstate (the service's working directory)")
	var see []string
	for _, c := range commands() {
		if !c.hidden && c.run != nil {
			see = append(see, fmt.Sprintf(".BR offedge\\-%s (1)", roff(c.name)))
		}
	}
	fmt.Fprintf(w, ".SH SEE ALSO\n%s\n", strings.Join(see, ",\n"))
}

func writeCommandPage(w io.Writer, c command, date string) {
	fmt.Fprintf(w, ".TH OFFEDGE\\-%s 1 %q \"offedge %s\" \"offedge manual\"\n", strings.ToUpper(roff(c.name)), date, Version)
	fmt.Fprintf(w, ".SH NAME\noffedge\\-%s \\- %s\n", roff(c.name), roff(c.summary))
	fmt.Fprintf(w, ".SH SYNOPSIS\n%s\n", roff(usageLine(c)))
	fmt.Fprintf(w, ".SH DESCRIPTION\n%s\n", roff(c.summary))
	if fs := flagsOf(c); fs != nil && hasFlags(fs) {
		fmt.Fprintln(w, ".SH OPTIONS")
		fs.VisitAll(func(f *flag.Flag) {
			if isShorthand(f) {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			head := "\\-\\-" + roff(f.Name)
			if name != "" {
				head += " \\fI" + roff(name) + "\\fR"
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, ".TP\n%s\n%s\n", head, roff(usage))
		})
	}
	fmt.Fprintln(w, ".SH SEE ALSO\n.BR offedge (1)")
}
