package sanoid

import (
	"fmt"
	"io"
	"strings"
)

// End is one side of a syncoid command: a dataset, local or on a host
// reached over ssh (Host, and User when written user@host).
type End struct {
	User, Host, Dataset string
}

func (e End) String() string {
	switch {
	case e.Host == "":
		return e.Dataset
	case e.User == "":
		return e.Host + ":" + e.Dataset
	}
	return e.User + "@" + e.Host + ":" + e.Dataset
}

// parseEnd reads [[user@]host:]dataset. A colon after a slash belongs to
// the dataset name (ZFS allows ':' in names); syncoid reads it the same
// way only when no host part precedes it, so a host is what comes before
// the first colon when it has no slash.
func parseEnd(s string) End {
	if i := strings.IndexByte(s, ':'); i > 0 && !strings.Contains(s[:i], "/") {
		host, ds := s[:i], s[i+1:]
		user := ""
		if u, h, ok := strings.Cut(host, "@"); ok {
			user, host = u, h
		}
		return End{User: user, Host: host, Dataset: ds}
	}
	return End{Dataset: s}
}

// Sync is one syncoid command line.
type Sync struct {
	File       string
	Line       int
	Source     End
	Target     End
	Recursive  bool
	NoSyncSnap bool
	// Unmapped lists the options the inventory has no field for, as written.
	Unmapped []string
}

// syncoid's options that take a value (Getopt::Long: --opt=V or --opt V).
var valueOpts = map[string]bool{
	"--compress": true, "--source-bwlimit": true, "--target-bwlimit": true,
	"--sshkey": true, "--sshport": true, "--sshcipher": true, "-c": true,
	"--sshconfig": true, "-F": true, "--sshoption": true, "-o": true,
	"--exclude": true, "--exclude-datasets": true, "--exclude-snaps": true,
	"--include-snaps": true, "--identifier": true, "--pv-options": true,
	"--mbuffer-size": true, "--sendoptions": true, "--recvoptions": true,
	"--insecure-direct-connection": true, "--preserve-properties": false,
}

// parseArgs reads one syncoid argument list (without the program name).
func parseArgs(file string, line int, args []string) (*Sync, []Problem) {
	s := &Sync{File: file, Line: line}
	var ends []string
	var probs []Problem
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasVal := strings.Cut(a, "=")
		switch {
		case a == "--recursive" || a == "-r":
			s.Recursive = true
		case a == "--no-sync-snap":
			s.NoSyncSnap = true
		case a == "--":
			ends = append(ends, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if valueOpts[name] && !hasVal {
				if i+1 < len(args) {
					a += " " + args[i+1]
					i++
				} else {
					probs = append(probs, Problem{file, line, fmt.Sprintf("%s wants a value", a)})
					continue
				}
			}
			s.Unmapped = append(s.Unmapped, a)
		default:
			ends = append(ends, a)
		}
	}
	if len(ends) != 2 {
		probs = append(probs, Problem{file, line, fmt.Sprintf("want SOURCE TARGET, got %d argument(s) %q", len(ends), ends)})
		return nil, probs
	}
	s.Source, s.Target = parseEnd(ends[0]), parseEnd(ends[1])
	for _, e := range []End{s.Source, s.Target} {
		if e.Dataset == "" || !validDataset(e.Dataset) {
			probs = append(probs, Problem{file, line, fmt.Sprintf("%q is not a dataset name", e.String())})
			return nil, probs
		}
	}
	if s.Source.Host != "" && s.Target.Host != "" {
		probs = append(probs, Problem{file, line, "both ends are remote: syncoid copies between two other hosts; name the replica by hand"})
		return nil, probs
	}
	return s, probs
}

// addCommand parses one command's arguments (at most MaxArgs) onto the
// lists.
func addCommand(syncs []*Sync, probs []Problem, file string, line int, args []string) ([]*Sync, []Problem) {
	if len(args) > MaxArgs {
		return syncs, append(probs, Problem{file, line, fmt.Sprintf("more than %d arguments", MaxArgs)})
	}
	s, p := parseArgs(file, line, args)
	if s != nil {
		syncs = append(syncs, s)
	}
	return syncs, append(probs, p...)
}

