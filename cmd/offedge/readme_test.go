package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's example sessions ("$ offedge ..." in a fenced block, its
// output below) are what the commands print today, from the repository's
// root: a line of "..." stands for lines left out, a line ending in "..."
// for the rest of that line. The file:line positions they cite drifted
// once as the example inventory grew.
func TestREADMEExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sessions := readmeSessions(string(readme))
	if len(sessions) < 5 {
		t.Fatalf("found %d example sessions in README.md; the parser lost them", len(sessions))
	}
	t.Chdir(root)
	for _, s := range sessions {
		t.Run(strings.Join(s.args, " "), func(t *testing.T) {
			out, errOut, _ := run(s.args...)
			got := strings.Split(out+errOut, "\n")
			i := 0
			for _, want := range s.want {
				if strings.TrimSpace(want) == "..." {
					continue
				}
				prefix, isPrefix := strings.CutSuffix(want, "...")
				for ; i < len(got); i++ {
					if got[i] == want || isPrefix && strings.HasPrefix(got[i], prefix) {
						break
					}
				}
				if i == len(got) {
					t.Fatalf("README shows %q, which `offedge %s` does not print (in this order); it prints:\n%s", want, strings.Join(s.args, " "), out+errOut)
				}
				i++
			}
		})
	}
}

type readmeSession struct {
	args []string
	want []string
}

// readmeSessions finds the "$ offedge" lines of the fenced blocks and the
// lines each is followed by, up to the next command or the block's end.
func readmeSessions(text string) []readmeSession {
	var out []readmeSession
	in := false
	var cur *readmeSession
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			in, cur = !in, nil
			continue
		}
		if !in {
			continue
		}
		if cmd, ok := strings.CutPrefix(line, "$ offedge "); ok {
			out = append(out, readmeSession{args: strings.Fields(cmd)})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && line != "" {
			cur.want = append(cur.want, line)
		}
	}
	return out
}
