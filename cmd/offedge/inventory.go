package main

import (
	"flag"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

// inventoryFlag adds the --inventory flag every command shares.
func inventoryFlag(fs *flag.FlagSet) *string {
	p := fs.String("inventory", "", "inventory file or directory (default: the embedded Open Food Facts inventory)")
	fs.StringVar(p, "i", "", "shorthand for --inventory")
	return p
}

// loadInventory loads the inventory at path, or the embedded example.
func loadInventory(path string) (*inventory.Model, error) {
	if path == "" {
		return inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	}
	return inventory.LoadPath(path)
}
