// imgclust labelling app: selection, keyboard shortcuts and the JSON actions (no libraries).
(function () {
  "use strict";
  const token = document.querySelector('meta[name="imgclust-token"]').content;
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const status = document.getElementById("status");
  const EXTRA = "imgclust-extra-labels";

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "ok";
  }

  async function api(path, body) {
    const r = await fetch(path, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Imgclust-Token": token},
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    if (!r.ok) {
      let msg = data.error || data.detail || r.statusText;
      if (Array.isArray(msg)) msg = msg.map(d => d.msg).join("; ");
      throw new Error(msg);
    }
    return data;
  }

  async function act(path, body, done, reload) {
    try {
      const data = await api(path, body);
      say((done ? done(data) : "done") + (data.batch ? " (press u to undo)" : ""), false);
      document.body.dataset.lastBatch = data.batch || "";
      if (reload) setTimeout(() => location.reload(), 150);
      return data;
    } catch (e) {
      say("error: " + e.message, true);
      return null;
    }
  }

  // ---- the label list: labels in the store (order of first use), then ones typed here ----
  function extraLabels() {
    try { return JSON.parse(sessionStorage.getItem(EXTRA) || "[]"); } catch (e) { return []; }
  }
  function labelList() {
    const out = page.labels.slice();
    for (const l of extraLabels()) if (!out.includes(l)) out.push(l);
    return out;
  }
  function drawLabels() {
    const box = document.getElementById("label-list");
    box.textContent = "";
    labelList().forEach((l, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "label-btn";
      b.dataset.label = l;
      b.textContent = (i < 9 ? (i + 1) + " " : "") + l;
      b.addEventListener("click", () => applyLabel(l));
      box.appendChild(b);
    });
  }
  document.getElementById("new-label").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = document.getElementById("new-label-text");
    const l = input.value.trim();
    if (!l) return;
    const extra = extraLabels();
    if (!labelList().includes(l)) { extra.push(l); sessionStorage.setItem(EXTRA, JSON.stringify(extra)); }
    input.value = "";
    input.blur();
    drawLabels();
    say(`label "${l}" is key ${labelList().indexOf(l) + 1}`, false);
  });
  drawLabels();

  // ---- selection over the grid ----
  const tiles = Array.from(document.querySelectorAll("#grid .tile"));
  const selected = new Set();
  let fromRank = null;        // "select from here on": every member from this rank, all pages
  let focus = tiles.length ? 0 : -1;
  let anchor = null;

  function drawSelection() {
    tiles.forEach((t, i) => {
      const rank = t.dataset.rank === undefined ? null : Number(t.dataset.rank);
      const on = selected.has(Number(t.dataset.row)) || (fromRank !== null && rank !== null && rank >= fromRank);
      t.classList.toggle("selected", on);
      t.classList.toggle("focus", i === focus);
    });
    const count = document.getElementById("sel-count");
    if (count) {
      let text = String(selected.size);
      if (fromRank !== null) text = `every image from rank ${fromRank + 1} on` + (selected.size ? ` + ${selected.size}` : "");
      count.textContent = text;
    }
  }
  function setFocus(i) {
    if (!tiles.length) return;
    focus = Math.max(0, Math.min(tiles.length - 1, i));
    tiles[focus].focus({preventScroll: true});
    tiles[focus].scrollIntoView({block: "nearest"});
    drawSelection();
  }
  function toggle(i) {
    const row = Number(tiles[i].dataset.row);
    if (selected.has(row)) selected.delete(row); else selected.add(row);
  }
  tiles.forEach((t, i) => {
    t.addEventListener("click", (ev) => {
      if (ev.target.closest("a") && (ev.ctrlKey || ev.metaKey)) return;  // open the full image
      ev.preventDefault();
      if (ev.shiftKey && anchor !== null) {
        const [a, b] = anchor < i ? [anchor, i] : [i, anchor];
        for (let j = a; j <= b; j++) selected.add(Number(tiles[j].dataset.row));
      } else {
        toggle(i);
        anchor = i;
      }
      setFocus(i);
    });
  });
  function clearSelection() { selected.clear(); fromRank = null; anchor = null; drawSelection(); }
  function selectionBody() {
    const body = {rows: Array.from(selected)};
    if (fromRank !== null) { body.from_cluster = page.cluster; body.from_rank = fromRank; }
    if (!body.rows.length && fromRank === null && focus >= 0) body.rows = [Number(tiles[focus].dataset.row)];
    return body;
  }
  function hasTarget() { return selected.size || fromRank !== null || focus >= 0; }
  function selectionRows() {   // rows on this page that an action applies to
    const b = selectionBody();
    return tiles.filter(t => b.rows.includes(Number(t.dataset.row)) ||
      (b.from_rank !== undefined && t.dataset.rank !== undefined && Number(t.dataset.rank) >= b.from_rank));
  }
  async function applyLabel(l) {
    if (!tiles.length || !hasTarget()) { say("select images first", true); return; }
    const targets = selectionRows();
    const body = Object.assign(selectionBody(), {label: l});
    const data = await act("/api/label", body, d => `labelled ${d.n} image${d.n === 1 ? "" : "s"} "${l}"`);
    if (data) {
      for (const t of targets) {
        const lab = t.querySelector(".lab");
        lab.textContent = l || "";
        lab.classList.remove("machine");
      }
      if (!page.labels.includes(l) && l) page.labels.push(l);
      drawLabels();
      if (page.view === "next") { targets.forEach(t => t.classList.add("done")); }
      clearSelection();
      if (focus >= 0 && focus < tiles.length - 1) setFocus(focus + 1);
    }
  }
  function on(id, ev, fn) { const el = document.getElementById(id); if (el) el.addEventListener(ev, fn); }
  on("clear-sel", "click", clearSelection);
  on("from-here", "click", () => {
    if (focus < 0) return;
    fromRank = Number(tiles[focus].dataset.rank);
    drawSelection();
  });
  on("remove-label", "click", () => applyLabel(null));
  on("noi", "click", () => act("/api/interest", Object.assign(selectionBody(), {value: true}),
    d => `${d.n} marked not of interest`, true));
  on("move-form", "submit", (ev) => {
    ev.preventDefault();
    const to = Number(document.getElementById("move-to").value);
    act("/api/move", Object.assign(selectionBody(), {to: to}), d => `moved ${d.n} to cluster ${d.to}`, true);
  });
  on("name-form", "submit", (ev) => {
    ev.preventDefault();
    const name = document.getElementById("name-text").value;
    act("/api/name", {cluster: page.cluster, name: name.trim() || null}, () => "name saved", false)
      .then(d => { if (d) document.getElementById("cluster-name").textContent = name.trim(); });
  });
  on("merge-form", "submit", (ev) => {
    ev.preventDefault();
    const b = Number(document.getElementById("merge-into").value);
    act("/api/merge", {a: page.cluster, b: b}, () => `merged into cluster ${b}`)
      .then(d => { if (d) setTimeout(() => { location.href = "/cluster/" + b; }, 150); });
  });
  on("split-form", "submit", (ev) => {
    ev.preventDefault();
    say("splitting…", false);
    act("/api/split", {cluster: page.cluster, k: document.getElementById("split-k").value},
      d => `split into ${d.k}: clusters ${d.new_clusters.join(", ")}`)
      .then(d => { if (d) setTimeout(() => { location.href = "/"; }, 150); });
  });
  on("propagate", "submit", (ev) => {
    ev.preventDefault();
    say("propagating…", false);
    act("/api/propagate", {mode: document.getElementById("propagate-mode").value},
      d => d.batch ? `propagated (${d.mode}): ${d.labelled} images labelled, ${d.changed} changed`
                   : "propagation changed nothing", true);
  });
  on("export", "submit", (ev) => {
    ev.preventDefault();
    say("exporting…", false);
    act("/api/export", {folder: document.getElementById("export-folder").value,
                        format: document.getElementById("export-format").value,
                        machine: document.getElementById("export-machine").checked},
      d => `exported to ${d.folder}`, false);
  });
  async function undo(batch) {
    await act("/api/undo", batch ? {batch: batch} : {}, d => `undone ${d.batch}`, true);
  }
  on("undo", "click", () => undo(null));
  document.querySelectorAll(".undo-batch").forEach(b => b.addEventListener("click", () => undo(b.dataset.batch)));
  on("sort-by", "change", () => document.getElementById("sort").submit());
  on("search", "input", (ev) => {
    const q = ev.target.value.trim().toLowerCase();
    document.querySelectorAll("#cards .card").forEach(c => {
      c.hidden = q !== "" && !c.dataset.name.includes(q) && c.dataset.cluster !== q;
    });
  });

  // ---- keyboard ----
  function columns() {
    if (tiles.length < 2) return 1;
    const top = tiles[0].offsetTop;
    let n = 0;
    while (n < tiles.length && tiles[n].offsetTop === top) n++;
    return Math.max(1, n);
  }
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (/^[1-9]$/.test(ev.key)) {
      const l = labelList()[Number(ev.key) - 1];
      if (l === undefined) { say(`no label ${ev.key} yet: add one above`, true); return; }
      ev.preventDefault();
      applyLabel(l);
    } else if (ev.key === "u") {
      ev.preventDefault();
      undo(null);
    } else if (tiles.length && ev.key === "ArrowRight") { ev.preventDefault(); setFocus(focus + 1); }
    else if (tiles.length && ev.key === "ArrowLeft") { ev.preventDefault(); setFocus(focus - 1); }
    else if (tiles.length && ev.key === "ArrowDown") { ev.preventDefault(); setFocus(focus + columns()); }
    else if (tiles.length && ev.key === "ArrowUp") { ev.preventDefault(); setFocus(focus - columns()); }
    else if (tiles.length && ev.key === " ") {
      ev.preventDefault();
      if (ev.shiftKey && anchor !== null) {
        const [a, b] = anchor < focus ? [anchor, focus] : [focus, anchor];
        for (let j = a; j <= b; j++) selected.add(Number(tiles[j].dataset.row));
      } else { toggle(focus); anchor = focus; }
      drawSelection();
    } else if (ev.key === "Escape") { clearSelection(); }
  });

  if (page.view === "overview") {
    fetch("/api/accuracy").then(r => r.json()).then(a => {
      const el = document.getElementById("accuracy");
      el.textContent = a.accuracy === null || a.accuracy === undefined
        ? `– (${a.why || "not enough labels"})`
        : `${(100 * a.accuracy).toFixed(1)} % ± ${(100 * a.sd).toFixed(1)} (${a.folds}-fold, ${a.n_labels} labels)`;
    }).catch(() => {});
  }
  drawSelection();
  window.imgclustApp = {ready: true, labelList: labelList};
})();
