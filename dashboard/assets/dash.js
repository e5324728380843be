// offedge dashboard: polls /api/dashboard and colours the topology drawn by
// offedge (GET /api/topology.svg). Plain JavaScript, no dependencies.
"use strict";
const icon = {up: "✔", down: "✖", "host-down": "✖", affected: "⚠", unknown: "?"};
const words = {up: "up", down: "down (cause)", "host-down": "down (its server is down)", affected: "affected", unknown: "unknown"};
// selected is {kind, name}: kind is node, site, tunnel, forward, replica,
// or edge (a drawn line carrying several objects: name is its index).
let state = null, selected = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

// morph makes parent's children equal to kids, keeping every element whose
// tag and attributes are unchanged and updating only the text that differs:
// the page redraws every second, and a button replaced under the pointer
// between mousedown and mouseup loses its click (and under the keyboard
// loses focus). A kept element keeps its listeners: every listener the page
// attaches is a function of the attributes compared (data-select,
// data-drill), so equal attributes mean an equal action.
function morph(parent, kids) {
  const want = kids.filter(k => k != null).map(k => typeof k === "string" ? document.createTextNode(k) : k);
  for (let i = 0; i < want.length; i++) {
    const cur = parent.childNodes[i], nu = want[i];
    if (!cur) parent.append(nu);
    else if (!sameNode(cur, nu)) parent.replaceChild(nu, cur);
    else if (cur.nodeType === Node.TEXT_NODE) { if (cur.data !== nu.data) cur.data = nu.data; }
    else morph(cur, [...nu.childNodes]);
  }
  while (parent.childNodes.length > want.length) parent.lastChild.remove();
}

function sameNode(a, b) {
  if (a.nodeType !== b.nodeType) return false;
  if (a.nodeType === Node.TEXT_NODE) return true;
  if (a.nodeType !== Node.ELEMENT_NODE || a.tagName !== b.tagName || a.attributes.length !== b.attributes.length) return false;
  for (const at of b.attributes) if (a.getAttribute(at.name) !== at.value) return false;
  return true;
}

// activate makes a drawing element a keyboard-reachable button.
function activate(g, label, fn) {
  g.setAttribute("tabindex", "0");
  g.setAttribute("role", "button");
  g.setAttribute("aria-label", label);
  g.addEventListener("click", fn);
  g.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fn(); } });
}

// edgeTarget is what selecting a drawn edge selects: the one object it
// draws, or the edge itself when it carries several.
const kindOfEdge = {tunnel: "tunnel", forward: "forward", replica: "replica", ingress: "site"};
function edgeTarget(p, i) {
  const names = (p.dataset.names || "").split(" ").filter(x => x);
  const k = kindOfEdge[p.dataset.kind];
  if (k && names.length === 1) return {kind: k, name: names[0]};
  return {kind: "edge", name: String(i)};
}

async function loadSVG() {
  const r = await fetch("/api/topology.svg");
  document.getElementById("svg").innerHTML = await r.text();
  for (const g of document.querySelectorAll("#svg g[data-node]")) {
    activate(g, g.dataset.node, () => select({kind: "node", name: g.dataset.node}));
  }
  const ns = "http://www.w3.org/2000/svg";
  document.querySelectorAll("#svg path[data-kind]").forEach((p, i) => {
    p.dataset.edge = String(i);
    const t = edgeTarget(p, i);
    activate(p, `${p.dataset.kind} ${p.dataset.from} to ${p.dataset.to}: ${p.dataset.names || ""}`, () => select(t));
    // A wider invisible twin takes the pointer: a 2 px line is hard to hit.
    const hit = document.createElementNS(ns, "path");
    hit.setAttribute("d", p.getAttribute("d"));
    hit.setAttribute("class", "hit");
    hit.dataset.hitFor = String(i);
    hit.addEventListener("click", () => select(t));
    p.after(hit);
  });
}

function nodeByName() { return Object.fromEntries(state.nodes.map(n => [n.name, n])); }

