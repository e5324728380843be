package main

import (
	"fmt"
	"path/filepath"

	"github.com/offedge/offedge/pki"
)

func cmdPKI(e *env, args []string) error {
	fs := e.newFlags("pki")
	inv := inventoryFlag(fs)
	dir := fs.String("dir", "", "`DIR` of the CA: ca.pem, ca-key.pem (required; e.g. /etc/offedge/pki-ca on an offline machine)")
	out := fs.String("out", "", "`DIR` where pki issue writes NODE.pem, NODE-key.pem and ca.pem (default: DIR/nodes/NODE)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError("say init or issue NODE")
	}
	// No default directory: a CA written somewhere the operator did not
	// choose is a CA key left where nobody looks for it.
	if *dir == "" {
		return usageError("--dir is required: the directory that holds (or will hold) the CA")
	}
	switch pos[0] {
	case "init":
		if len(pos) != 1 {
			return usageError("pki init takes no argument")
		}
		if err := pki.Init(*dir); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "CA created in %s (keep ca-key.pem offline when you can)\n", *dir)
	case "issue":
		if len(pos) != 2 {
			return usageError("pki issue takes one node name")
		}
		// The certificate names a node; tunnel ends check the peer's name
		// against the inventory, so a name it does not have is refused
		// here rather than at the first handshake.
		m, err := loadInventory(*inv)
		if err != nil {
			return err
		}
		if err := checkNode(m, pos[1]); err != nil {
			return err
		}
		o := *out
		if o == "" {
			o = filepath.Join(*dir, "nodes", pos[1])
		}
		if err := pki.Issue(*dir, pos[1], o); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "certificate for %s written to %s; copy it to /etc/offedge/pki on that node\n", pos[1], o)
	default:
		return usageError("unknown pki action %q: use init or issue", pos[0])
	}
	return nil
}
