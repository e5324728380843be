package main

import (
	"fmt"

	"github.com/offedge/offedge/internal/secretfile"
)

// cmdSecret makes tunnel secrets: `secret new FILE` writes 32 random bytes
// (base64url, mode 0600) and refuses to replace an existing file.
func cmdSecret(e *env, args []string) error {
	fs := e.newFlags("secret")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "new" {
		return usageError("offedge secret new FILE")
	}
	if err := secretfile.Generate(pos[1]); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d random bytes written to %s (mode 0600); copy it to both ends of the tunnel\n", secretfile.NewLen, pos[1])
	return nil
}
