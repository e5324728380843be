package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/offedge/offedge/internal/secretfile"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// cmdSecrets makes tunnel secrets: `secrets new FILE` writes one (32
// random bytes, base64url, mode 0600); `secrets init --node N` writes every
// pre-shared secret the node's plan reads that is not there yet. Neither
// ever replaces an existing file.
func cmdSecrets(e *env, args []string) error {
	fl := e.newFlags("secrets")
	inv := inventoryFlag(fl)
	node := fl.String("node", "", "the `NAME` of the node whose secrets secrets init creates")
	root := fl.String("root", "", "`DIR` prefixed to every secret path (as run --root)")
	owner := fl.String("owner", "", "`USER` that owns the created files (the service user, offedge); default: the caller")
	pos, err := e.parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError("say new FILE or init --node NAME")
	}
	uid, gid := -1, -1
	if *owner != "" {
		u, err := user.Lookup(*owner)
		if err != nil {
			return usageError("--owner %s: %v", *owner, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	create := func(path string) error {
		if err := secretfile.Generate(path); err != nil {
			return err
		}
		if uid >= 0 {
			if err := os.Chown(path, uid, gid); err != nil {
				os.Remove(path)
				return fmt.Errorf("new secret %s: %w", path, err)
			}
		}
		return nil
	}
	switch pos[0] {
	case "new":
		if len(pos) != 2 {
			return usageError("secrets new takes one file")
		}
		if err := create(pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d random bytes written to %s (mode 0600); copy it to both ends of the tunnel\n", secretfile.NewLen, pos[1])
		return nil
	case "init":
		if len(pos) != 1 {
			return usageError("secrets init takes no argument; name the node with --node")
		}
	default:
		return usageError("unknown secrets action %q: use new or init", pos[0])
	}
	if *node == "" {
		return usageError("secrets init needs --node NAME")
	}
	m, p, err := nodePlan(*inv, *node, plan.Options{Root: *root})
	if err != nil {
		return err
	}
	created, kept := 0, 0
	for _, s := range p.Secrets() {
		if s.Kind != plan.SecretPSK && s.Kind != plan.SecretAdminToken {
			if _, err := os.Stat(s.Path); err != nil {
				fmt.Fprintf(e.stdout, "missing %s (%s): a PKI key; make it with offedge pki issue %s\n", s.Path, strings.Join(s.Uses, ", "), *node)
			}
			continue
		}
		if _, err := os.Lstat(s.Path); err == nil {
			fmt.Fprintf(e.stdout, "kept    %s (%s): it exists\n", s.Path, strings.Join(s.Uses, ", "))
			kept++
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(s.Path), 0o750); err != nil {
			return err
		}
		if err := create(s.Path); err != nil {
			return err
		}
		created++
		fmt.Fprintf(e.stdout, "created %s (%s)\n", s.Path, strings.Join(s.Uses, ", "))
		// The inventory gives both ends one path; --root is only this
		// machine's prefix.
		there := strings.TrimPrefix(s.Path, strings.TrimSuffix(*root, "/"))
		if s.Kind == plan.SecretAdminToken {
			fmt.Fprintf(e.stdout, "        copy it to every node whose dashboard asks this one: scp -p %s NODE:%s\n", s.Path, there)
		}
		for _, peer := range peerEnds(m, *node, s.Uses) {
			fmt.Fprintf(e.stdout, "        copy it to the other end: scp -p %s %s:%s (unless %s already holds this tunnel's secret: then copy that one here instead)\n", s.Path, peer, there, peer)
		}
	}
	fmt.Fprintf(e.stdout, "%d created, %d kept\n", created, kept)
	return nil
}

// peerEnds names the nodes at the other end of the given tunnel uses
// ("NAME entrance" or "NAME exit") of node.
func peerEnds(m *inventory.Model, node string, uses []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if n != "" && n != node && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, u := range uses {
		name, end, _ := strings.Cut(u, " ")
		t := m.Tunnel(name)
		if t == nil {
			continue
		}
		if end == "entrance" {
			for _, x := range t.Exits {
				add(x.Node)
			}
		} else if t.Entrance != nil {
			add(t.Entrance.Node)
		}
	}
	return out
}

// missingSecrets says which secret files of p are not on this machine, for
// `offedge plan`: run refuses to start without them.
func missingSecrets(p *plan.Plan) []plan.Secret {
	var out []plan.Secret
	for _, s := range p.Secrets() {
		if _, err := os.Stat(s.Path); err != nil {
			out = append(out, s)
		}
	}
	return out
}
