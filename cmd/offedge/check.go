package main

import (
	"fmt"

	"github.com/offedge/offedge/check"
)

func cmdCheck(e *env, args []string) error {
	fs := e.newFlags("check")
	inv := inventoryFlag(fs)
	format := fs.String("format", "text", "output format: `text|json`")
	strict := fs.Bool("strict", false, "exit non-zero on warnings too")
	explain := fs.String("explain", "", "explain one rule (e.g. OE101) and exit: `ID`")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	path, err := inventoryArg(*inv, pos)
	if err != nil {
		return err
	}
	if *explain != "" {
		if err := check.Explain(e.stdout, *explain); err != nil {
			return &exitError{code: 2, err: err}
		}
		return nil
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	m, err := loadInventory(path)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("loading the inventory:\n%w", err)}
	}
	findings := check.Run(m)
	if *format == "json" {
		err = check.WriteJSON(e.stdout, findings)
	} else {
		err = check.WriteText(e.stdout, findings)
	}
	if err != nil {
		return err
	}
	errs, warns, _ := check.Counts(findings)
	if errs > 0 || (*strict && warns > 0) {
		return &exitError{code: 1}
	}
	return nil
}
