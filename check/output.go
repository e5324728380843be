package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// WriteText writes one line per finding, "file:line:col: error OE101
// object: message", its related positions indented below it, and a summary
// line. A suppressed finding ends with "(suppressed: reason)".
func WriteText(w io.Writer, fs []Finding) error {
	bw := bufio.NewWriter(w)
	for _, f := range fs {
		line := f.String()
		if f.Suppressed != "" {
			line += " (suppressed: " + f.Suppressed + ")"
		}
		fmt.Fprintln(bw, line)
		for _, r := range f.Related {
			fmt.Fprintf(bw, "\t%s: %s\n", r.Pos, r.Message)
		}
	}
	fmt.Fprintln(bw, Summary(fs))
	return bw.Flush()
}

// Summary renders the counts: "2 errors, 1 warning, 1 suppressed" or
// "no findings".
func Summary(fs []Finding) string {
	e, w, s := Counts(fs)
	if e+w+s == 0 {
		return "no findings"
	}
	plural := func(n int, word string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, word)
		}
		return fmt.Sprintf("%d %ss", n, word)
	}
	parts := []string{plural(e, "error"), plural(w, "warning")}
	if s > 0 {
		parts = append(parts, fmt.Sprintf("%d suppressed", s))
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes {"findings": [...], "errors": N, "warnings": N,
// "suppressed": N}, indented; positions are "file:line:col" strings and
// severities "error" or "warning".
func WriteJSON(w io.Writer, fs []Finding) error {
	e, wn, s := Counts(fs)
	if fs == nil {
		fs = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Findings   []Finding `json:"findings"`
		Errors     int       `json:"errors"`
		Warnings   int       `json:"warnings"`
		Suppressed int       `json:"suppressed"`
	}{fs, e, wn, s})
}

// Explain writes a rule's title, severity, rationale, triggering example
// and how to suppress it, for `offedge check --explain ID`.
func Explain(w io.Writer, id string) error {
	r, ok := Lookup(strings.ToUpper(strings.TrimSpace(id)))
	if !ok {
		return fmt.Errorf("unknown rule %q; the rules are listed in docs/checks.md", id)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s: %s\n\n", r.ID, r.Title)
	fmt.Fprintf(bw, "Severity: %s\nSince: %s\n\n", r.Severity, r.Since)
	fmt.Fprintf(bw, "%s\n\n", wrap(CiteSources(r.Why), 78))
	fmt.Fprintf(bw, "Example that triggers it:\n\n%s\n\n", indent(r.Example, "    "))
	fmt.Fprintf(bw, "%s\n", wrap(suppressText(r), 78))
	return bw.Flush()
}

func suppressText(r Rule) string {
	if isMeta(r.ID) {
		return "This rule cannot be suppressed: fix the suppress: entry it reports."
	}
	return fmt.Sprintf(`To suppress it for one object, add to the inventory: suppress: [{rule: %s, object: 'KIND "NAME"', reason: WHY}], with the object as the finding names it.`, r.ID)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// wrap breaks text into lines of at most width characters at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(s) {
		switch {
		case n == 0:
		case n+1+len(word) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// WriteDocs writes docs/checks.md: every rule with its ID, title,
// severity, rationale, triggering example and how to suppress it.
func WriteDocs(w io.Writer) error {
	bw := bufio.NewWriter(w)
	rules := Rules()
	fmt.Fprint(bw, `# offedge check rules

<!-- Generated from the rule table in check/*.go by
     go test ./check -run TestDocs -update; do not edit by hand. -->

`+"`offedge check`"+` loads the inventory and applies these rules before anything is
served. Loading already refuses syntax errors, unknown fields, dangling
references and duplicate names; the rules are about inventories that load but
are dangerous or broken. An **error** makes `+"`offedge check`"+` fail; a
**warning** does too with `+"`--strict`"+`. `+"`offedge check --explain ID`"+` prints one
rule.

Rule IDs are stable. Families by the hundreds: 1xx exposure, 2xx reachability
and paths, 3xx conflicts, 4xx TLS and certificates, 5xx replication, 6xx
firewall, 7xx protection and the admin endpoint, 8xx routing, 9xx the check
itself.

## Suppressing a finding

A finding that does not apply is suppressed in the inventory, with a reason:

`+"```yaml"+`
suppress:
  - rule: OE304
    object: site "images"
    reason: the deploy job copies the renewed certificate to the other node
`+"```"+`

`+"`object`"+` is written as the finding names it: `+"`KIND \"NAME\"`"+` (`+"`tunnel \"mongodb-ovh\"`"+`,
`+"`guest \"docker-prod\"`"+`, `+"`site \"blog\"`"+`) matches that object only; the quotes may
be left out (`+"`tunnel mongodb-ovh`"+`). A bare name (`+"`mongodb-ovh`"+`) matches every
object of that name, whatever its kind — prefer the full form, since a site and
a service often share a name. A suppressed finding is still reported, marked
suppressed, and counted apart; it does not fail the check. A suppression
naming an unknown rule or no object is reported as OE901, one that matches
nothing as OE902; the 9xx rules cannot be suppressed.

## Rules

| ID | Severity | Title |
| --- | --- | --- |
`)
	for _, r := range rules {
		fmt.Fprintf(bw, "| [%s](#%s) | %s | %s |\n", r.ID, strings.ToLower(r.ID), r.Severity, r.Title)
	}
	for _, r := range rules {
		fmt.Fprintf(bw, "\n## %s\n\n**%s** · %s · since %s\n\n", r.ID, r.Title, r.Severity, r.Since)
		fmt.Fprintf(bw, "%s\n\n", wrap(citeSourcesMarkdown(r.Why), 80))
		fmt.Fprintf(bw, "Triggered by:\n\n```yaml\n%s\n```\n\n", strings.TrimRight(r.Example, "\n"))
		if isMeta(r.ID) {
			fmt.Fprint(bw, "Cannot be suppressed.\n")
		} else {
			fmt.Fprintf(bw, "Suppress with `{rule: %s, object: 'KIND \"NAME\"', reason: ...}` under `suppress:`.\n", r.ID)
		}
	}
	return bw.Flush()
}

// SourceRepo is the public repository the rules' "why" texts cite: Open Food
// Facts' infrastructure documentation and incident reports.
const SourceRepo = "https://github.com/openfoodfacts/openfoodfacts-infrastructure/blob/develop/"

var docRef = regexp.MustCompile(`\b(docs|confs)/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.(md|conf|cfg|yml|yaml|txt)\b`)

// CiteSources turns the documents a rule's why text cites (docs/reports/
// 2023-…md, docs/nginx-reverse-proxy.md) into links to the public
// repository they are in: they are not in this one, so a bare path would
// send the reader looking for a file they do not have.
func CiteSources(why string) string {
	return docRef.ReplaceAllStringFunc(why, func(p string) string { return SourceRepo + p })
}

// citeSourcesMarkdown is CiteSources for docs/checks.md: the path stays the
// link text.
func citeSourcesMarkdown(why string) string {
	return docRef.ReplaceAllStringFunc(why, func(p string) string { return "[" + p + "](" + SourceRepo + p + ")" })
}
