package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/offedge/offedge/dashboard"
	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/internal/adminauth"
	"github.com/offedge/offedge/internal/gcpace"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/observe"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/runtime"
	"github.com/offedge/offedge/storage"
	"github.com/offedge/offedge/storage/zfs"
)

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usageError("--log-format must be text or json, not %q", format)
}

// compileChecked loads the inventory and runs runtime.Load on it (check,
// then compile): the path start-up, reload and plan --diff share.
func compileChecked(invPath, node string, opts plan.Options) (*inventory.Model, *plan.Plan, error) {
	m, err := loadInventory(invPath)
	if err != nil {
		return nil, nil, err
	}
	p, err := runtime.Load(m, node, opts)
	if err != nil {
		return nil, nil, err
	}
	return m, p, nil
}

func cmdRun(e *env, args []string) error {
	fs := e.newFlags("run")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node to run (required)")
	admin := fs.String("admin", "", "`ADDR` of the admin endpoint (GET /status, GET /metrics, GET /probes, POST /-/reload, GET|POST|DELETE /bans, POST /cache/purge, GET /certs, POST /certs/renew, GET / the dashboard), e.g. 127.0.0.1:9901")
	probeInterval := fs.Duration("probe-interval", observe.DefaultInterval, "how often each of the node's probes runs, a `DURATION` (0: no probes)")
	root := fs.String("root", "", "`DIR` prefixed to every file path in the plan")
	logFormat := fs.String("log-format", "text", "log format: `text|json`")
	drain := fs.Duration("drain", 30*time.Second, "how long SIGTERM waits for connections to finish, a `DURATION`")
	stateDir := fs.String("state-dir", defaultRunStateDir(), "the `DIR` where the node keeps what survives a restart (its bans); default: systemd's $STATE_DIRECTORY, else none (kept in memory)")
	fwOn := fs.Bool("firewall", false, "apply the node's nftables firewall at start and on every reload (root)")
	fwRemove := fs.Bool("firewall-remove", false, "with --firewall: remove the table on stop (default: leave it)")
	fwNetns := fs.String("netns", "", "with --firewall: the network namespace `PATH` whose firewall to manage")
	acmeCA := fs.String("acme-ca", "", "a PEM `FILE` of CA certificates trusted, besides the system's, for the ACME CA's own HTTPS (a private CA such as step-ca or pebble)")
	if err := e.parseNone(fs, args); err != nil {
		return err
	}
	acmeOpts, err := acmeClient(*acmeCA)
	if err != nil {
		return err
	}
	if *node == "" {
		return usageError("--node is required")
	}
	log, err := newLogger(e.stderr, *logFormat)
	if err != nil {
		return err
	}
	// Signals are caught from the start: a SIGHUP while starting (as the
	// firewall applies, say) waits for the loop below instead of killing
	// the process, which is SIGHUP's default.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	opts := plan.Options{Root: *root}
	m, p, err := compileChecked(*inv, *node, opts)
	if err != nil {
		return err
	}
	// current is the model the node runs now, for the dashboard.
	var current atomic.Pointer[inventory.Model]
	current.Store(m)
	probes := observe.For(observe.Generate(m), *node)
	if *probeInterval <= 0 {
		probes = nil
	}
	// The admin endpoint: --admin, else the inventory's admin: listen. Off
	// loopback it must have a token (OE704): refused before anything opens.
	adminAddr := *admin
	if adminAddr == "" && p.Admin != nil && p.Admin.Listen.IsValid() {
		adminAddr = p.Admin.Listen.String()
		*admin = adminAddr
	}
	guard := &adminauth.Guard{Log: log}
	if adminAddr != "" {
		if err := setAdminToken(guard, p, adminAddr); err != nil {
			return err
		}
	}
	if len(p.Listeners) == 0 && (len(probes) == 0 || *admin == "") && !(*fwOn && p.Firewall != nil) {
		return fmt.Errorf("node %q has nothing to serve in this inventory (and no probes to run behind --admin)", *node)
	}
	// The firewall first: listeners open behind it.
	fw, err := startFirewall(*fwOn, *fwRemove, *fwNetns, p, log)
	if err != nil {
		return err
	}
	defer fw.stop()
	rt, err := runtime.Start(p, runtime.Options{Logger: log, ShutdownTimeout: *drain, StateDir: *stateDir, ACME: acmeOpts})
	if err != nil {
		return err
	}
	if fw != nil {
		// Bans go to the firewall's ban sets as well as to the accept check.
		rt.Bans().OnChange(fw.exportBans)
		fw.exportBans(rt.Bans().List()) // those restored from the state file
	}
	log.Info("offedge running", "node", *node, "listeners", len(p.Listeners), "probes", len(probes), "version", Version)
	prober := observe.NewProber(probes, observe.NetDialer{OpenTunnel: observe.TunnelOpener(rt.OpenTunnel)},
		observe.ProberOptions{Interval: *probeInterval})
	probeCtx, stopProbes := context.WithCancel(context.Background())
	defer stopProbes()
	go prober.Run(probeCtx)
	go gcpace.Keep(probeCtx) // docs/http-server.md, "The garbage collector's pace"
	// The replicas this node holds, measured with the real zfs command
	// (docs/storage.md); the plan in force says which.
	storageWatch := storage.New(func() *plan.Storage { return rt.Plan().Storage }, zfs.Runner{}, log)
	go storageWatch.Run(probeCtx)

	sd := notifier{log: log}
	var mu sync.Mutex
	var adminLn *acl.Listener // the admin endpoint's, filtered by its plan's ACL
	reload := func() error {
		mu.Lock()
		defer mu.Unlock()
		sd.reloading()
		// rt.Reload counts a refused reload (the inventory fails to load,
		// check or compile, or the firewall cannot be applied) as a failed
		// one, like one the runtime cannot apply.
		var nm *inventory.Model
		var np *plan.Plan
		var newGuard adminauth.Guard
		err := rt.Reload(context.Background(), func() (*plan.Plan, error) {
			m, p, err := compileChecked(*inv, *node, opts)
			if err != nil {
				return nil, err
			}
			if *admin != "" {
				// The new token is read (or its absence refused) before
				// anything changes; it takes effect with the plan.
				if err := setAdminToken(&newGuard, p, adminAddr); err != nil {
					return nil, err
				}
			}
			if err := fw.apply(p); err != nil {
				return nil, fmt.Errorf("the firewall could not be applied; the previous table stays: %w", err)
			}
			nm, np = m, p
			current.Store(m)
			return p, nil
		})
		if err != nil {
			log.Error("reload refused; the running configuration keeps serving", "err", err)
			sd.ready("reload refused; serving the previous configuration")
			return err
		}
		if *admin != "" {
			guard.SetToken(newGuard.Token())
			adminLn.SetList(adminACL(np))
		}
		if *probeInterval > 0 {
			prober.SetProbes(observe.For(observe.Generate(nm), *node))
		}
		log.Info("reloaded", "listeners", len(np.Listeners))
		sd.ready(fmt.Sprintf("serving %d listeners (reloaded)", len(np.Listeners)))
		return nil
	}

	var adminSrv *http.Server
	if *admin != "" {
		raw, err := net.Listen("tcp", adminAddr)
		if err != nil {
			rt.Shutdown(context.Background())
			return fmt.Errorf("admin endpoint: %w", err)
		}
		adminLn = acl.Wrap(raw, adminACL(p), acl.ListenerOptions{Name: "admin endpoint", Logger: log})
		ln := net.Listener(adminLn)
		mux := http.NewServeMux()
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(rt.Status())
		})
		// The plan the node runs now, for `offedge plan --diff`: text, or
		// ?format=json.
		mux.HandleFunc("GET /plan", func(w http.ResponseWriter, r *http.Request) {
			p := rt.Plan()
			if r.URL.Query().Get("format") == "json" {
				w.Header().Set("Content-Type", "application/json")
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				enc.Encode(p)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			p.WriteText(w)
		})
		mux.Handle("GET /metrics", observe.Handler(observe.NewRegistry(observe.NodeOptions{
			Runtime: func() *runtime.Node { return rt }, Prober: prober, Storage: storageWatch, GoRuntime: true})))
		mux.HandleFunc("GET /probes", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(prober.Results())
		})
		protectHandlers(mux, func() *runtime.Node { return rt })
		certHandlers(mux, func() *runtime.Node { return rt })
		// The dashboard (GET /, docs/dashboard.md): this node's state and
		// its peers' (the other admin endpoints of its plan, asked with
		// bounds) in the estate's drawing, and "if this goes down".
		self := func() dashboard.NodeState {
			return dashboard.NodeState{Node: *node, Runtime: rt.Status(), Probes: prober.Results(), Replicas: storageWatch.Replicas()}
		}
		mux.HandleFunc("GET "+dashboard.NodePath, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(self())
		})
		estate := dashboard.NewEstate(func() *plan.Admin { return rt.Plan().Admin })
		var peers atomic.Pointer[map[string]dashboard.PeerAnswer]
		dashboard.Mount(mux, dashboard.Source{Model: current.Load, Partial: true,
			Nodes: func() (map[string]any, map[string]bool) {
				answers := estate.Gather(context.Background())
				peers.Store(&answers)
				status := map[string]any{*node: self()}
				for name, a := range answers {
					if a.Err == "" {
						status[name] = a.State
					}
				}
				return status, nil
			},
			Unknown: func() map[string]string {
				out := map[string]string{}
				if a := peers.Load(); a != nil {
					for name, ans := range *a {
						if ans.Err != "" {
							out[name] = "its admin endpoint does not answer: " + ans.Err
						}
					}
				}
				return out
			},
			Replicas: func() map[string]storage.ReplicaState {
				out := map[string]storage.ReplicaState{}
				if a := peers.Load(); a != nil {
					for _, ans := range *a {
						for _, r := range ans.Replicas() {
							out[r.Name] = r
						}
					}
				}
				for _, r := range storageWatch.Replicas() {
					out[r.Name] = r
				}
				return out
			},
		})
		mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
			if err := reload(); err != nil {
				http.Error(w, err.Error(), http.StatusUnprocessableEntity)
				return
			}
			fmt.Fprintln(w, "reloaded")
		})
		adminSrv = &http.Server{Handler: guard.Wrap(mux), ReadHeaderTimeout: 5 * time.Second}
		go adminSrv.Serve(ln)
		log.Info("admin endpoint", "addr", ln.Addr().String(), "token", guard.HasToken())
	}

	// Ready only now: every listener and the admin endpoint are open.
	sd.ready(fmt.Sprintf("serving %d listeners", len(p.Listeners)))
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	go sd.watchdog(wdCtx, func() bool { rt.Status(); return true })
	for s := range sig {
		if s == syscall.SIGHUP {
			reload()
			continue
		}
		stopWatchdog()
		sd.stopping()
		log.Info("draining", "signal", s.String(), "timeout", drain.String())
		ctx, cancel := context.WithTimeout(context.Background(), *drain)
		if adminSrv != nil {
			adminSrv.Shutdown(ctx)
		}
		err := rt.Shutdown(ctx)
		cancel()
		return err
	}
	return nil
}

