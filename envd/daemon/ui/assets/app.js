// envd dashboard: one page, no framework, nothing loaded from the internet.
// State comes from /api/state; /api/stream pushes every daemon event, and the
// page answers each burst by fetching the state again. Actions are POSTs with
// the CSRF token from the page's meta tag, each confirmed first.
"use strict";

(function () {
  const $ = (sel) => document.querySelector(sel);
  const csrf = document.querySelector('meta[name="envd-csrf"]').content;
  const csrfHeader = document.querySelector('meta[name="envd-csrf-header"]').content;
  const SVG = "http://www.w3.org/2000/svg";
  let lastState = null;
  let refreshTimer = null;
  let logSource = null;
  const MAX_LOG_LINES = 2000;
  const MAX_TIMELINE = 300;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------------ state
  // The daemon's own word for the state (status's STATE column), and its colour.
  const STATE_CLASS = {
    running: "st-ok", healthy: "st-ok", completed: "st-done", stopped: "st-stopped",
    starting: "st-warn", restarting: "st-warn", created: "st-warn",
    missing: "st-err", unhealthy: "st-err", failed: "st-err", flapping: "st-err",
  };
  function serviceState(s) {
    if (s.stopped_on_purpose) return s.running ? ["stopping", "st-warn"] : ["stopped", "st-stopped"];
    let state = s.state;
    if (!state) {  // a daemon without the supervisor's annotations
      const cs = s.containers || [];
      state = !cs.length ? "missing" : cs.every((c) => c.status === "exited")
        ? (cs.every((c) => c.exit_code === 0) ? "completed" : "failed") : (s.health || "running");
    }
    let label = state;
    if ((state === "completed" || state === "failed") && s.exit_code !== undefined && s.exit_code !== null) {
      label += " (exit " + s.exit_code + ")";
      const at = s.finished_at || s.completed_at;
      if (at) label += " at " + new Date(at * 1000).toLocaleTimeString();
    }
    let cls = STATE_CLASS[state] || "st-warn";
    if (cls === "st-ok" && !s.in_sync) cls = "st-warn";
    return [label, cls];
  }

  function portLinks(s) {
    const out = [];
    for (const c of s.containers || []) {
      for (const p of c.ports || []) {
        const m = /^([^:]*):(\d+)->(\d+)\/(\w+)$/.exec(p);
        if (!m) { out.push(el("span", { class: "mono" }, p), " "); continue; }
        const host = m[1] === "0.0.0.0" || m[1] === "" ? "127.0.0.1" : m[1];
        if (m[4] === "tcp") {
          out.push(el("a", { href: "http://" + host + ":" + m[2] + "/", target: "_blank", rel: "noopener noreferrer" }, m[2] + "→" + m[3]), " ");
        } else {
          out.push(el("span", { class: "mono" }, m[2] + "→" + m[3] + "/" + m[4]), " ");
        }
      }
    }
    return out.length ? out : ["–"];
  }

  async function act(action, service) {
    const what = service ? action + " service " + service : action.replace("-", " ");
    if (!window.confirm("Really " + what + "?")) return;
    const headers = { "Content-Type": "application/json" };
    headers[csrfHeader] = csrf;
    const res = await fetch("/api/action", {
      method: "POST", headers, credentials: "same-origin",
      body: JSON.stringify({ action, service: service || null }),
    });
    if (!res.ok) {
      let msg = res.status + "";
      try { msg = (await res.json()).error || msg; } catch (e) { msg = await res.text(); }
      window.alert("envd refused: " + msg);
    }
    scheduleRefresh(50);
  }

  function renderServices(state) {
    const body = $("#services tbody");
    body.replaceChildren();
    for (const s of state.services) {
      const [label, cls] = serviceState(s);
      const stopped = !!s.stopped_on_purpose;
      const ids = (s.containers || []).map((c) => el("code", { title: c.name }, c.id.slice(0, 12)));
      const change = s.last_change ? s.last_change.kind + ": " + (s.last_change.reason || "") : "–";
      const heals = s.heal ? String(s.heal.heals) + (s.heal.flapping ? " (flapping)" : "") + (s.heal.enabled ? "" : " · off") : "–";
      const drift = (s.drift || []).length ? (s.drift || []).join("; ") : "in sync";
      const imageIds = [...new Set((s.containers || []).map((c) => (c.image_id || "").replace("sha256:", "").slice(0, 12)).filter(Boolean))];
      const row = el("tr", { "data-service": s.name },
        el("td", { class: "name" }, s.name),
        el("td", { class: "state " + cls, title: (s.last_logs || []).join("\n") || null }, label),
        el("td", {}, s.health || "–"),
        el("td", {}, s.running + "/" + s.desired_replicas),
        el("td", {}, el("div", { class: "mono" }, s.image), imageIds.length ? el("div", { class: "mono muted" }, imageIds.join(" ")) : null),
        el("td", {}, ...ids.flatMap((n) => [n, " "])),
        el("td", { class: "muted" }, (s.containers || []).map((c) => c.status_text).filter(Boolean).join("; ") || "–"),
        el("td", {}, heals),
        el("td", { class: "change" }, change),
        el("td", { class: "drift" }, drift),
        el("td", {}, ...portLinks(s)),
        el("td", { class: "actions" },
          el("button", { type: "button", "data-action": "restart", onclick: () => act("restart", s.name) }, "restart"),
          el("button", { type: "button", "data-action": "recreate", onclick: () => act("recreate", s.name) }, "recreate"),
          s.has_build ? el("button", { type: "button", "data-action": "rebuild", onclick: () => act("rebuild", s.name) }, "rebuild") : null,
          stopped
            ? el("button", { type: "button", "data-action": "start", onclick: () => act("start", s.name) }, "start")
            : el("button", { type: "button", "data-action": "stop", onclick: () => act("stop", s.name) }, "stop"),
        ),
      );
      body.append(row);
    }
  }

  function renderGraph(state) {
    const g = $("#graph");
    g.replaceChildren();
    const nodes = state.graph.nodes;
    if (!nodes.length) return;
    const byLevel = new Map();
    for (const n of nodes) {
      if (!byLevel.has(n.level)) byLevel.set(n.level, []);
      byLevel.get(n.level).push(n);
    }
    const W = 130, H = 34, GX = 70, GY = 22;
    const pos = new Map();
    let maxRows = 0;
    for (const [level, ns] of [...byLevel.entries()].sort((a, b) => a[0] - b[0])) {
      ns.forEach((n, i) => pos.set(n.id, { x: 10 + level * (W + GX), y: 10 + i * (H + GY) }));
      maxRows = Math.max(maxRows, ns.length);
    }
    const levels = byLevel.size;
    const width = 20 + levels * (W + GX) - GX, height = 20 + maxRows * (H + GY) - GY;
    // Drawn at its own size (the CSS caps it at the panel's width), not stretched.
    g.setAttribute("viewBox", "0 0 " + width + " " + height);
    g.setAttribute("width", String(width));
    g.setAttribute("height", String(height));
    const states = new Map(state.services.map((s) => [s.name, serviceState(s)[1]]));
    const colours = { "st-ok": "#3fb950", "st-warn": "#d29922", "st-err": "#f85149", "st-stopped": "#6e7681", "st-done": "#58a6ff" };
    for (const e of state.graph.edges) {
      const a = pos.get(e.from), b = pos.get(e.to);
      if (!a || !b) continue;
      const edge = svg("g", { class: "edge", "data-from": e.from, "data-to": e.to });
      const x1 = a.x, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2;
      edge.append(svg("line", { x1, y1, x2, y2, "marker-end": "url(#arrow)" }));
      edge.append(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, e.condition.replace("service_", "")));
      g.append(edge);
    }
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a98a6" }));
    defs.append(marker);
    g.prepend(defs);
    for (const n of nodes) {
      const p = pos.get(n.id);
      const cls = states.get(n.id) || "st-stopped";
      const node = svg("g", { class: "node " + cls, "data-service": n.id, transform: "translate(" + p.x + "," + p.y + ")" });
      node.append(svg("rect", { width: W, height: H, fill: colours[cls] || "#6e7681" }));
      node.append(svg("text", { x: W / 2, y: H / 2 + 4, "text-anchor": "middle" }, n.id));
      g.append(node);
    }
  }

  function renderHeader(state) {
    const d = state.daemon || {};
    const when = d.last_reconcile ? new Date(d.last_reconcile * 1000).toLocaleTimeString() : "never";
    $("#daemon").textContent = "daemon pid " + d.pid + " · last pass " + when + " (" + d.last_result + ")";
    $("#watch-toggle").textContent = state.watching ? "Pause watching" : "Resume watching";
    $("#watch-toggle").dataset.watching = state.watching ? "1" : "0";
    const spec = $("#spec-error");
    spec.hidden = !state.spec_error;
    spec.textContent = state.spec_error ? "The spec does not load; the last good state is kept below.\n" + state.spec_error : "";
    const eng = $("#engine-error");
    eng.hidden = !state.engine_error;
    eng.textContent = state.engine_error ? "Engine unreachable: " + state.engine_error : "";
    const select = $("#log-service");
    const names = state.services.map((s) => s.name);
    const have = [...select.options].map((o) => o.value).filter(Boolean);
    if (names.join() !== have.join()) {
      const current = select.value;
      select.replaceChildren(el("option", { value: "" }, "all services"), ...names.map((n) => el("option", { value: n }, n)));
      select.value = names.includes(current) ? current : "";
    }
  }

  function render(state) {
    lastState = state;
    renderHeader(state);
    renderServices(state);
    renderGraph(state);
  }

  async function refresh() {
    refreshTimer = null;
    try {
      const res = await fetch("/api/state", { credentials: "same-origin" });
      if (res.ok) render(await res.json());
    } catch (e) { /* the stream's reconnect brings the next refresh */ }
  }

  function scheduleRefresh(delay) {
    if (refreshTimer !== null) return;
    refreshTimer = window.setTimeout(refresh, delay === undefined ? 120 : delay);
  }

  // ------------------------------------------------------------------ plan
  async function refreshPlan() {
    const box = $("#plan");
    try {
      const res = await fetch("/api/plan", { credentials: "same-origin" });
      const data = await res.json();
      if (data.error) { box.replaceChildren(el("div", { class: "st-err" }, data.error)); return; }
      const changes = data.plan.actions.filter((a) => a.action !== "ok");
      if (!changes.length) { box.replaceChildren(el("div", { class: "st-ok" }, "Nothing to do: every service matches the spec.")); return; }
      box.replaceChildren(el("ul", {}, ...changes.map((a) => el("li", {}, el("strong", {}, a.action), " ", a.resource, " — ", a.reason))));
    } catch (e) { box.textContent = "plan unavailable"; }
  }

  // ------------------------------------------------------------------ timeline
  function addEvent(ev, prepend) {
    const list = $("#timeline");
    const t = ev.time ? new Date(ev.time * 1000) : new Date();
    const li = el("li", { class: ev.phase || "", "data-kind": ev.kind || "" },
      el("span", { class: "t" }, t.toLocaleTimeString()),
      el("span", { class: "k" }, ev.kind || ""),
      ev.service ? el("span", { class: "svc" }, ev.service + " ") : null,
      ev.message || "");
    if (prepend) list.prepend(li); else list.append(li);
    while (list.children.length > MAX_TIMELINE) list.lastChild.remove();
  }

  // ------------------------------------------------------------------ logs
  const ANSI = /\x1b\[([0-9;]*)m/g;
  function ansiLine(text) {
    const frag = document.createDocumentFragment();
    let classes = [];
    let last = 0;
    let m;
    ANSI.lastIndex = 0;
    while ((m = ANSI.exec(text)) !== null) {
      if (m.index > last) frag.append(el("span", { class: classes.join(" ") || null }, text.slice(last, m.index)));
      for (const code of (m[1] || "0").split(";")) {
        const n = Number(code);
        if (n === 0) classes = [];
        else if ((n >= 30 && n <= 37) || (n >= 90 && n <= 97)) classes = classes.filter((c) => !/^ansi-(3|9)\d$/.test(c)).concat("ansi-" + n);
        else if (n === 1 || n === 3 || n === 4) classes.push("ansi-" + n);
      }
      last = ANSI.lastIndex;
    }
    if (last < text.length) frag.append(el("span", { class: classes.join(" ") || null }, text.slice(last)));
    return frag;
  }

  function matches(line) {
    const q = $("#log-search").value.trim().toLowerCase();
    return !q || line.textContent.toLowerCase().includes(q);
  }

  function openLogs() {
    if (logSource) logSource.close();
    $("#logs").replaceChildren();
    const service = $("#log-service").value;
    logSource = new EventSource("/api/logs?tail=200" + (service ? "&service=" + encodeURIComponent(service) : ""));
    logSource.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      const pre = $("#logs");
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      const line = el("div", { class: "line" }, el("span", { class: "svc" }, data.service + " | "));
      line.append(ansiLine(data.line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, (s) => (s.endsWith("m") ? s : ""))));
      if (!matches(line)) line.classList.add("hidden");
      pre.append(line);
      while (pre.children.length > MAX_LOG_LINES) pre.firstChild.remove();
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    };
  }

  // A container being created again (drift repair, a recreate): its row turns
  // red at once, before the next state arrives, so a quick repair is seen.
  function markRepair(ev) {
    if (!ev.service || ev.phase !== "working" || !(ev.kind === "create" || ev.kind === "recreate")) return;
    const cell = document.querySelector('#services tr[data-service="' + CSS.escape(ev.service) + '"] td.state');
    if (!cell) return;
    cell.textContent = ev.kind === "create" ? "missing: repairing" : "recreating";
    cell.className = "state st-err";
  }

  // ------------------------------------------------------------------ wiring
  function connect() {
    const source = new EventSource("/api/stream");
    source.onopen = () => { $("#live").textContent = "live"; $("#live").classList.add("live"); scheduleRefresh(0); };
    source.onerror = () => { $("#live").textContent = "reconnecting"; $("#live").classList.remove("live"); };
    source.onmessage = (msg) => {
      const ev = JSON.parse(msg.data);
      addEvent(ev, true);
      markRepair(ev);
      scheduleRefresh();
      if (ev.kind === "pass-done") refreshPlan();
    };
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("#reconcile").addEventListener("click", () => act("reconcile"));
    $("#watch-toggle").addEventListener("click", () => act($("#watch-toggle").dataset.watching === "1" ? "pause-watch" : "resume-watch"));
    $("#plan-refresh").addEventListener("click", refreshPlan);
    $("#log-service").addEventListener("change", openLogs);
    $("#log-clear").addEventListener("click", () => $("#logs").replaceChildren());
    $("#log-search").addEventListener("input", () => {
      for (const line of $("#logs").children) line.classList.toggle("hidden", !matches(line));
    });
    await refresh();
    if (lastState) for (const ev of lastState.events) addEvent(ev, true);
    connect();
    refreshPlan();
    openLogs();
  });
})();
