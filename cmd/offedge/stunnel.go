package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/offedge/offedge/interop/stunnel"
	"github.com/offedge/offedge/plan"
)

// hostMap is a repeatable --host NAME=NODE flag.
type hostMap map[string]string

func (h hostMap) String() string { return fmt.Sprint(map[string]string(h)) }
func (h hostMap) Set(v string) error {
	name, node, ok := strings.Cut(v, "=")
	if !ok || name == "" || node == "" {
		return fmt.Errorf("want NAME=NODE, got %q", v)
	}
	h[strings.ToLower(name)] = node
	return nil
}

var _ flag.Value = hostMap(nil)

// cmdImport turns a stunnel4 configuration into inventory YAML: client =
// yes sections become tunnel entrances on --node, client = no sections
// tunnel exits. Secrets stay files, referenced by path. A duplicated section
// name is reported and kept apart, never merged. `import nginx` is
// importNginx.
func cmdImport(e *env, args []string) error {
	fs := e.newFlags("import")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node this stunnel or nginx config runs on, or whose sanoid files are given without NODE=; stunnel and nginx: (required)")
	network := fs.String("network", "", "`NETWORK` of the node's accept addresses when the inventory cannot tell")
	hosts := hostMap{}
	fs.Var(hosts, "host", "the node behind a hostname in connect lines (stunnel) or proxy_pass and upstream servers (nginx), as `NAME=NODE` (repeatable)")
	prefix := fs.String("prefix", "/etc/nginx", "nginx: the `DIR` relative includes are read from; it stands for /etc/nginx in absolute ones")
	outFile := fs.String("out", "", "nginx, sanoid: write the inventory fragment to `FILE` instead of standard output")
	report := fs.String("report", "", "nginx, sanoid: write the report to `FILE` instead of standard error")
	schedule := fs.String("schedule", "15m", "sanoid: the `DURATION` written as every replica's schedule (syncoid runs after sanoid, every 15 minutes by the package's timer)")
	maxLag := fs.String("max-lag", "7h", "sanoid: the `DURATION` written as every replica's max_lag (sanoid's check warns at 7 h)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) >= 1 && pos[0] == "nginx" {
		return importNginx(e, *inv, *node, *prefix, *outFile, *report, hosts, pos[1:])
	}
	if len(pos) >= 1 && pos[0] == "sanoid" {
		return importSanoid(e, *inv, *node, *schedule, *maxLag, *outFile, *report, hosts, pos[1:])
	}
	if len(pos) != 2 || pos[0] != "stunnel" {
		return usageError("offedge import stunnel FILE --node NAME, offedge import nginx PATH... --node NAME, or offedge import sanoid [NODE=]PATH...")
	}
	if *node == "" {
		return usageError("--node is required: the node this stunnel config runs on")
	}
	f, err := os.Open(pos[1])
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := stunnel.Parse(pos[1], f)
	if err != nil {
		return err
	}
	// Like every other command, the embedded inventory unless --inventory
	// names another: it names the nodes behind the config's addresses.
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	im := stunnel.Importer{Model: m, Node: *node, Network: *network, Hosts: hosts}
	conv, problems := im.Convert(cfg)
	fmt.Fprint(e.stdout, conv)
	for _, p := range problems {
		fmt.Fprintf(e.stderr, "offedge import: %s\n", p)
	}
	if len(problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) to resolve by hand; see the FIXME comments", len(problems))}
	}
	return nil
}

// cmdExport writes the stunnel4 configuration (and the derived certificate
// and key of each psk tunnel) that lets a host still on stunnel4 run its
// side of the node's tunnels, interoperating with offedge on the other side.
func cmdExport(e *env, args []string) error {
	if len(args) > 0 && args[0] == "prometheus" {
		return cmdExportPrometheus(e, args[1:])
	}
	fs := e.newFlags("export")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node whose tunnels to export (required)")
	dir := fs.String("dir", "/etc/stunnel/offedge", "`DIR` where the config expects the derived certificates; export writes them there")
	root := fs.String("root", "", "`DIR` prefixed to the secret files the plan reads")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "stunnel" {
		return usageError("offedge export stunnel --node NAME, or offedge export prometheus --out DIR")
	}
	if *node == "" {
		return usageError("--node is required")
	}
	_, p, err := nodePlan(*inv, *node, plan.Options{Root: *root})
	if err != nil {
		return err
	}
	cfg, err := stunnel.Export(p, *dir)
	if err != nil {
		return err
	}
	out, err := stunnel.Render(cfg)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}
