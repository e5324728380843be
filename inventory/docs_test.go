package inventory

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDocsCoverEveryField fails when a YAML field of the inventory types is
// missing from docs/inventory.md, so the reference stays complete.
func TestDocsCoverEveryField(t *testing.T) {
	doc, err := os.ReadFile("../docs/inventory.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] || rt.PkgPath() != reflect.TypeOf(File{}).PkgPath() {
			return
		}
		seen[rt] = true
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if !strings.Contains(section(string(doc), rt.Name()), "| `"+tag+"`") {
				t.Errorf("docs/inventory.md: section %q has no table row for field `%s`", "## "+rt.Name(), tag)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(File{}))
	if len(seen) < 10 {
		t.Fatalf("walked only %d types; the walk is broken", len(seen))
	}
}

// section returns the text of the "## name" section of a Markdown document.
func section(doc, name string) string {
	_, rest, ok := strings.Cut(doc, "\n## "+name+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
