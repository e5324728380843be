// offedge dashboard: polls /api/dashboard and colours the topology drawn by
// offedge (GET /api/topology.svg). Plain JavaScript, no dependencies.
"use strict";
const icon = {up: "✔", down: "✖", "host-down": "✖", affected: "⚠"};
const words = {up: "up", down: "down (cause)", "host-down": "down (its server is down)", affected: "affected"};
let state = null, selected = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

async function loadSVG() {
  const r = await fetch("/api/topology.svg");
  document.getElementById("svg").innerHTML = await r.text();
  for (const g of document.querySelectorAll("#svg g[data-node]")) {
    g.setAttribute("tabindex", "0");
    g.setAttribute("role", "button");
    g.addEventListener("click", () => select(g.dataset.node));
    g.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(g.dataset.node); } });
  }
}

function paintSVG() {
  const ns = "http://www.w3.org/2000/svg";
  for (const n of state.nodes) {
    const g = document.querySelector(`#svg g[data-node="${CSS.escape(n.name)}"]`);
    if (!g) continue;
    g.classList.remove("up", "down", "host-down", "affected", "sel");
    g.classList.add(n.state);
    if (n.name === selected) g.classList.add("sel");
    g.setAttribute("aria-label", `${n.name}: ${words[n.state]}`);
    let m = g.querySelector("text.mark");
    if (n.state === "up") { if (m) m.remove(); continue; }
    const r = g.querySelector("rect");
    if (!m) { m = document.createElementNS(ns, "text"); m.setAttribute("class", "mark"); g.append(m); }
    m.setAttribute("x", +r.getAttribute("x") + +r.getAttribute("width") - 22);
    m.setAttribute("y", +r.getAttribute("y") + 40);
    m.setAttribute("fill", n.state === "affected" ? "#8a5300" : "#b00020");
    m.textContent = icon[n.state];
  }
}

// paintEdges marks the edges the impact report says are lost: an end is
// down, or the tunnel, forward or replica it draws is lost, or the use it
// draws is one its node lost.
function paintEdges() {
  const st = Object.fromEntries(state.nodes.map(n => [n.name, n]));
  const im = state.impact || {lost_tunnels: [], lost_forwards: [], stale_replicas: []};
  const downish = name => st[name] && (st[name].state === "down" || st[name].state === "host-down");
  for (const p of document.querySelectorAll("#svg path[data-kind]")) {
    const names = (p.dataset.names || "").split(" ");
    const from = p.dataset.from, to = p.dataset.to, kind = p.dataset.kind;
    let lost = downish(from) || downish(to);
    if (kind === "tunnel") lost = lost || names.some(x => (im.lost_tunnels || []).includes(x));
    if (kind === "forward") lost = lost || names.some(x => (im.lost_forwards || []).includes(x));
    if (kind === "replica") lost = lost || names.some(x => (im.stale_replicas || []).includes(x));
    if (kind === "uses" && st[from]) lost = lost || names.some(x => (st[from].lost || []).some(u => u.target === x));
    p.classList.toggle("lost", !!lost);
  }
}

function nodeItem(n) {
  const li = el("li", {class: `st-${n.state}` + (n.host ? " guest" : ""), "data-node": n.name, "data-state": n.state});
  const row = el("div", {class: "row"},
    el("button", {class: "name", onclick: () => select(n.name), "aria-label": `details of ${n.name}`}, n.name),
    el("span", {class: "badge"}, `${icon[n.state]} ${words[n.state]}`));
  if (state.drill && !n.host) {
    const down = n.state === "down";
    row.append(el("button", {class: "drill", "data-drill": `${n.name}/${down ? "up" : "down"}`,
      onclick: () => drill(n.name, down ? "up" : "down")}, down ? `bring ${n.name} up` : `take ${n.name} down`));
  }
  li.append(row);
  if (n.sites && n.sites.length) {
    const ul = el("ul", {class: "small"});
    for (const s of n.sites) ul.append(el("li", {class: s.lost ? "site lost" : "site", "data-site": s.name, "data-lost": s.lost},
      `${s.lost ? "✖ lost" : "✔"} site ${s.name}`));
    li.append(ul);
  }
  if (n.lost && n.lost.length) {
    const ul = el("ul", {class: "lost small"});
    for (const u of n.lost) ul.append(el("li", {class: "uses-lost", "data-target": u.target, title: u.reason}, `✖ lost ${u.kind} ${u.target}: ${u.reason}`));
    li.append(ul);
  }
  return li;
}

