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
		{"version", []string{"version"}, 0, "offedge dev (", ""},
		// Traps of issue 16: each of these did something else before.
		{"check takes its inventory as an argument", []string{"check", "../../check/testdata/OE101.yaml"}, 1, "error OE101", ""},
		{"plan takes its inventory as an argument", []string{"plan", "--node", "proxy", "../../check/testdata/OE101.yaml"}, 0, "proxy", ""},
		{"graph takes its inventory as an argument", []string{"graph", "--format", "dot", "testdata/broken"}, 1, "", `unknown field "adress"`},
		{"two inventories refused", []string{"check", "--inventory", "testdata/broken", "../../check/testdata/OE101.yaml"}, 2, "", "two inventories given"},
		{"run refuses an argument", []string{"run", "--node", "off2", "inventory.yaml"}, 2, "", `unexpected argument "inventory.yaml"`},
		{"lab refuses an argument", []string{"lab", "inventory.yaml"}, 2, "", `unexpected argument "inventory.yaml"`},
		{"lab instance out of range", []string{"lab", "--instance", "9"}, 2, "", "--instance must be from 0 to 4"},
		{"flag before the command", []string{"-i", "x", "check"}, 2, "", "flags go after the command: offedge check -i x"},
		{"help version does not run version", []string{"help", "version"}, 0, "usage: offedge version", ""},
		{"help unknown command suggests", []string{"help", "chek"}, 2, "", `did you mean "check"?`},
		{"plan suggests a node", []string{"plan", "--node", "of2"}, 2, "", `unknown node "of2" (did you mean "off2"?)`},
		{"pki needs a directory", []string{"pki", "init"}, 2, "", "--dir is required"},
		{"pki refuses an unknown node", []string{"pki", "issue", "nosuchnode", "--dir", "testdata"}, 2, "", `unknown node "nosuchnode"`},
		{"import usage shows --node as required", []string{"help", "import"}, 0, "offedge import stunnel FILE --node NAME [", ""},
		{"completion completes node names", []string{"__nodes"}, 0, "docker-prod\n", ""},
		{"help", []string{"help"}, 0, "Commands:", ""},
		{"help for a command", []string{"help", "plan"}, 0, "--node", ""},
		{"check clean", []string{"check"}, 0, "no findings", ""},
		{"check finds", []string{"check", "--inventory", "../../check/testdata/OE101.yaml"}, 1, "error OE101", ""},
		{"check json", []string{"check", "--format", "json"}, 0, `"errors": 0`, ""},
		{"check bad format", []string{"check", "--format", "xml"}, 2, "", "--format must be text or json"},
		{"check explain", []string{"check", "--explain", "OE303"}, 0, "OE303", ""},
		{"check explain links the public reports", []string{"check", "--explain", "OE101"}, 0, "https://github.com/openfoodfacts/openfoodfacts-infrastructure/blob/develop/docs/reports/2024-01-04-setting-up-stunnel.md", ""},
		{"check explain unknown", []string{"check", "--explain", "OE999"}, 2, "", "OE999"},
		{"check broken inventory", []string{"check", "--inventory", "testdata/broken"}, 1, "", `unknown field "adress"`},
		{"plan needs node", []string{"plan"}, 2, "", "--node is required"},
		{"plan", []string{"plan", "--node", "off2"}, 0, "tunnel mongodb-ovh exit -> 10.0.0.2:27017", ""},
		{"plan unknown node", []string{"plan", "--node", "off9"}, 2, "", `unknown node "off9"`},
		{"why", []string{"why", "docker-prod", "mongodb"}, 0, "via tunnel mongodb-ovh: open", ""},
		{"why flags after args", []string{"why", "ovh-proxy", "robotoff", "--inventory", ""}, 0, "[tunnel robotoff, TLS 1.3]", ""},
		{"why unknown", []string{"why", "docker-prd", "mongodb"}, 2, "", `did you mean "docker-prod"`},
		{"why from the internet", []string{"why", "internet", "world.openfoodfacts.org"}, 0, "1. internet -> off1 213.36.253.206:443 on internet [site off]", ""},
		{"why from the internet, refused", []string{"why", "internet", "pmg-smtp"}, 1, "internet (any address on internet) is not admitted", ""},
		{"why json", []string{"why", "--format", "json", "docker-prod", "mongodb"}, 0, `"reachable": true`, ""},
		{"why bad format", []string{"why", "--format", "xml", "docker-prod", "mongodb"}, 2, "", "--format must be text or json"},
		{"impact", []string{"impact", "ovh1"}, 0, "docker-prod -> mongodb (service)", ""},
		{"impact json", []string{"impact", "--format", "json", "ovh1"}, 0, `"client": "docker-prod"`, ""},
		{"impact bad format", []string{"impact", "--format", "xml", "ovh1"}, 2, "", "--format must be text or json"},
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
		t.Run(tt.name, func(t *testing.T) { expectRun(t, tt.args, tt.code, tt.out, tt.err) })
	}
}

// expectRun runs a command line and checks its exit status and that stdout
// and stderr contain out and errOut.
func expectRun(t *testing.T, args []string, wantCode int, wantOut, wantErr string) {
	t.Helper()
	out, errOut, code := run(args...)
	if code != wantCode || !strings.Contains(out, wantOut) || !strings.Contains(errOut, wantErr) {
		t.Fatalf("offedge %v: exit %d, stdout %.300q, stderr %.300q; want exit %d, stdout with %q, stderr with %q",
			args, code, out, errOut, wantCode, wantOut, wantErr)
	}
}

