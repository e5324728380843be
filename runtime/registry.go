package runtime

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/offedge/offedge/certs"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/plan"
)

// registry holds the node's resources (upstream pools, caches, access log
// files, certificates, tunnel secrets), each built once from its plan declaration and
// shared by every listener. A resource is identified by its kind, its name
// and its declaration: a reload that declares it unchanged gets the same
// object (a pool keeps its connections and health state, a cache its
// entries, a log its open file); a changed declaration is a new resource.
// Each generation (the set of resources one plan uses) holds a reference;
// a resource no generation holds any more is closed.
type registry struct {
	opts httpedge.Options
	// keys derives tunnel keys (nil: each secret derives on its own; the
	// lab shares one cache between its nodes).
	keys *tunnel.KeyCache
	// bans is the node's ban list, which jails ban into: one for the
	// node's life (bans are state a reload keeps).
	bans *protect.BanList
	// acme is the node's ACME machinery (accounts, challenges, the store
	// its ACME certificates are served from), for the node's life.
	acme *acmeNode

	mu    sync.Mutex
	items map[resKey]*resItem
}

type resKey struct {
	kind, name, spec string
}

type resItem struct {
	key   resKey
	refs  int
	value any
	close func() error
}

func newRegistry(opts httpedge.Options, keys *tunnel.KeyCache, bans *protect.BanList, acmeOpts ACMEOptions) *registry {
	return &registry{opts: opts, keys: keys, bans: bans, items: map[resKey]*resItem{}, acme: newACMENode(acmeOpts, opts.Logger)}
}

// generation is what one plan uses: a reference to each of its resources,
// and the view the HTTP servers are built on.
type generation struct {
	reg   *registry
	items []*resItem
	http  httpedge.Resources
	// secrets are the tunnel ends' loaded key material, by plan name.
	secrets map[string]*tunnel.Key
	// built counts the resources this generation had to build (not shared
	// with the generation before it).
	built int
	// acme are its ACME certificates, by name order.
	acme []*acmeCert
}

// acquire returns the generation for r: shared resources are referenced,
// missing ones built. On error nothing is left referenced or open, and the
// error names the resource.
func (reg *registry) acquire(r *plan.Resources) (*generation, error) {
	g := &generation{reg: reg, http: httpedge.Resources{
		Pools:        map[string]*httpedge.Pool{},
		Caches:       map[string]*httpedge.ResponseCache{},
		AccessLogs:   map[string]*httpedge.LogFile{},
		Certificates: map[string]*certs.Cert{},
	}}
	fail := func(err error) (*generation, error) {
		g.release()
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(r.Upstreams)) {
		u := r.Upstreams[name]
		v, err := reg.get("upstream", name, u, g, func() (any, func() error, error) {
			p, err := httpedge.NewPool(u, reg.opts)
			if err != nil {
				return nil, nil, err
			}
			return p, p.Close, nil
		})
		if err != nil {
			return fail(err)
		}
		g.http.Pools[name] = v.(*httpedge.Pool)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Caches)) {
		c := r.Caches[name]
		v, err := reg.get("cache", name, c, g, func() (any, func() error, error) {
			rc, err := httpedge.NewCache(c, reg.opts)
			if err != nil {
				return nil, nil, fmt.Errorf("cache %q: %w", name, err)
			}
			return rc, rc.Close, nil
		})
		if err != nil {
			return fail(err)
		}
		g.http.Caches[name] = v.(*httpedge.ResponseCache)
	}
	for _, name := range slices.Sorted(maps.Keys(r.AccessLogs)) {
		a := r.AccessLogs[name]
		v, err := reg.get("access log", name, a, g, func() (any, func() error, error) {
			l, err := httpedge.OpenAccessLog(a)
			if err != nil {
				return nil, nil, err
			}
			return l, l.Close, nil
		})
		if err != nil {
			return fail(err)
		}
		g.http.AccessLogs[name] = v.(*httpedge.LogFile)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Certificates)) {
		c := r.Certificates[name]
		if a, ok := r.ACME[name]; ok {
			// Obtained and renewed by the node: built with its manager,
			// kept across reloads that declare it unchanged.
			spec := struct {
				Files httpedge.Certificate
				ACME  plan.ACMECertificate
			}{c, a}
			v, err := reg.get("acme certificate", name, spec, g, func() (any, func() error, error) {
				ac, err := reg.acme.newACMECert(name, a, certFiles{c.CertFile, c.KeyFile})
				if err != nil {
					return nil, nil, err
				}
				return ac, ac.close, nil
			})
			if err != nil {
				return fail(err)
			}
			ac := v.(*acmeCert)
			g.acme = append(g.acme, ac)
			g.http.Certificates[name] = ac.cert
			switch a.Challenge {
			case "http-01":
				g.http.Challenges = reg.acme.challenges
			case "tls-alpn-01":
				g.http.ALPNChallenges = reg.acme.alpn
			}
			continue
		}
		v, err := reg.get("certificate", name, c, g, func() (any, func() error, error) {
			ct, err := httpedge.LoadCertificate(c, reg.opts)
			if err != nil {
				return nil, nil, fmt.Errorf("certificate %q: %w", name, err)
			}
			return ct, func() error { return nil }, nil
		})
		if err != nil {
			return fail(err)
		}
		g.http.Certificates[name] = v.(*certs.Cert)
	}
	if err := reg.acquireProtect(r, g); err != nil {
		return fail(err)
	}
	if err := reg.acquireSecrets(r, g); err != nil {
		return fail(err)
	}
	return g, nil
}

