package firewall

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/offedge/offedge/plan"
)

// comparable renders fw for comparison: set comments are left out (the
// kernel keeps them, but they are not read back).
func comparable(fw *plan.Firewall) []string {
	if fw == nil {
		return nil
	}
	cp := *fw
	cp.Sets = append([]plan.FirewallSet(nil), fw.Sets...)
	for i := range cp.Sets {
		cp.Sets[i].From = ""
	}
	var b bytes.Buffer
	cp.WriteNft(&b)
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// Diff compares the live table (nil: none) with the planned one and
// returns the differing lines, "-" for what only the kernel has and "+" for
// what only the plan has, with unchanged context around each change.
// inSync is true when they agree (ban set contents are runtime state and
// never differ).
func Diff(planned *plan.Firewall, live *Live) (text string, inSync bool) {
	var lf *plan.Firewall
	if live != nil {
		lf = live.Firewall
	}
	a, b := comparable(lf), comparable(planned)
	ops := lineDiff(a, b)
	changed := false
	for _, op := range ops {
		if op.kind != ' ' {
			changed = true
		}
	}
	if !changed {
		return "", true
	}
	var out strings.Builder
	if live == nil {
		out.WriteString("--- live: no table inet " + planned.Table + "\n")
	} else {
		out.WriteString("--- live\n")
	}
	out.WriteString("+++ planned\n")
	const context = 2
	for i, op := range ops {
		near := false
		for j := max(0, i-context); j <= min(len(ops)-1, i+context); j++ {
			near = near || ops[j].kind != ' '
		}
		if !near {
			continue
		}
		fmt.Fprintf(&out, "%c %s\n", op.kind, op.line)
	}
	return out.String(), false
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	line string
}

// lineDiff is a longest-common-subsequence diff; rulesets are a few
// hundred lines, so the quadratic table is small.
func lineDiff(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, diffOp{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, diffOp{'+', b[j]})
	}
	return ops
}
