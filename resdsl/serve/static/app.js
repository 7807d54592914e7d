// resdsl serve: the page. Plain JavaScript, no libraries, nothing fetched from elsewhere.
// Every edit is sent with a sequence number; an answer older than the one shown is dropped, so a
// late answer never overwrites a newer one (the server also skips checks a newer edit overtook).
"use strict";

const TOKEN = document.querySelector('meta[name="resdsl-token"]').content;
const PAGE = Math.random().toString(36).slice(2);
const DEBOUNCE_MS = 150;
const $ = (id) => document.getElementById(id);

const state = {
  doc: null,            // {path} | {zoo}, with text as last saved / opened and readonly
  words: null,
  seq: 0,               // last sent
  shown: -1,            // seq of the answer on screen
  level: "", focus: null, network: null, sets: {},
  vs: null,             // {path|zoo, text}
  error: null,          // the error on screen: {line, column, end_line, end_column, file}
  view: {scale: 1, x: 0, y: 0, key: null, user: false},
  timer: null, sentAt: {},
};

async function api(path, body) {
  const opts = {headers: {"X-Resdsl-Token": TOKEN}};
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const doc = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw Object.assign(new Error(doc.error || r.statusText), {status: r.status});
  return doc;
}

function status(text, bad) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("bad", !!bad);
}

// ---- highlighting: the language's own word lists (served from resdsl.source.highlight) ----

const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const TOKEN_RE = /(#[^\n]*)|("[^"\n]*")|(\d+(?:x\d+)+\b|\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+|\d+(?:[eE][+-]?\d+)?)|([A-Za-z_]\w*)(?=(\s*\()?)|(\s+|[^\s#"\w]+|.)/gy;

function tokens(text) {
  const out = [];       // [start, end, class]
  const w = state.words || {keyword: [], operator: [], constant: [], layer: []};
  const sets = state.wordSets || (state.wordSets = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, new Set(v)])));
  TOKEN_RE.lastIndex = 0;
  let m;
  while (TOKEN_RE.lastIndex < text.length && (m = TOKEN_RE.exec(text))) {
    const start = m.index, end = TOKEN_RE.lastIndex;
    let cls = "";
    if (m[1]) cls = "c";
    else if (m[2]) cls = "s";
    else if (m[3]) cls = "n";
    else if (m[4]) {
      const word = m[4];
      cls = sets.keyword.has(word) ? "k" : sets.operator.has(word) ? "o" : sets.constant.has(word) ? "n"
          : sets.layer.has(word) ? "l" : m[5] !== undefined ? "f" : "";
    }
    out.push([start, end, cls]);
    if (end === start) TOKEN_RE.lastIndex++;
  }
  return out;
}