// TestReadmeGraph keeps docs/topology.svg, shown in the README, the graph of
// the embedded inventory, drawn for the README's 860 px column.
func TestReadmeGraph(t *testing.T) {
	out, _, code := run("graph", "--width", "860")
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

// TestUsageListsEveryFlag holds the usage line, help, completion and man
// page to the flags each command really declares: before, usage lines left
// flags out and completion offered a --tour flag that did not exist.
func TestUsageListsEveryFlag(t *testing.T) {
	manDir := t.TempDir()
	if _, errOut, code := run("__man", "--date", "2026-12-01", manDir); code != 0 {
		t.Fatalf("__man: exit %d: %s", code, errOut)
	}
	bash, _, _ := run("completion", "bash")
	fish, _, _ := run("completion", "fish")
	for _, c := range commands() {
		if c.hidden || c.run == nil {
			continue
		}
		fs := flagsOf(c)
		if fs == nil {
			continue
		}
		line := usageLine(c)
		help, _, code := run("help", c.name)
		if code != 0 {
			t.Fatalf("help %s: exit %d", c.name, code)
		}
		page, err := os.ReadFile(manDir + "/offedge-" + c.name + ".1")
		if err != nil {
			t.Fatal(err)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if isShorthand(f) {
				return
			}
			if !strings.Contains(line, flagName(f.Name)) {
				t.Errorf("usage of %s leaves out %s: %s", c.name, flagName(f.Name), line)
			}
			if !strings.Contains(help, flagName(f.Name)) {
				t.Errorf("help %s leaves out %s", c.name, flagName(f.Name))
			}
			if !strings.Contains(string(page), `\-\-`+strings.ReplaceAll(f.Name, "-", `\-`)) {
				t.Errorf("man page of %s leaves out --%s", c.name, f.Name)
			}
			if !strings.Contains(bash, "--"+f.Name) || !strings.Contains(fish, "-l "+f.Name) {
				t.Errorf("completion of %s leaves out --%s", c.name, f.Name)
			}
		})
	}
	if usage, _, _ := run("help"); strings.Contains(usage, "__") {
		t.Errorf("help lists hidden commands:\n%s", usage)
	}
	for _, absent := range []string{"--tour", "__nodes)", "__man"} {
		if strings.Contains(bash, absent+" ") {
			t.Errorf("bash completion offers %q", absent)
		}
	}
	if !strings.Contains(bash, "offedge __nodes") || !strings.Contains(fish, "offedge __nodes") {
		t.Error("completion does not complete node names")
	}
}

func TestVersionLine(t *testing.T) {
	tests := []struct {
		stamped string
		b       buildInfo
		want    string
	}{
		{"dev", buildInfo{}, "offedge dev (no build information: built without module or VCS data)"},
		{"dev", buildInfo{module: "(devel)", revision: "0123456789abcdef", modified: true, goVer: "go1.26.8"}, "offedge dev (commit 0123456789ab+modified, go1.26.8)"},
		{"dev", buildInfo{module: "v0.3.0", goVer: "go1.26.8"}, "offedge v0.3.0 (go1.26.8)"},
		{"1.2.0", buildInfo{module: "v0.3.0", revision: "abc", time: "2026-12-01T00:00:00Z", goVer: "go1.26.8"}, "offedge 1.2.0 (commit abc, 2026-12-01T00:00:00Z, go1.26.8)"},
	}
	for _, tt := range tests {
		if got := versionLine(tt.stamped, tt.b); got != tt.want {
			t.Errorf("versionLine(%q, %+v) = %q; want %q", tt.stamped, tt.b, got, tt.want)
		}
	}
}

// TestSecrets: secrets init creates every pre-shared secret the node's plan
// reads (0600, 32 random bytes), never replaces one, and plan marks the
// ones missing on this machine.
func TestSecrets(t *testing.T) {
	root := t.TempDir()
	_, errOut, code := run("plan", "--node", "off2", "--root", root)
	if code != 0 || !strings.Contains(errOut, "4 secret file(s) of this plan are missing") || !strings.Contains(errOut, root+"/etc/offedge/psk/redis-ovh.psk") {
		t.Fatalf("plan before init: exit %d, stderr %q; want the four missing secrets marked", code, errOut)
	}
	out, errOut, code := run("secrets", "init", "--node", "off2", "--root", root)
	if code != 0 || !strings.Contains(out, "4 created, 0 kept") || !strings.Contains(out, "ovh-stunnel-client:/etc/offedge/psk/redis-ovh.psk") {
		t.Fatalf("secrets init: exit %d out %q err %q", code, out, errOut)
	}
	path := root + "/etc/offedge/psk/redis-ovh.psk"
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret %s: %v mode %v; want 0600", path, err, st.Mode())
	}
	first, _ := os.ReadFile(path)
	if len(strings.TrimSpace(string(first))) < 32 {
		t.Fatalf("secret is %d bytes; want 32 random bytes encoded", len(first))
	}
	out, _, code = run("secrets", "init", "--node", "off2", "--root", root)
	if again, _ := os.ReadFile(path); code != 0 || !strings.Contains(out, "0 created, 4 kept") || string(again) != string(first) {
		t.Fatalf("second init: exit %d out %q; want every secret kept as it was", code, out)
	}
	if _, errOut, _ := run("plan", "--node", "off2", "--root", root); strings.Contains(errOut, "missing") {
		t.Fatalf("plan after init still marks secrets missing: %q", errOut)
	}
	if _, errOut, code := run("secrets", "new", path); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("secrets new over an existing file: exit %d err %q; want a refusal", code, errOut)
	}
	if _, errOut, code := run("secrets", "init"); code != 2 || !strings.Contains(errOut, "--node") {
		t.Fatalf("secrets init without --node: exit %d err %q", code, errOut)
	}
}
