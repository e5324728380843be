// Package openfoodfacts embeds the Open Food Facts inventory: the network
// layer of Open Food Facts' donated servers at Free, OVH and Moji, written
// from the infrastructure overview and the project's public documentation
// (see README.md for the sources and for every deviation from them).
//
// It is offedge's default inventory and the input of its end-to-end tests:
//
//	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
package openfoodfacts

import (
	"embed"
	"io/fs"
)

//go:embed inventory.yaml inventory.d README.md
var files embed.FS

// FS returns the inventory files; the entry file is "inventory.yaml".
func FS() fs.FS { return files }
