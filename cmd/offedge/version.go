package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// buildInfo is what the binary knows about how it was built.
type buildInfo struct {
	module   string // the main module's version: "(devel)" or v1.2.3 from go install
	revision string // vcs.revision
	time     string // vcs.time
	modified bool   // vcs.modified: built from a work tree with changes
	goVer    string
}

// Commit is set by the package build (-X main.Commit=...), which builds
// without VCS stamping (-trimpath, reproducible).
var Commit = ""

func readBuildInfo() buildInfo {
	b := buildInfo{revision: Commit}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.module, b.goVer = info.Main.Version, info.GoVersion
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.revision == "" {
				b.revision = s.Value
			}
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// versionLine says which offedge this is: the version stamped by the
// package build (-X main.Version), else the module version go install
// recorded, and the commit it was built from, so that "dev" never stands
// alone.
func versionLine(stamped string, b buildInfo) string {
	v := stamped
	if (v == "" || v == "dev") && b.module != "" && b.module != "(devel)" {
		v = b.module
	}
	if v == "" {
		v = "dev"
	}
	var extra []string
	if b.revision != "" {
		r := b.revision
		if len(r) > 12 {
			r = r[:12]
		}
		if b.modified {
			r += "+modified"
		}
		extra = append(extra, "commit "+r)
	}
	if b.time != "" {
		extra = append(extra, b.time)
	}
	if b.goVer != "" {
		extra = append(extra, b.goVer)
	}
	if len(extra) == 0 {
		return "offedge " + v + " (no build information: built without module or VCS data)"
	}
	return fmt.Sprintf("offedge %s (%s)", v, strings.Join(extra, ", "))
}