// validDataset is a ZFS dataset name, as the inventory accepts it.
func validDataset(s string) bool {
	if s == "" || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.ContainsAny(s, "@# \t\"'") || strings.Contains(s, "//") {
		return false
	}
	for _, r := range s {
		if !(r == '/' || r == '_' || r == '.' || r == ':' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s[0] != '-' && s[0] != '.' && s[0] != '_' && s[0] != ':'
}

// ParseArgsFile reads a syncoid args file the way Open Food Facts'
// syncoid.service does: lines starting with # and empty lines are
// skipped (egrep -v "^(#|$)"), every other line is split on blanks (bash
// read -a: quotes are not removed) and given to syncoid as its arguments.
// An indented comment is not skipped by that filter: syncoid would be run
// with it, which is a problem.
func ParseArgsFile(name string, r io.Reader) ([]*Sync, []Problem, error) {
	var syncs []*Sync
	var probs []Problem
	err := lines(name, r, func(n int, line string) {
		if line == "" || line[0] == '#' {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			probs = append(probs, Problem{name, n, "a blank line that is not empty: syncoid.service runs syncoid with no arguments for it"})
			return
		}
		if f[0][0] == '#' {
			probs = append(probs, Problem{name, n, "an indented comment: syncoid.service only skips lines starting with #, so syncoid runs with it"})
			return
		}
		syncs, probs = addCommand(syncs, probs, name, n, f)
	})
	return syncs, probs, err
}

// ParseUnit reads a systemd unit (or drop-in) for the syncoid commands of
// its ExecStart lines. A command that reads its arguments from a file
// (Open Food Facts' syncoid.service reads /etc/sanoid/syncoid-args.conf)
// is reported with the file to import instead; a unit without syncoid
// (sanoid.service overrides, sanoid_check) holds nothing to import, and
// every other setting is reported as not mapped.
func ParseUnit(name string, r io.Reader) ([]*Sync, []Problem, error) {
	var syncs []*Sync
	var probs []Problem
	sawSyncoid := false
	err := lines(name, r, func(n int, raw string) {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			return
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			probs = append(probs, Problem{name, n, fmt.Sprintf("not Key=Value: %q", line)})
			return
		}
		k = strings.TrimSpace(k)
		if k != "ExecStart" {
			probs = append(probs, Problem{name, n, fmt.Sprintf("%s: not mapped (how the job runs, not what it copies)", k)})
			return
		}
		f := strings.Fields(strings.TrimLeft(strings.TrimSpace(v), "-@:+!"))
		at := -1
		for i, a := range f {
			if a == "syncoid" || strings.HasSuffix(a, "/syncoid") {
				at = i
				break
			}
		}
		if at < 0 {
			if strings.Contains(v, "syncoid") {
				sawSyncoid = true
				probs = append(probs, Problem{name, n, "runs syncoid in a way the import cannot read (not as a plain command): map it by hand"})
			} else {
				probs = append(probs, Problem{name, n, "ExecStart runs no syncoid: nothing to import"})
			}
			return
		}
		sawSyncoid = true
		if file := argsFileIn(v); file != "" {
			probs = append(probs, Problem{name, n, fmt.Sprintf("runs syncoid with each line of %s: import that file", file)})
			return
		}
		args := f[at+1:]
		for i := range args {
			args[i] = strings.Trim(args[i], `"'`)
		}
		syncs, probs = addCommand(syncs, probs, name, n, args)
	})
	if err == nil && !sawSyncoid {
		probs = append(probs, Problem{File: name, Msg: "no syncoid command in this unit: nothing to import"})
	}
	return syncs, probs, err
}

// argsFileIn finds an absolute path a shell command reads syncoid's
// arguments from: a word that is a path and not the syncoid program.
func argsFileIn(cmd string) string {
	for _, w := range strings.FieldsFunc(cmd, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\'' || r == '"' || r == ';' || r == '|' || r == '<'
	}) {
		if strings.HasPrefix(w, "/") && !strings.HasSuffix(w, "/syncoid") && w != "/dev/null" && !strings.HasPrefix(w, "/bin/") && !strings.HasPrefix(w, "/usr/") {
			return w
		}
	}
	return ""
}
