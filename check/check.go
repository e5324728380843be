package check

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/offedge/offedge/inventory"
)

// Severity says whether a finding refuses the inventory (Error) or only
// deserves attention (Warning). `offedge check --strict` treats warnings as
// errors.
type Severity int

// Severities, most severe first.
const (
	Error Severity = iota
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText renders the severity as "error" or "warning", so JSON carries
// words, not numbers.
func (s Severity) MarshalText() ([]byte, error) {
	switch s {
	case Error, Warning:
		return []byte(s.String()), nil
	}
	return nil, fmt.Errorf("unknown severity %d", int(s))
}

// UnmarshalText parses "error" or "warning".
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = Error
	case "warning":
		*s = Warning
	default:
		return fmt.Errorf("unknown severity %q (want error or warning)", b)
	}
	return nil
}

// Rule documents one check: what it finds, why it exists, how bad it is.
type Rule struct {
	// ID is stable across releases: OE + three digits, the family by the
	// hundreds (1xx exposure, 2xx reachability, 3xx conflicts, 4xx TLS,
	// 5xx replication, 6xx firewall, 7xx protection and the admin endpoint,
	// 8xx routing, 9xx the check itself).
	ID    string
	Title string
	// Why is the rationale, citing the incident report or document that
	// motivates the rule.
	Why string
	// Example is a minimal inventory snippet that triggers the rule.
	Example string
	// Severity is the rule's default severity; a few rules lower it for an
	// explicit acknowledgement in the inventory (their Why says which).
	Severity Severity
	// Since is the offedge version that introduced the rule.
	Since string
}

// Related is another position involved in a finding: the other listener,
// the other tunnel sharing a secret, the rule that blocks a path.
type Related struct {
	Pos     inventory.Pos
	Message string
}

// MarshalJSON renders the position as "file:line:col".
func (r Related) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Pos     string `json:"pos"`
		Message string `json:"message"`
	}{r.Pos.String(), r.Message})
}

// Finding is one problem a rule found in an inventory.
type Finding struct {
	Rule     string        `json:"rule"`
	Severity Severity      `json:"severity"`
	Pos      inventory.Pos `json:"pos"`
	// Object names the inventory object the finding is about, as load
	// errors do: `tunnel "mongodb-ovh"`, `guest "docker-prod"`.
	Object string `json:"object"`
	// Message is lowercase and concrete, and names the objects involved.
	Message string    `json:"message"`
	Related []Related `json:"related,omitempty"`
	// Suppressed is the reason of the inventory `suppress:` entry that
	// matched the finding; empty when none did.
	Suppressed string `json:"suppressed,omitempty"`
}

// MarshalJSON renders Pos as "file:line:col".
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	return json.Marshal(struct {
		plain
		Pos string `json:"pos"`
	}{plain(f), f.Pos.String()})
}

// String renders "file:line:col: error OE101 object: message".
func (f Finding) String() string {
	s := fmt.Sprintf("%s: %s %s %s: %s", f.Pos, f.Severity, f.Rule, f.Object, f.Message)
	if f.Object == "" {
		s = fmt.Sprintf("%s: %s %s %s", f.Pos, f.Severity, f.Rule, f.Message)
	}
	return s
}

// checker is a rule and the code that applies it.
type checker struct {
	Rule
	run func(p *pass)
}

// checkers returns every rule with its code, in ID order. The family tables
// are package-level values never modified after initialisation.
func checkers() []checker {
	var all []checker
	for _, family := range [][]checker{exposureRules, reachRules, gatewayRules, conflictRules, tlsRules, acmeRules, replicaRules, storageRules, firewallRules, protectRules, headerRules, routingRules, metaRules} {
		all = append(all, family...)
	}
	slices.SortFunc(all, func(a, b checker) int { return cmp.Compare(a.ID, b.ID) })
	return all
}

// Rules returns the rule table, sorted by ID.
func Rules() []Rule {
	cs := checkers()
	out := make([]Rule, len(cs))
	for i, c := range cs {
		out[i] = c.Rule
	}
	return out
}

// Lookup returns the rule with the given ID.
func Lookup(id string) (Rule, bool) {
	for _, c := range checkers() {
		if c.ID == id {
			return c.Rule, true
		}
	}
	return Rule{}, false
}

// pass is one rule applied to one model: the model, the shared index, and
// the findings reported so far.
type pass struct {
	m    *inventory.Model
	ix   *index
	rule Rule
	out  *[]Finding
	// rules holds every rule by ID, for code that reports findings of
	// several related rules from one computation.
	rules map[string]Rule
}

// as returns a pass reporting findings of rule id (one of the same run).
func (p *pass) as(id string) *pass {
	q := *p
	r, ok := p.rules[id]
	if !ok {
		// Never happens for the IDs this package uses (every rule has a
		// fixture); report under the ID rather than panic.
		r = Rule{ID: id, Severity: Error}
	}
	q.rule = r
	return &q
}

// report records a finding of the current rule at its default severity.
func (p *pass) report(pos inventory.Pos, object string, related []Related, format string, args ...any) {
	p.reportAs(p.rule.Severity, pos, object, related, format, args...)
}

// reportAs records a finding with an explicit severity.
func (p *pass) reportAs(sev Severity, pos inventory.Pos, object string, related []Related, format string, args ...any) {
	*p.out = append(*p.out, Finding{
		Rule:     p.rule.ID,
		Severity: sev,
		Pos:      pos,
		Object:   object,
		Message:  fmt.Sprintf(format, args...),
		Related:  related,
	})
}

// Run applies every rule to m and returns the findings sorted by file, line
// and column. Findings matched by an inventory `suppress:` entry are kept,
// with Suppressed set to the entry's reason. Run never modifies m.
func Run(m *inventory.Model) []Finding {
	if m == nil {
		return nil
	}
	ix := newIndex(m)
	all := checkers()
	rules := make(map[string]Rule, len(all))
	for _, c := range all {
		rules[c.ID] = c.Rule
	}
	var out []Finding
	for _, c := range all {
		if c.run != nil && !isMeta(c.ID) {
			c.run(&pass{m: m, ix: ix, rule: c.Rule, out: &out, rules: rules})
		}
	}
	// Meta rules look at the findings of the others: suppressions apply to
	// them, and a suppression that matched nothing is stale.
	checkSuppressions(&pass{m: m, ix: ix, out: &out, rules: rules})
	sortFindings(out)
	return out
}

func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Object, b.Object),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// Counts returns how many findings are unsuppressed errors, unsuppressed
// warnings, and suppressed (of either severity).
func Counts(fs []Finding) (errors, warnings, suppressed int) {
	for _, f := range fs {
		switch {
		case f.Suppressed != "":
			suppressed++
		case f.Severity == Error:
			errors++
		default:
			warnings++
		}
	}
	return errors, warnings, suppressed
}