// adminACL is who may connect to the admin endpoint: its plan's ACL; with
// no admin: in the inventory, anyone (the endpoint is then on loopback,
// setAdminToken refuses it elsewhere).
func adminACL(p *plan.Plan) acl.List {
	if p.Admin == nil {
		return acl.AllowAll()
	}
	return p.Admin.ACL
}

// setAdminToken gives g the token of p's admin endpoint, read from its
// token file, or none; an endpoint off loopback without one is refused
// (offedge check OE704 says the same of the inventory).
func setAdminToken(g *adminauth.Guard, p *plan.Plan, addr string) error {
	var tok *adminauth.Token
	if p.Admin != nil && p.Admin.TokenFile != "" {
		t, err := adminauth.ReadToken(p.Admin.TokenFile)
		if err != nil {
			return fmt.Errorf("admin endpoint %s: token: %w", addr, err)
		}
		tok = t
	}
	if tok == nil && !adminauth.IsLoopback(addr) {
		return fmt.Errorf("admin endpoint %s is off loopback and node %q declares no admin auth: anyone reaching it could reload, ban and purge; add under admin: in the inventory {node: %s, listen: %s, auth: {token_file: PATH}} (docs/inventory.md#admin), or use --admin 127.0.0.1:9901", addr, p.Node, p.Node, addr)
	}
	g.SetToken(tok)
	return nil
}

