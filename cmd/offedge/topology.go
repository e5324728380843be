package main

import (
	"fmt"
	"io"
	"os"

	"github.com/offedge/offedge/topology"
)

func cmdWhy(e *env, args []string) error {
	fs := e.newFlags("why")
	inv := inventoryFlag(fs)
	format := fs.String("format", "text", "output format: `text|json`")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("name a node (or internet) and a service, site hostname or node: offedge why docker-prod mongodb")
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	ex, err := topology.Why(m, pos[0], pos[1])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	write := ex.WriteText
	if *format == "json" {
		write = ex.WriteJSON
	}
	if err := write(e.stdout); err != nil {
		return err
	}
	if !ex.Reachable() {
		return &exitError{code: 1}
	}
	return nil
}

func cmdImpact(e *env, args []string) error {
	fs := e.newFlags("impact")
	inv := inventoryFlag(fs)
	format := fs.String("format", "text", "output format: `text|json`")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError("name the node(s) that go down: offedge impact ovh1")
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	r, err := topology.Impact(m, pos...)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *format == "json" {
		return r.WriteJSON(e.stdout)
	}
	return r.WriteText(e.stdout)
}

func cmdGraph(e *env, args []string) error {
	fs := e.newFlags("graph")
	inv := inventoryFlag(fs)
	format := fs.String("format", "svg", "output format: `svg|dot|mermaid`")
	output := fs.String("output", "", "write to `FILE` instead of standard output")
	fs.StringVar(output, "o", "", "shorthand for --output")
	width := fs.Int("width", 1400, "svg: the widest the picture may be, in `PX` (providers and servers wrap into rows; 860 suits a README)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	path, err := inventoryArg(*inv, pos)
	if err != nil {
		return err
	}
	m, err := loadInventory(path)
	if err != nil {
		return err
	}
	g := topology.Build(m)
	var write func(io.Writer) error
	switch *format {
	case "svg":
		if *width < 400 || *width > 20000 {
			return usageError("--width must be 400 to 20000 px, not %d", *width)
		}
		write = func(w io.Writer) error { return g.WriteSVGOptions(w, topology.SVGOptions{Width: float64(*width)}) }
	case "dot":
		write = g.WriteDOT
	case "mermaid":
		write = g.WriteMermaid
	default:
		return usageError("--format must be svg, dot or mermaid, not %q", *format)
	}
	if *output == "" {
		return write(e.stdout)
	}
	f, err := os.Create(*output)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s\n", *output)
	return nil
}
