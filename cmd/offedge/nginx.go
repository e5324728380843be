package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/offedge/offedge/check"
	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/interop/nginx"
)

// importNginx turns nginx configuration files (or conf.d directories)
// into an inventory fragment for one node: sites, routes, upstreams and
// the node's protection (docs/migration.md). The fragment is checked the
// way it will be used, included by the inventory: it must load and pass
// offedge check before it is written. The report lists every directive,
// mapped or not, with its file and line.
func importNginx(e *env, inv, node, prefix, out, report string, hosts hostMap, paths []string) error {
	if len(paths) == 0 {
		return usageError("offedge import nginx PATH... --node NAME: name the nginx files or conf.d directories")
	}
	if node == "" {
		return usageError("--node is required: the node this nginx config runs on")
	}
	base, entry := openfoodfacts.FS(), "inventory.yaml"
	if inv != "" {
		st, err := os.Stat(inv)
		if err != nil {
			return fmt.Errorf("reading inventory: %w", err)
		}
		dir, name := filepath.Dir(inv), filepath.Base(inv)
		if st.IsDir() {
			dir, name = inv, "inventory.yaml"
		}
		base, entry = os.DirFS(dir), name
	}
	m, err := loadInventory(inv)
	if err != nil {
		return err
	}
	if err := checkNode(m, node); err != nil {
		return err
	}
	ld := &nginx.Loader{Prefix: prefix}
	ds, err := ld.Load(paths...)
	if err != nil {
		return err
	}
	im := &nginx.Importer{Model: m, Node: node, Hosts: hosts, Includes: ld.Includes}
	frag, rep, err := im.Import(ds)
	if err != nil {
		return err
	}
	var failed error
	merged, err := nginx.LoadWith(base, entry, frag)
	if err != nil {
		failed = fmt.Errorf("the fragment does not load with the inventory (fix the inventory or the report's problems first):\n%v", err)
	} else {
		var errs []check.Finding
		for _, f := range check.Run(merged) {
			if f.Severity == check.Error && f.Suppressed == "" {
				errs = append(errs, f)
			}
		}
		if len(errs) > 0 {
			msg := fmt.Sprintf("offedge check refuses the inventory with the fragment (%d errors):", len(errs))
			for _, f := range errs {
				msg += "\n" + f.String()
			}
			failed = fmt.Errorf("%s", msg)
		}
	}
	if err := writeTo(out, e.stdout, frag); err != nil {
		return err
	}
	if err := writeTo(report, e.stderr, []byte(rep.String())); err != nil {
		return err
	}
	if failed != nil {
		return &exitError{code: 1, err: failed}
	}
	if !rep.Complete() {
		return &exitError{code: 1, err: fmt.Errorf("%d unsupported directives and %d unmapped addresses to resolve by hand (see the report); the fragment loads and passes check", rep.Count(nginx.Unsupported), len(rep.Unmapped))}
	}
	return nil
}

// writeTo writes data to the file path, or to w when path is empty.
func writeTo(path string, w io.Writer, data []byte) error {
	if path == "" {
		_, err := w.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