// adminClient is the HTTP client of the commands that call a running
// node's admin endpoint; with $OFFEDGE_ADMIN_TOKEN_FILE set, it sends that
// token (an endpoint with a token wants it on every request but GETs from
// loopback).
func adminClient(timeout time.Duration) (*http.Client, error) {
	c := &http.Client{Timeout: timeout}
	if path := os.Getenv("OFFEDGE_ADMIN_TOKEN_FILE"); path != "" {
		tok, err := adminauth.ReadClientToken(path)
		if err != nil {
			return nil, fmt.Errorf("$OFFEDGE_ADMIN_TOKEN_FILE: %w", err)
		}
		c.Transport = adminauth.Transport(nil, tok)
	}
	return c, nil
}

func cmdReload(e *env, args []string) error {
	fs := e.newFlags("reload")
	admin := fs.String("admin", "", "admin `ADDR` of the running offedge (required)")
	if err := e.parseNone(fs, args); err != nil {
		return err
	}
	if *admin == "" {
		return usageError("--admin is required (or send SIGHUP to the process)")
	}
	c, err := adminClient(time.Minute)
	if err != nil {
		return err
	}
	resp, err := c.Post("http://"+*admin+"/-/reload", "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return errors.New(string(body))
	}
	fmt.Fprint(e.stdout, string(body))
	return nil
}

// defaultRunStateDir is the state directory systemd gives the unit
// (StateDirectory=offedge sets $STATE_DIRECTORY; several are separated by
// colons: the first is the node's).
func defaultRunStateDir() string {
	d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":")
	return d
}