function paintSVG() {
  const ns = "http://www.w3.org/2000/svg";
  for (const n of state.nodes) {
    const g = document.querySelector(`#svg g[data-node="${CSS.escape(n.name)}"]`);
    if (!g) continue;
    g.classList.remove("up", "down", "host-down", "affected", "unknown", "sel");
    g.classList.add(n.state);
    if (selected && selected.kind === "node" && n.name === selected.name) g.classList.add("sel");
    g.setAttribute("aria-label", `${n.name}: ${words[n.state]}`);
    let m = g.querySelector("text.mark");
    if (n.state === "up") { if (m) m.remove(); continue; }
    const r = g.querySelector("rect");
    if (!m) { m = document.createElementNS(ns, "text"); m.setAttribute("class", "mark"); g.append(m); }
    m.setAttribute("x", +r.getAttribute("x") + +r.getAttribute("width") - 22);
    m.setAttribute("y", +r.getAttribute("y") + 40);
    m.setAttribute("fill", n.state === "affected" ? "#8a5300" : n.state === "unknown" ? "#4a4a4a" : "#b00020");
    m.textContent = icon[n.state];
  }
}

// paintEdges marks the edges the impact report says are lost (an end is
// down, or the tunnel, forward or replica it draws is lost, or the use it
// draws is one its node lost) and the replicas measured stale.
function paintEdges() {
  const st = nodeByName();
  const im = state.impact || {lost_tunnels: [], lost_forwards: [], stale_replicas: []};
  const downish = name => st[name] && (st[name].state === "down" || st[name].state === "host-down");
  const staleRep = new Set((state.replicas || []).filter(r => r.stale).map(r => r.name));
  for (const p of document.querySelectorAll("#svg path[data-kind]")) {
    const names = (p.dataset.names || "").split(" ");
    const from = p.dataset.from, to = p.dataset.to, kind = p.dataset.kind;
    let lost = downish(from) || downish(to);
    if (kind === "tunnel") lost = lost || names.some(x => (im.lost_tunnels || []).includes(x));
    if (kind === "forward") lost = lost || names.some(x => (im.lost_forwards || []).includes(x));
    if (kind === "replica") lost = lost || names.some(x => (im.stale_replicas || []).includes(x));
    if (kind === "uses" && st[from]) lost = lost || names.some(x => (st[from].lost || []).some(u => u.target === x));
    p.classList.toggle("lost", !!lost);
    p.classList.toggle("stale", kind === "replica" && names.some(x => staleRep.has(x)));
    const t = edgeTarget(p, +p.dataset.edge);
    p.classList.toggle("sel", !!selected && selected.kind === t.kind && selected.name === t.name);
  }
}

function selButton(kind, name, text, extra) {
  return el("button", Object.assign({class: "name", "data-select": `${kind}:${name}`, onclick: () => select({kind, name})}, extra || {}), text);
}

function drillButton(path, text) {
  return el("button", {class: "drill", "data-drill": path, onclick: () => drill(path)}, text);
}

function nodeItem(n) {
  const li = el("li", {class: `st-${n.state}` + (n.host ? " guest" : ""), "data-node": n.name, "data-state": n.state});
  const row = el("div", {class: "row"},
    selButton("node", n.name, n.name, {"aria-label": `details of ${n.name}`}),
    el("span", {class: "badge"}, `${icon[n.state]} ${words[n.state]}`));
  if (state.drill && !n.host) {
    const down = n.state === "down";
    row.append(drillButton(`nodes/${n.name}/${down ? "up" : "down"}`, down ? `bring ${n.name} up` : `take ${n.name} down`));
  }
  li.append(row);
  if (n.unknown) li.append(el("div", {class: "small"}, `? ${n.unknown}`));
  if (n.sites && n.sites.length) {
    const ul = el("ul", {class: "small"});
    for (const s of n.sites) ul.append(el("li", {class: s.lost ? "site lost" : "site", "data-site": s.name, "data-lost": s.lost},
      `${s.lost ? "✖ lost" : "✔"} site `, selButton("site", s.name, s.name, {"aria-label": `details of site ${s.name}`})));
    li.append(ul);
  }
  const svcs = (n.services || []).filter(s => s.running !== undefined || s.lost);
  if (svcs.length) {
    const ul = el("ul", {class: "small"});
    for (const s of svcs) {
      const stopped = s.running === false;
      const item = el("li", {class: "service" + (s.lost || stopped ? " lost" : ""), "data-service": s.name, "data-running": String(s.running)},
        `${s.lost ? "✖ lost" : stopped ? "✖ stopped" : "✔"} service ${s.name}:${s.port} `);
      if (state.drill_objects && s.running !== undefined) item.append(drillButton(`services/${s.name}/${stopped ? "start" : "stop"}`, stopped ? `start ${s.name}` : `stop ${s.name}`));
      ul.append(item);
    }
    li.append(ul);
  }
  if (n.lost && n.lost.length) {
    const ul = el("ul", {class: "lost small"});
    for (const u of n.lost) ul.append(el("li", {class: "uses-lost", "data-target": u.target, title: u.reason}, `✖ lost ${u.kind} ${u.target}: ${u.reason}`));
    li.append(ul);
  }
  return li;
}

