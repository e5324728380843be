package nginx

import (
	"io/fs"
	"path"
	"strings"
	"testing/fstest"

	"github.com/offedge/offedge/inventory"
)

// FragmentName is the name the fragment has in LoadWith's positions.
const FragmentName = "nginx-import.yaml"

// LoadWith loads the inventory whose entry file is entry in base together
// with fragment, as if the entry file included it: what `offedge import
// nginx` checks its output with before writing it, and what an operator
// gets by adding the file to the inventory's include list.
func LoadWith(base fs.FS, entry string, fragment []byte) (*inventory.Model, error) {
	dir := path.Dir(entry)
	top := path.Join(dir, "offedge-import-entry.yaml")
	frag := path.Join(dir, FragmentName)
	over := overlay{base: base, files: fstest.MapFS{
		top:  {Data: []byte("include: [" + quoteYAML(path.Base(entry)) + ", " + FragmentName + "]\n"), Mode: 0o644},
		frag: {Data: fragment, Mode: 0o644},
	}}
	return inventory.Load(over, top)
}

func quoteYAML(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// overlay serves files from files first, then from base.
type overlay struct {
	base  fs.FS
	files fstest.MapFS
}

func (o overlay) Open(name string) (fs.File, error) {
	if _, ok := o.files[name]; ok {
		return o.files.Open(name)
	}
	return o.base.Open(name)
}
