// Command geninv writes a generated inventory (internal/gen) to a
// directory, for timing the CLI on it (bench/scale.sh):
//
//	geninv -servers 5000 -guests 20000 -services 50000 -out DIR
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/offedge/offedge/internal/gen"
)

func main() {
	var c gen.Config
	flag.IntVar(&c.Servers, "servers", gen.Large.Servers, "servers")
	flag.IntVar(&c.Guests, "guests", gen.Large.Guests, "guests (a multiple of the servers, at least twice as many)")
	flag.IntVar(&c.Services, "services", gen.Large.Services, "services")
	out := flag.String("out", "", "the directory to write inventory.yaml into (created; must not hold an inventory already)")
	flag.Parse()
	if err := run(c, *out); err != nil {
		fmt.Fprintln(os.Stderr, "geninv:", err)
		os.Exit(1)
	}
}

func run(c gen.Config, out string) error {
	if out == "" {
		return fmt.Errorf("-out is required")
	}
	if _, err := os.Stat(filepath.Join(out, "inventory.yaml")); err == nil {
		return fmt.Errorf("%s already holds an inventory", out)
	}
	fsys, err := gen.FS(c)
	if err != nil {
		return err
	}
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(out, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}