function fmtDur(s) {
  if (s == null) return "none known";
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function replicaWords(r) {
  if (r.lost) return "✖ lost (an end is down)";
  if (!r.measured) return "– not measured here";
  if (r.stale) return `⚠ stale: lag ${fmtDur(r.lag_seconds)} > max_lag ${fmtDur(r.max_lag_seconds)}`;
  return `✔ lag ${fmtDur(r.lag_seconds)} ≤ max_lag ${fmtDur(r.max_lag_seconds)}`;
}

function objectLists() {
  const tl = document.getElementById("tunnels");
  morph(tl, (state.tunnels || []).map(t => el("li", {class: t.lost ? "lost" : "", "data-tunnel": t.name, "data-lost": String(t.lost)},
    `${t.lost ? "✖ lost" : "✔"} `, selButton("tunnel", t.name, t.name, {"aria-label": `details of tunnel ${t.name}`}),
    el("span", {class: "small"}, ` ${t.entrance} → ${(t.exits || []).join(", ")} (${t.service})`))));
  const rl = document.getElementById("replicas");
  morph(rl, (state.replicas || []).map(r => {
    const li = el("li", {class: r.lost || r.stale ? "lost" : "", "data-replica": r.name, "data-stale": String(r.stale), "data-lost": String(r.lost)},
      selButton("replica", r.name, r.name, {"aria-label": `details of replica ${r.name}`}),
      el("span", {class: "small"}, ` ${r.source} → ${r.target}: ${replicaWords(r)} `));
    if (state.drill_objects && r.kind === "zfs") li.append(drillButton(`replicas/${r.name}/${r.stale ? "resume" : "stall"}`, r.stale ? `resume ${r.name}` : `stall ${r.name}`));
    return li;
  }));
}

function render() {
  const s = document.getElementById("summary");
  const stale = (state.replicas || []).filter(r => r.stale).length;
  const unknown = state.nodes.filter(n => n.state === "unknown").length;
  const tail = (stale ? `; ⚠ ${stale} replicas stale` : "") + (unknown ? `; ? ${unknown} nodes unknown` : "");
  if (state.causes && state.causes.length) {
    const im = state.impact;
    s.className = "bad";
    s.textContent = `✖ down: ${state.causes.join(", ")} — lost ${im.lost_sites.length} sites, ${im.lost_services.length} services, ${im.lost_tunnels.length} tunnels; ${state.nodes.filter(n => n.state === "affected").length} nodes affected${tail}`;
  } else {
    s.className = stale ? "bad" : "";
    s.textContent = `✔ ${state.nodes.length - unknown} nodes up${tail}`;
  }
  const ul = document.getElementById("nodes");
  const focus = document.activeElement && document.activeElement.dataset ? (document.activeElement.dataset.drill || document.activeElement.dataset.select) : null;
  morph(ul, state.nodes.map(nodeItem));
  objectLists();
  if (focus) {
    // Keep the keyboard where it was across a redraw of the lists.
    const key = focus.replace(/\/(up|down|stop|start|stall|resume)$/, "/");
    const b = [...document.querySelectorAll("#side button")].find(x => (x.dataset.drill || "").startsWith(key) || x.dataset.select === focus);
    if (b) b.focus();
  }
  paintSVG();
  paintEdges();
  if (selected) renderDetail();
}

// allProbes are every probe result of every vantage point, the internet's too.
function allProbes() {
  const out = [];
  const add = st => { for (const p of (st && st.probes) || []) out.push(p); };
  add(state.internet);
  for (const n of state.nodes) add(n.status);
  return out;
}

function probeList(ps) {
  const ul = el("ul", {class: "small"});
  for (const p of ps) {
    const pr = p.probe || {};
    const cert = p.not_after ? ` · certificate until ${p.not_after.slice(0, 10)}` : "";
    const why = p.success ? "" : `: ${p.reason || ""}${p.detail ? " (" + p.detail + ")" : ""}`;
    ul.append(el("li", {class: p.success || p.skipped ? "" : "lost"}, `${p.skipped ? "–" : p.success ? "✔" : "✖"} ${pr.name || ""} from ${pr.from || ""}${why}${p.skipped ? " skipped: " + p.skipped : ""}${cert}`));
  }
  return ul;
}

function listenerTable(ls) {
  const t = el("table", {}, el("tr", {}, el("th", {}, "listener"), el("th", {}, "address"), el("th", {}, "accepted"), el("th", {}, "denied")));
  for (const l of ls) t.append(el("tr", {}, el("td", {}, `${l.node ? l.node + ": " : ""}${l.name}`), el("td", {}, l.addr || ""), el("td", {}, String(l.accepted ?? "")), el("td", {}, String(l.denied ?? ""))));
  return t;
}

// listeners are the listeners of the nodes named, those whose name passes keep.
function listeners(nodes, keep) {
  const st = nodeByName(), out = [];
  for (const name of nodes) {
    const s = st[name] && st[name].status;
    for (const l of (s && s.runtime && s.runtime.listeners) || []) if (keep(l)) out.push(Object.assign({node: name}, l));
  }
  return out;
}

function section(kids, title, body) { kids.push(el("h2", {}, title), body); }

function detailOf(sel) {
  const st = nodeByName();
  const kids = [];
  const probes = allProbes();
  switch (sel.kind) {
  case "node": {
    const n = st[sel.name];
    if (!n) return null;
    kids.push(el("h2", {}, `${n.name} `, el("span", {class: "small"}, `${n.kind}${n.host ? " on " + n.host : ""}${n.provider ? " · " + n.provider : ""} · ${icon[n.state]} ${words[n.state]}`)));
    if (n.unknown) kids.push(el("p", {class: "small"}, `? ${n.unknown}`));
    const ls = listeners([n.name], () => true);
    if (ls.length) section(kids, "Listeners", listenerTable(ls));
    const ps = (n.status && n.status.probes) || [];
    if (ps.length) section(kids, "Probes", probeList(ps));
    return {kids, impact: {kind: "node", name: n.name}};
  }
  case "site": {
    let site = null, node = null;
    for (const n of state.nodes) for (const s of n.sites || []) if (s.name === sel.name) { site = s; node = n; }
    if (!site) return null;
    kids.push(el("h2", {}, `site ${site.name} `, el("span", {class: "small"}, `on ${node.name} · ${site.lost ? "✖ lost" : "✔ served"}`)));
    kids.push(el("p", {class: "small"}, `hosts: ${site.hosts.join(", ")}`));
    const ls = listeners([node.name], l => l.kind === "http" || l.kind === "https");
    if (ls.length) section(kids, `Listeners of ${node.name}`, listenerTable(ls));
    const ps = probes.filter(p => p.probe && (p.probe.kind === "site" || p.probe.kind === "upstream") && p.probe.object === site.name);
    section(kids, "Probes and certificate", ps.length ? probeList(ps) : el("p", {class: "small"}, "no probe result here"));
    return {kids, impact: {kind: "site", name: site.name}};
  }
  case "tunnel": {
    const t = (state.tunnels || []).find(x => x.name === sel.name);
    if (!t) return null;
    kids.push(el("h2", {}, `tunnel ${t.name} `, el("span", {class: "small"}, t.lost ? "✖ lost" : "✔ carries")));
    kids.push(el("p", {class: "small"}, `entrance ${t.entrance} → exit ${(t.exits || []).join(", ")} → service ${t.service}`));
    const ls = listeners([t.entrance, ...(t.exits || [])], l => l.name.startsWith(`tunnel ${t.name} `));
    if (ls.length) section(kids, "Listeners", listenerTable(ls));
    const ps = probes.filter(p => p.probe && p.probe.kind === "tunnel" && p.probe.object === t.name);
    section(kids, "Probes", ps.length ? probeList(ps) : el("p", {class: "small"}, "no probe result here"));
    return {kids, impact: {kind: "tunnel", name: t.name}};
  }
  case "forward": {
    const f = (state.forwards || []).find(x => x.name === sel.name);
    if (!f) return null;
    kids.push(el("h2", {}, `forward ${f.name} `, el("span", {class: "small"}, `on ${f.node} · ${f.lost ? "✖ lost" : "✔ relays"}`)));
    const ls = listeners([f.node], l => l.name === `forward ${f.name}` || l.name.startsWith(`forward ${f.name} `));
    if (ls.length) section(kids, "Listeners", listenerTable(ls));
    const ps = probes.filter(p => p.probe && p.probe.kind === "forward" && p.probe.object === f.name);
    section(kids, "Probes", ps.length ? probeList(ps) : el("p", {class: "small"}, "no probe result here"));
    return {kids, impact: {kind: "forward", name: f.name}};
  }
  case "replica": {
    const r = (state.replicas || []).find(x => x.name === sel.name);
    if (!r) return null;
    kids.push(el("h2", {}, `replica ${r.name} `, el("span", {class: "small"}, `${r.kind} ${r.source} → ${r.target}`)));
    kids.push(el("p", {class: r.stale || r.lost ? "lost" : "", "data-replica-state": r.stale ? "stale" : r.lost ? "lost" : "fresh"}, replicaWords(r)));
    if (r.error) kids.push(el("p", {class: "small lost"}, `✖ last measurement failed: ${r.error}`));
    return {kids, impact: {kind: "replica", name: r.name}};
  }
  case "edge": {
    const p = document.querySelector(`#svg path[data-edge="${CSS.escape(sel.name)}"]`);
    if (!p) return null;
    kids.push(el("h2", {}, `${p.dataset.kind} ${p.dataset.from} → ${p.dataset.to}`));
    const k = kindOfEdge[p.dataset.kind];
    const ul = el("ul", {class: "small"});
    for (const name of (p.dataset.names || "").split(" ").filter(x => x)) ul.append(el("li", {}, k ? selButton(k, name, `${k} ${name}`) : `${name}`));
    kids.push(ul);
    if (p.dataset.kind === "uses") {
      const n = st[p.dataset.from];
      const lost = ((n && n.lost) || []).filter(u => (p.dataset.names || "").split(" ").includes(u.target));
      kids.push(el("p", {class: lost.length ? "lost small" : "small"}, lost.length ? lost.map(u => `✖ lost ${u.target}: ${u.reason}`).join("; ") : "✔ every use it draws is reachable"));
    }
    return {kids, impact: null};
  }
  }
  return null;
}

let detailToken = 0;
async function renderDetail() {
  const d = document.getElementById("detail");
  const got = selected && detailOf(selected);
  if (!got) { d.hidden = true; return; }
  d.hidden = false;
  d.dataset.kind = selected.kind;
  d.dataset.name = selected.name;
  const kids = got.kids;
  let target = null;
  if (got.impact) {
    target = `${got.impact.kind}:${got.impact.name}`;
    kids.push(el("h2", {}, `If ${got.impact.kind === "node" ? "" : got.impact.kind + " "}${got.impact.name} goes down`));
    // The last answer for the same object stays until the next one comes:
    // no flash of "…" every second.
    const old = document.getElementById("impact");
    const last = old && old.dataset.impact === target ? [...old.childNodes].map(n => n.cloneNode(true)) : ["…"];
    kids.push(el("div", {class: "small", id: "impact", "data-impact": target}, ...last));
  }
  morph(d, kids);
  if (!target) return;
  const my = ++detailToken;
  let answer;
  try {
    const r = await fetch(`/api/impact?kind=${encodeURIComponent(got.impact.kind)}&name=${encodeURIComponent(got.impact.name)}`);
    const im = await r.json();
    const ul = el("ul", {});
    for (const l of im.losses || []) ul.append(el("li", {}, `✖ ${l.kind} ${l.name}: ${l.reason}`));
    answer = ul.children.length ? ul : "nothing else is lost";
  } catch (e) { answer = "impact unavailable"; }
  // morph kept the box already on the page, or put this one there.
  const box = document.getElementById("impact");
  if (my !== detailToken || !box || box.dataset.impact !== target) return;
  morph(box, [answer]);
}

function select(sel) {
  selected = sel;
  if (state) { paintSVG(); paintEdges(); renderDetail(); }
  document.getElementById("side").scrollTop = 0; // the details are at the top of the side panel
}

async function drill(path) {
  const r = await fetch(`/api/${path.split("/").map(encodeURIComponent).join("/")}`, {method: "POST"});
  if (!r.ok) document.getElementById("summary").textContent = `drill failed: ${await r.text()}`;
  await poll();
}

async function poll() {
  let next;
  try {
    const r = await fetch("/api/dashboard");
    next = await r.json();
  } catch (e) {
    document.getElementById("summary").textContent = "✖ the estate does not answer";
    return;
  }
  state = next;
  render(); // a fault here is the page's own: it reaches the console
}

(async () => {
  await loadSVG();
  await poll();
  setInterval(poll, 1000);
})();
