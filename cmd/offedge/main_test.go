package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/topology.svg")

func run(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = (&env{stdout: &o, stderr: &e}).main(args)
	return o.String(), e.String(), code
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"no args", nil, 2, "", "Usage: offedge COMMAND"},
		{"unknown command", []string{"chek"}, 2, "", `did you mean "check"?`},
		{"version", []string{"version"}, 0, "offedge dev", ""},
		{"help", []string{"help"}, 0, "Commands:", ""},
		{"help for a command", []string{"help", "plan"}, 0, "--node", ""},
		{"check clean", []string{"check"}, 0, "no findings", ""},
		{"check finds", []string{"check", "--inventory", "../../check/testdata/OE101.yaml"}, 1, "error OE101", ""},
		{"check json", []string{"check", "--format", "json"}, 0, `"errors": 0`, ""},
		{"check bad format", []string{"check", "--format", "xml"}, 2, "", "--format must be text or json"},
		{"check explain", []string{"check", "--explain", "OE303"}, 0, "OE303", ""},
		{"check explain unknown", []string{"check", "--explain", "OE999"}, 2, "", "OE999"},
		{"check broken inventory", []string{"check", "--inventory", "testdata/broken"}, 1, "", `unknown field "adress"`},
		{"plan needs node", []string{"plan"}, 2, "", "--node is required"},
		{"plan", []string{"plan", "--node", "off2"}, 0, "tunnel mongodb-ovh exit -> 10.0.0.2:27017", ""},
		{"plan unknown node", []string{"plan", "--node", "off9"}, 1, "", `unknown node "off9"`},
		{"why", []string{"why", "docker-prod", "mongodb"}, 0, "via tunnel mongodb-ovh: open", ""},
		{"why flags after args", []string{"why", "ovh-proxy", "robotoff", "--inventory", ""}, 0, "[tunnel robotoff, TLS 1.3]", ""},
		{"why unknown", []string{"why", "docker-prd", "mongodb"}, 2, "", `did you mean "docker-prod"`},
		{"impact", []string{"impact", "ovh1"}, 0, "docker-prod -> mongodb (service)", ""},
		{"impact needs a node", []string{"impact"}, 2, "", "name the node"},
		{"graph dot", []string{"graph", "--format", "dot"}, 0, "digraph", ""},
		{"graph mermaid", []string{"graph", "--format", "mermaid"}, 0, "flowchart", ""},
		{"completion", []string{"completion", "bash"}, 0, "complete -o default -F _offedge offedge", ""},
		{"completion unknown shell", []string{"completion", "tcsh"}, 2, "", "unknown shell"},
		{"run needs node", []string{"run"}, 2, "", "--node is required"},
		{"run refuses an inventory that fails check", []string{"run", "--node", "proxy", "--inventory", "../../check/testdata/OE101.yaml"}, 1, "", "fails check with 1 error(s)"},
		{"reload needs admin", []string{"reload"}, 2, "", "--admin is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
				t.Fatalf("offedge %v: exit %d, stdout %.300q, stderr %.300q; want exit %d, stdout with %q, stderr with %q",
					tt.args, code, out, errOut, tt.code, tt.out, tt.err)
			}
		})
	}
}

// TestReadmeGraph keeps docs/topology.svg, shown in the README, the graph of
// the embedded inventory.
func TestReadmeGraph(t *testing.T) {
	out, _, code := run("graph")
	if code != 0 {
		t.Fatalf("graph exit %d", code)
	}
	if *update {
		if err := os.WriteFile("../../docs/topology.svg", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("../../docs/topology.svg")
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != out {
		t.Fatal("docs/topology.svg is stale: run go test ./cmd/offedge -run TestReadmeGraph -update")
	}
}