function offsetOf(text, line, col) {
  let off = 0;
  for (let i = 1; i < line; i++) {
    const nl = text.indexOf("\n", off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  return Math.min(off + col - 1, text.length);
}

function errorRange(text) {
  const e = state.error;
  if (!e || !e.line || e.file !== (state.doc && state.doc.shown)) return null;
  const a = offsetOf(text, e.line, e.column);
  let b = offsetOf(text, e.end_line || e.line, e.end_column || e.column + 1);
  if (b <= a) b = Math.min(a + 1, text.length);
  if (b <= a) return [Math.max(0, a - 1), a];       // at the very end: mark the last character
  return [a, b];
}

function paint() {
  const text = $("text").value;
  const range = errorRange(text);
  let html = "";
  for (const [s, e, cls] of tokens(text)) {
    const cuts = [s, e];
    if (range) for (const c of range) if (c > s && c < e) cuts.push(c);
    cuts.sort((x, y) => x - y);
    for (let i = 0; i + 1 < cuts.length; i++) {
      let piece = esc(text.slice(cuts[i], cuts[i + 1]));
      if (cls) piece = `<span class="${cls}">${piece}</span>`;
      if (range && cuts[i] >= range[0] && cuts[i + 1] <= range[1]) piece = `<mark class="err">${piece}</mark>`;
      html += piece;
    }
  }
  $("highlight").innerHTML = html + "\n";
  const lines = text.split("\n").length;
  const errLine = range ? state.error.line : -1;
  let g = "";
  for (let i = 1; i <= lines; i++) g += `<span${i === errLine ? ' class="err"' : ""} data-line="${i}">${i}</span>`;
  $("gutter").innerHTML = g;
  const ta = $("text");
  ta.style.height = "0";
  ta.style.height = ta.scrollHeight + "px";
  ta.style.width = "100%";
  if (ta.scrollWidth > ta.clientWidth) ta.style.width = ta.scrollWidth + 16 + "px";
  $("highlight").style.width = ta.style.width === "100%" ? "" : ta.style.width;   // long lines: both scroll together
  $("highlight").style.height = ta.style.height;
}

// ---- checking ----

function schedule(now) {
  clearTimeout(state.timer);
  state.timer = setTimeout(check, now ? 0 : DEBOUNCE_MS);
}

function docRef(doc) {
  return doc.zoo ? {zoo: doc.zoo} : doc.path ? {path: doc.path} : {};
}

async function check() {
  if (!state.doc) return;
  const seq = ++state.seq;
  const body = {seq, page: PAGE, text: $("text").value, ...docRef(state.doc), network: state.network,
                sets: state.sets, level: state.level, focus: state.focus};
  if (state.vs) body.vs = {...docRef(state.vs), text: state.vs.text, sets: {}};
  state.sentAt[seq] = performance.now();
  status("checking…");
  let answer;
  try {
    answer = await api("/api/check", body);
  } catch (e) {
    answer = {seq, ok: false, error: {text: `error: ${e.message}`}};
  }
  apply(answer);
}

function apply(a) {
  if (a.superseded || typeof a.seq !== "number" || a.seq <= state.shown) return;   // older than what is shown
  state.shown = a.seq;
  const browserStart = performance.now();
  if (a.form) fillForm(a.form);
  if (a.ok) {
    state.error = null;
    $("error").hidden = true;
    drawInto($("canvas"), a.svg);
    $("note").hidden = !a.note;
    $("note").textContent = a.note || "";
    $("diagram").classList.remove("stale");
    state.focus = a.focus || null;
    $("focus-box").hidden = !state.focus;
    $("focus").textContent = state.focus || "";
    $("level").dataset.drawn = a.level;
    fillTable(a.table);
    fillCompare(a.vs);
    const key = `${a.level}|${a.focus}|${state.doc.path || state.doc.zoo}`;
    if (key !== state.view.key) { state.view.key = key; state.view.user = false; }
    if (state.view.user) place(); else fit();          // follow the drawing until the user zooms or pans
  } else {
    state.error = a.error || {text: "error"};
    $("error").hidden = false;
    $("error").textContent = state.error.text || state.error.message;
    $("diagram").classList.add("stale");       // the last good drawing stays, dimmed
  }
  markFields();
  paint();
  const done = performance.now();
  const server = a.ms ? a.ms.total : 0;
  const sent = state.sentAt[a.seq];
  for (const k of Object.keys(state.sentAt)) if (+k <= a.seq) delete state.sentAt[k];
  $("timing").textContent = sent ? `server ${server} ms · round trip ${Math.round(done - sent)} ms` : "";
  window.resdslLastRedraw = {seq: a.seq, ok: a.ok, serverMs: server, serverCpuMs: a.ms ? a.ms.cpu : null,
                             browserMs: done - browserStart,
                             roundTripMs: sent ? done - sent : null, at: done};
  status(a.ok ? (a.seq === state.seq ? "ok" : "checking…") : "error", !a.ok);
  const record = window.resdslLastRedraw;
  requestAnimationFrame(() => setTimeout(() => { record.paintedAt = performance.now(); }, 0));   // after layout and paint
}

// Graphviz's SVG, with anything active removed (the CSP forbids scripts anyway).
function clean(svgText) {
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return null;
  for (const bad of svg.querySelectorAll("script, foreignObject, iframe")) bad.remove();
  for (const el of svg.querySelectorAll("*")) {
    for (const at of [...el.attributes]) {
      if (/^on/i.test(at.name) || (/href$/i.test(at.name) && !/^#/.test(at.value))) el.removeAttribute(at.name);
    }
  }
  return document.importNode(svg, true);
}

function drawInto(box, svgText) {
  box.textContent = "";
  if (!svgText) return;
  const svg = clean(svgText);
  if (svg) box.appendChild(svg);
}

function fillTable(t) {
  const body = $("table").tBodies[0];
  body.textContent = "";
  const drops = t.rows.some((r) => r.drop_path);
  $("table").classList.toggle("nodrop", !drops);
  for (const r of t.rows) {
    const tr = body.insertRow();
    tr.dataset.name = r.name;
    for (const v of [r.name, r.what, r.output, r.params_text, r.macs_text, r.drop_path]) tr.insertCell().textContent = v;
    tr.cells[5].className = "drop";
  }
  const foot = $("table").tFoot;
  foot.textContent = "";
  const tr = foot.insertRow();
  for (const v of ["total", `input ${t.input}`, t.total.output, t.total.params_text, t.total.macs_text, ""]) tr.insertCell().textContent = v;
  tr.cells[5].className = "drop";
  tr.id = "totals";
}

function fillCompare(vs) {
  const pane = $("vs-pane"), table = $("vs-table");
  pane.hidden = table.hidden = !vs;
  if (!vs) return;
  if (vs.error) {
    $("vs-diagram").textContent = vs.error.text;
    table.hidden = true;
    return;
  }
  drawInto($("vs-diagram"), vs.svg);
  table.caption.textContent = `A: ${vs.a}\nB: ${vs.b}`;
  const body = table.tBodies[0];
  body.textContent = "";
  for (const r of vs.rows) {
    const tr = body.insertRow();
    for (const v of [r.label, r.a, r.b, r.ratio]) tr.insertCell().textContent = v;
  }
}

// ---- the --set form ----

function fillForm(form) {
  const sel = $("network");
  const names = form.networks.join("\n");
  if (sel.dataset.names !== names) {
    sel.textContent = "";
    for (const n of form.networks) sel.add(new Option(n, n));
    sel.dataset.names = names;
  }
  sel.value = form.network;
  const fields = $("fields");
  const sig = form.network + "|" + form.params.map((p) => p.name + "=" + p.default).join(",");
  if (fields.dataset.sig === sig) return;
  fields.dataset.sig = sig;
  fields.textContent = "";
  for (const p of form.params) {
    const label = document.createElement("label");
    label.textContent = p.name;
    label.htmlFor = "set-" + p.name;
    const input = document.createElement("input");
    input.id = "set-" + p.name;
    input.name = p.name;
    input.placeholder = p.value !== null && p.value !== undefined && !(p.name in state.sets) ? p.value : p.default;
    input.value = state.sets[p.name] || "";
    input.addEventListener("input", () => {
      state.sets[p.name] = input.value;
      schedule();
    });
    fields.append(label, input);
  }
}

function markFields() {
  const file = (state.error && state.error.file) || "";
  for (const input of $("fields").querySelectorAll("input")) {
    input.classList.toggle("bad", file === "--set " + input.name);
  }
}

// ---- zoom and pan; a click on a box focuses it ----

function place() {
  const v = state.view;
  $("canvas").style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.scale})`;
}

function fit() {
  const svg = $("canvas").querySelector("svg");
  const box = $("diagram");
  if (!svg) return;
  const w = svg.width.baseVal.value || 1, h = svg.height.baseVal.value || 1;
  const s = Math.min(box.clientWidth / w, box.clientHeight / h, 1.5);
  state.view.scale = s > 0 ? s : 1;
  state.view.x = Math.max(0, (box.clientWidth - w * state.view.scale) / 2);
  state.view.y = 0;
  place();
}

function zoom(factor, cx, cy) {
  const v = state.view;
  const s = Math.min(8, Math.max(0.02, v.scale * factor));
  v.x = cx - (cx - v.x) * (s / v.scale);
  v.y = cy - (cy - v.y) * (s / v.scale);
  v.scale = s;
  v.user = true;
  place();
}

function setupDiagram() {
  const box = $("diagram");
  let drag = null;
  box.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = box.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, {passive: false});
  box.addEventListener("mousedown", (e) => {
    drag = {x: e.clientX, y: e.clientY, vx: state.view.x, vy: state.view.y, moved: false};
  });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    if (drag.moved) {
      state.view.user = true;
      state.view.x = drag.vx + dx;
      state.view.y = drag.vy + dy;
      place();
    }
  });
  window.addEventListener("mouseup", () => { setTimeout(() => { drag = null; }, 0); });
  box.addEventListener("click", (e) => {
    if (drag && drag.moved) return;
    const node = e.target.closest("g.node");
    if (!node) return;
    const id = (node.querySelector("title") || {}).textContent || "";
    if (!id || /^(input|output|focus\.(in|out)|legend\.)/.test(id)) return;
    state.focus = id;
    state.level = "";
    $("level").value = "";
    schedule(true);
  });
  $("zoom-in").onclick = () => zoom(1.25, box.clientWidth / 2, box.clientHeight / 2);
  $("zoom-out").onclick = () => zoom(0.8, box.clientWidth / 2, box.clientHeight / 2);
  $("fit").onclick = () => { state.view.user = false; fit(); };
  $("unfocus").onclick = () => { state.focus = null; schedule(true); };
  $("level").onchange = () => { state.level = $("level").value; schedule(true); };
}

// ---- documents: open, save, save as, zoo, compare ----

function setDoc(doc) {
  state.doc = doc;
  state.sets = {};
  state.network = doc.network || null;
  state.focus = null;
  state.error = null;
  state.shown = state.seq;          // answers for the previous document are dropped
  $("fields").dataset.sig = "";
  $("network").dataset.names = "";
  $("text").value = doc.text;
  $("text").readOnly = !!doc.readonly;
  $("save").disabled = !!doc.readonly;
  $("file").value = doc.path || "";
  $("zoo").value = doc.zoo || "";
  document.title = `${doc.shown || "untitled"} · resdsl serve`;
  paint();
  schedule(true);
}

async function open(ref) {
  const q = ref.zoo ? `zoo=${encodeURIComponent(ref.zoo)}` : `path=${encodeURIComponent(ref.path)}`;
  try {
    setDoc(await api(`/api/open?${q}`));
  } catch (e) {
    status(`cannot open: ${e.message}`, true);
  }
}

function dirty() {
  return !!state.doc && !state.doc.readonly && $("text").value !== state.doc.text;
}

async function save(path, overwrite) {
  const text = $("text").value;
  const same = state.doc && state.doc.path === path;
  try {
    let r;
    try {
      r = await api("/api/save", {path, text, overwrite, base: same ? state.doc.version : undefined});
    } catch (e) {
      if (!(same && e.status === 409 && /changed on disk/.test(e.message)
            && window.confirm(`${path} has changed on disk since it was opened; replace it with this text?`))) throw e;
      r = await api("/api/save", {path, text, overwrite: true});
    }
    if (state.doc && state.doc.path === r.saved) Object.assign(state.doc, {text, version: r.version});
    status(`saved ${r.saved} (${r.bytes} bytes)`);
    return r;
  } catch (e) {
    status(`not saved: ${e.message}`, true);
    return null;
  }
}

async function refreshFiles(selected) {
  const info = await api("/api/info");
  const sel = $("file");
  sel.textContent = "";
  sel.add(new Option("—", ""));
  for (const f of info.files) sel.add(new Option(f, f));
  sel.value = selected || "";
  const vs = $("vs");
  const keep = vs.value;
  vs.textContent = "";
  vs.add(new Option("—", ""));
  const files = document.createElement("optgroup");
  files.label = "served folder";
  for (const f of info.files) files.append(new Option(f, "path:" + f));
  const zoo = document.createElement("optgroup");
  zoo.label = "zoo";
  for (const z of info.zoo.names) zoo.append(new Option(z.name, "zoo:" + z.name));
  vs.append(files, zoo);
  vs.value = keep;
  return info;
}

async function init() {
  const info = await refreshFiles();
  state.words = info.words;
  const zoo = $("zoo");
  const names = document.createElement("optgroup");
  names.label = "names";
  for (const z of info.zoo.names) names.append(new Option(`${z.name} (${z.spec})`, z.name));
  const files = document.createElement("optgroup");
  files.label = "spec files";
  for (const f of info.zoo.files) files.append(new Option(f, f));
  zoo.append(names, files);

  const ta = $("text");
  ta.addEventListener("input", () => { paint(); schedule(); });
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !ta.readOnly) {
      e.preventDefault();
      ta.setRangeText("  ", ta.selectionStart, ta.selectionEnd, "end");
      paint();
      schedule();
    }
  });
  window.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") {
      e.preventDefault();
      if (!$("save").disabled && state.doc.path) save(state.doc.path, true);
    }
  });
  const leave = (select, ref) => {
    if (dirty() && !window.confirm("Discard the unsaved changes?")) {
      select.value = select === zoo ? (state.doc.zoo || "") : (state.doc.path || "");
      return;
    }
    open(ref);
  };
  $("file").onchange = () => { if ($("file").value) leave($("file"), {path: $("file").value}); };
  zoo.onchange = () => { if (zoo.value) leave(zoo, {zoo: zoo.value}); };
  window.addEventListener("beforeunload", (e) => { if (dirty()) e.preventDefault(); });
  $("network").onchange = () => { state.network = $("network").value; state.sets = {}; schedule(true); };
  $("save").onclick = () => {
    if (state.doc.path) save(state.doc.path, true);
    else $("saveas-name").focus();
  };
  $("saveas").onclick = async () => {
    const name = $("saveas-name").value.trim();
    if (!name) { $("saveas-name").focus(); return; }
    let r = await save(name, false);
    if (!r && window.confirm(`${name} exists; replace it?`)) r = await save(name, true);
    if (r) {
      await refreshFiles(r.saved);
      state.doc = {path: r.saved, shown: r.saved, text: $("text").value, readonly: false, version: r.version};
      $("text").readOnly = false;
      $("save").disabled = false;
      $("zoo").value = "";
      document.title = `${r.saved} · resdsl serve`;
      schedule(true);
    }
  };
  $("vs").onchange = async () => {
    const v = $("vs").value;
    if (!v) { state.vs = null; schedule(true); return; }
    const [kind, name] = [v.slice(0, v.indexOf(":")), v.slice(v.indexOf(":") + 1)];
    try {
      const doc = await api(`/api/open?${kind}=${encodeURIComponent(name)}`);
      state.vs = {[kind]: name, text: doc.text};
    } catch (e) {
      status(`cannot open ${name}: ${e.message}`, true);
      state.vs = null;
    }
    schedule(true);
  };
  $("error").title = "Go to the error";
  $("error").onclick = () => {                    // put the cursor at the error and scroll to it
    const range = errorRange(ta.value);
    if (!range) return;
    ta.focus();
    ta.setSelectionRange(range[0], range[1]);
    const lineHeight = 18;
    $("editor").scrollTop = Math.max(0, (state.error.line - 5) * lineHeight);
  };
  setupDiagram();
  if (info.opened && (info.opened.path || info.opened.zoo)) await open(info.opened);
  else if (info.files.length) await open({path: info.files[0]});
  else setDoc({path: "untitled.res", shown: "untitled.res", text: "network net(classes = 10) {\n  input 3x32x32\n  stem { conv 16 k3; bn; relu }\n  stage x 2 basic(16)\n  head { avgpool; fc classes }\n}\n"});
}

window.addEventListener("DOMContentLoaded", init);