// acquireSecrets references the node's tunnel secrets. A secret is keyed
// by its declaration and by the version of its file (tunnel.SecretVersion):
// a reload after a pre-shared secret changed derives its new key (a file
// that cannot be read refuses the reload), one after no change keeps the
// key derived before. PKI files reload by themselves.
func (reg *registry) acquireSecrets(r *plan.Resources, g *generation) error {
	g.secrets = map[string]*tunnel.Key{}
	for _, name := range slices.Sorted(maps.Keys(r.Secrets)) {
		s := r.Secrets[name].Secret
		ver, err := tunnel.SecretVersion(s)
		if err != nil {
			return fmt.Errorf("secret %q: %w", name, err)
		}
		spec := struct {
			Secret  tunnel.Secret
			Version string
		}{s, ver}
		v, err := reg.get("secret", name, spec, g, func() (any, func() error, error) {
			k, err := tunnel.LoadSecret(s, tunnel.Options{Logger: reg.opts.Logger, Now: reg.opts.Now, Keys: reg.keys})
			if err != nil {
				return nil, nil, fmt.Errorf("secret %q: %w", name, err)
			}
			return k, func() error { return nil }, nil
		})
		if err != nil {
			return err
		}
		g.secrets[name] = v.(*tunnel.Key)
	}
	return nil
}

// acquireProtect references the node's rate zones, class maps, jails and
// tarpit: a zone kept across a reload keeps its counts, a jail its
// clients' events.
func (reg *registry) acquireProtect(r *plan.Resources, g *generation) error {
	if err := acquireEach(reg, g, "limit zone", r.Zones, &g.http.Zones, protect.NewZone); err != nil {
		return err
	}
	if err := acquireEach(reg, g, "map", r.Maps, &g.http.Maps, protect.NewMap); err != nil {
		return err
	}
	err := acquireEach(reg, g, "jail", r.Jails, &g.http.Jails, func(jc plan.Jail) (*protect.Jail, error) {
		return protect.NewJail(jc.JailConfig, jc.Site, reg.bans, reg.opts.Now)
	})
	if err != nil || r.Tarpit == nil {
		return err
	}
	tc := *r.Tarpit
	v, err := reg.get("tarpit", "tarpit", tc, g, func() (any, func() error, error) {
		t, err := protect.NewTarpit(tc)
		return t, func() error { return nil }, err
	})
	if err != nil {
		return err
	}
	g.http.Tarpit = v.(*protect.Tarpit)
	return nil
}

// acquireEach references (building when needed) one resource per
// declaration of specs, into *out; these resources hold no file or
// goroutine, so closing them is a no-op.
func acquireEach[C any, V any](reg *registry, g *generation, kind string, specs map[string]C, out *map[string]V, build func(C) (V, error)) error {
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		c := specs[name]
		v, err := reg.get(kind, name, c, g, func() (any, func() error, error) {
			x, err := build(c)
			if err != nil {
				return nil, nil, fmt.Errorf("%s %q: %w", kind, name, err)
			}
			return x, func() error { return nil }, nil
		})
		if err != nil {
			return err
		}
		if *out == nil {
			*out = map[string]V{}
		}
		(*out)[name] = v.(V)
	}
	return nil
}

// get references the resource (kind, name, spec), building it when no
// generation holds it.
func (reg *registry) get(kind, name string, spec any, g *generation, build func() (any, func() error, error)) (any, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	k := resKey{kind, name, string(b)}
	reg.mu.Lock()
	it, ok := reg.items[k]
	if ok {
		it.refs++
		reg.mu.Unlock()
		g.items = append(g.items, it)
		return it.value, nil
	}
	reg.mu.Unlock()
	// Built outside the lock: opening files and parsing certificates takes
	// time, and only Apply (serialised by the node) builds.
	v, closeFn, err := build()
	if err != nil {
		return nil, err
	}
	it = &resItem{key: k, refs: 1, value: v, close: closeFn}
	reg.mu.Lock()
	reg.items[k] = it
	reg.mu.Unlock()
	g.items = append(g.items, it)
	g.built++
	return v, nil
}

// release drops the generation's references; resources no generation
// holds any more are closed.
func (g *generation) release() {
	if g == nil {
		return
	}
	reg := g.reg
	var closing []*resItem
	reg.mu.Lock()
	for _, it := range g.items {
		it.refs--
		if it.refs == 0 {
			delete(reg.items, it.key)
			closing = append(closing, it)
		}
	}
	g.items = nil
	reg.mu.Unlock()
	for _, it := range closing {
		it.close()
	}
}

// sameHTTP reports whether g and o hand the same objects to HTTP servers,
// so that a server whose configuration did not change need not be rebuilt.
func (g *generation) sameHTTP(o *generation) bool {
	return sameMap(g.http.Pools, o.http.Pools) && sameMap(g.http.Caches, o.http.Caches) &&
		sameMap(g.http.AccessLogs, o.http.AccessLogs) && sameMap(g.http.Certificates, o.http.Certificates) &&
		sameMap(g.http.Zones, o.http.Zones) && sameMap(g.http.Maps, o.http.Maps) && sameMap(g.http.Jails, o.http.Jails) &&
		g.http.Tarpit == o.http.Tarpit && g.http.Challenges == o.http.Challenges &&
		g.http.ALPNChallenges == o.http.ALPNChallenges
}

func sameMap[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// open lists the resources the registry holds, as "kind name" (for tests
// and the status page).
func (reg *registry) open() []string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var out []string
	for k := range reg.items {
		out = append(out, k.kind+" "+k.name)
	}
	sort.Strings(out)
	return out
}