function render() {
  const s = document.getElementById("summary");
  if (state.causes && state.causes.length) {
    const im = state.impact;
    s.className = "bad";
    s.textContent = `✖ down: ${state.causes.join(", ")} — lost ${im.lost_sites.length} sites, ${im.lost_services.length} services, ${im.lost_tunnels.length} tunnels; ${state.nodes.filter(n => n.state === "affected").length} nodes affected`;
  } else {
    s.className = "";
    s.textContent = `✔ all ${state.nodes.length} nodes up`;
  }
  const ul = document.getElementById("nodes");
  const focus = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.drill : null;
  ul.replaceChildren(...state.nodes.map(nodeItem));
  if (focus) { const b = ul.querySelector(`button[data-drill^="${CSS.escape(focus.split("/")[0])}/"]`); if (b) b.focus(); }
  paintSVG();
  paintEdges();
  if (selected) renderDetail();
}

async function renderDetail() {
  const n = state.nodes.find(x => x.name === selected);
  const d = document.getElementById("detail");
  if (!n) { d.hidden = true; return; }
  d.hidden = false;
  const kids = [el("h2", {}, `${n.name} `, el("span", {class: "small"}, `${n.kind}${n.host ? " on " + n.host : ""}${n.provider ? " · " + n.provider : ""} · ${icon[n.state]} ${words[n.state]}`))];
  const st = n.status || {};
  const ls = (st.runtime && st.runtime.listeners) || [];
  if (ls.length) {
    const t = el("table", {}, el("tr", {}, el("th", {}, "listener"), el("th", {}, "address"), el("th", {}, "accepted"), el("th", {}, "denied")));
    for (const l of ls) t.append(el("tr", {}, el("td", {}, `${l.kind} ${l.name}`), el("td", {}, l.addr || ""), el("td", {}, String(l.accepted ?? "")), el("td", {}, String(l.denied ?? ""))));
    kids.push(el("h2", {}, "Listeners"), t);
  }
  const ps = st.probes || [];
  if (ps.length) {
    const ul = el("ul", {class: "small"});
    for (const p of ps) {
      const pr = p.probe || {};
      const cert = p.not_after ? ` · certificate until ${p.not_after.slice(0, 10)}` : "";
      const why = p.success ? "" : `: ${p.reason || ""}${p.detail ? " (" + p.detail + ")" : ""}`;
      ul.append(el("li", {class: p.success ? "" : "lost"}, `${p.skipped ? "–" : p.success ? "✔" : "✖"} ${pr.name || ""} → ${pr.object || ""}${why}${p.skipped ? " skipped: " + p.skipped : ""}${cert}`));
    }
    kids.push(el("h2", {}, "Probes"), ul);
  }
  kids.push(el("h2", {}, `If ${n.name} goes down`));
  const box = el("div", {class: "small"}, "…");
  kids.push(box);
  d.replaceChildren(...kids);
  try {
    const r = await fetch(`/api/impact?node=${encodeURIComponent(n.name)}`);
    const im = await r.json();
    const ul = el("ul", {});
    for (const l of im.losses || []) ul.append(el("li", {}, `✖ ${l.kind} ${l.name}: ${l.reason}`));
    box.replaceChildren(ul.children.length ? ul : "nothing else is lost");
  } catch (e) { box.textContent = "impact unavailable"; }
}

function select(name) {
  selected = name;
  if (state) { paintSVG(); renderDetail(); }
  document.getElementById("side").scrollTop = 0; // the details are at the top of the side panel
}

async function drill(name, action) {
  const r = await fetch(`/api/nodes/${encodeURIComponent(name)}/${action}`, {method: "POST"});
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
