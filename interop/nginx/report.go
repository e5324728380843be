package nginx

import (
	"fmt"
	"sort"
	"strings"
)

// Status is what the importer did with a directive.
type Status string

const (
	// Mapped: the directive became inventory (the note says where).
	Mapped Status = "mapped"
	// Builtin: offedge does this by itself, or has nothing to set for it
	// (process tuning, its fixed TLS policy); the note says which.
	Builtin Status = "builtin"
	// Unused: the directive has no effect in this configuration (a map
	// whose variable nothing reads, a location a server-level return
	// shadows).
	Unused Status = "unused"
	// Approximate: mapped to the nearest inventory, which answers
	// differently in a way the note says (a header nginx would not send).
	Approximate Status = "approximate"
	// Unsupported: offedge cannot do this yet; the note says what it would
	// take. Its behaviour is not in the output.
	Unsupported Status = "unsupported"
)

// Entry is the importer's account of one directive.
type Entry struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Directive string `json:"directive"`
	Status    Status `json:"status"`
	Note      string `json:"note,omitempty"`
}

// Report is every directive read, with what became of it, and what an
// operator must review.
type Report struct {
	Entries []Entry `json:"entries"`
	// Findings are faithful imports worth a look (nginx traps carried
	// over, behaviours that differ in corner cases).
	Findings []string `json:"findings,omitempty"`
	// Unmapped are addresses and names that match no inventory object:
	// the importer does not invent nodes; the directives using them are
	// reported unsupported.
	Unmapped []string `json:"unmapped,omitempty"`
}

// Count is the number of entries with status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, e := range r.Entries {
		if e.Status == s {
			n++
		}
	}
	return n
}

// Complete reports whether every directive was mapped, built in or
// unused, and every address found in the inventory: the output then does
// what the configuration did.
func (r *Report) Complete() bool {
	return r.Count(Unsupported) == 0 && r.Count(Approximate) == 0 && len(r.Unmapped) == 0
}

// Files lists the files the entries come from, sorted.
func (r *Report) Files() []string {
	seen := map[string]bool{}
	var fs []string
	for _, e := range r.Entries {
		if !seen[e.File] {
			seen[e.File] = true
			fs = append(fs, e.File)
		}
	}
	sort.Strings(fs)
	return fs
}

// Summary is one line: the counts of each status.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d directives: %d mapped, %d builtin, %d unused, %d approximate, %d unsupported; %d unmapped addresses, %d findings",
		len(r.Entries), r.Count(Mapped), r.Count(Builtin), r.Count(Unused), r.Count(Approximate), r.Count(Unsupported), len(r.Unmapped), len(r.Findings))
}

// String is the report as an operator reads it: unsupported directives
// first, then the findings and unmapped addresses, then every directive
// in file order.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", r.Summary())
	if n := r.Count(Unsupported); n > 0 {
		fmt.Fprintf(&b, "\n## unsupported (%d): not in the output\n", n)
		for _, e := range r.Entries {
			if e.Status == Unsupported {
				fmt.Fprintf(&b, "%s:%d: %s: %s\n", e.File, e.Line, e.Directive, e.Note)
			}
		}
	}
	if n := r.Count(Approximate); n > 0 {
		fmt.Fprintf(&b, "\n## approximate (%d): in the output, answering differently as said\n", n)
		for _, e := range r.Entries {
			if e.Status == Approximate {
				fmt.Fprintf(&b, "%s:%d: %s: %s\n", e.File, e.Line, e.Directive, e.Note)
			}
		}
	}
	if len(r.Unmapped) > 0 {
		fmt.Fprintf(&b, "\n## unmapped (%d): no inventory object; add it, or pass --host NAME=NODE\n", len(r.Unmapped))
		for _, u := range r.Unmapped {
			fmt.Fprintln(&b, u)
		}
	}
	if len(r.Findings) > 0 {
		fmt.Fprintf(&b, "\n## findings (%d): review\n", len(r.Findings))
		for _, f := range r.Findings {
			fmt.Fprintln(&b, f)
		}
	}
	fmt.Fprintf(&b, "\n## every directive\n")
	for _, e := range r.Entries {
		fmt.Fprintf(&b, "%s:%d: %-11s %s", e.File, e.Line, e.Status, e.Directive)
		if e.Note != "" {
			fmt.Fprintf(&b, ": %s", e.Note)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
