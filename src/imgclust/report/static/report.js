// imgclust report: paged galleries, lazily drawn plots and the map's hover card.
// Plain DOM code, no framework: the page must open offline from a file:// URL.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 120;
  var missing = new Set(D.missing || []);
  if (!D.labels && D.members) {  // each row's cluster, rebuilt from the member lists (smaller page)
    D.labels = new Int32Array(D.n);
    Object.keys(D.members).forEach(function (c) {
      D.members[c].forEach(function (r) { D.labels[r] = +c; });
    });
  }
  var state = { plotted: 0, plotErrors: 0, pagers: 0 };
  window.imgclustReport = state;

  function pad3(n) { return ("00" + n).slice(-3); }
  // a row's thumbnail: its own JPEG, or a cell of its PNG sheet (tiny images), px pixels wide
  function thumbEl(r, px, alt) {
    var shard = Math.floor(r / D.shard);
    if (D.mode === "sheet") {
      var i = r % D.shard, col = i % D.cols, line = Math.floor(i / D.cols);
      var d = el("div", "thumb sprite");
      d.setAttribute("role", "img"); d.setAttribute("aria-label", alt);
      d.style.width = d.style.height = px + "px";
      d.style.backgroundImage = "url(thumbs/sheet_" + pad3(shard) + ".png)";
      d.style.backgroundSize = (D.cols * px) + "px auto";
      d.style.backgroundPosition = (-col * px) + "px " + (-line * px) + "px";
      return d;
    }
    var img = el("img", "thumb");
    img.loading = "lazy"; img.width = px; img.height = px; img.alt = alt;
    img.src = "thumbs/" + pad3(shard) + "/" + r + ".jpg";
    return img;
  }
  function idOf(r) { return D.ids ? D.ids[r] : String(r); }
  function shortName(r) { var i = idOf(r); var k = i.lastIndexOf("/"); return k >= 0 ? i.slice(k + 1) : i; }
  function clusterName(c) { return c < 0 ? "noise" : "cluster " + c; }
  function className(r) { return D.truth && D.truth[r] >= 0 ? D.classes[D.truth[r]] : null; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function tile(r, caption) {
    var f = el("figure", "tile");
    var c = D.labels[r];
    var cls = className(r);
    f.title = idOf(r) + " · " + clusterName(c) + (cls !== null ? " · class " + cls : "");
    if (!D.thumbs || missing.has(r)) {
      f.appendChild(el("div", "thumb missing", "no thumbnail"));
    } else {
      f.appendChild(thumbEl(r, 64, shortName(r)));
    }
    f.appendChild(el("figcaption", null, caption || shortName(r)));
    return f;
  }

  // A list of rows shown PAGE at a time: 100,000 images never become 100,000 DOM nodes.
  function Pager(box, rows, caption) {
    var page = 0, pages = Math.max(1, Math.ceil(rows.length / PAGE));
    var bar = el("div", "bar"), grid = el("div", "grid");
    var prev = el("button", null, "‹ previous"), next = el("button", null, "next ›");
    var info = el("span", "note");
    prev.type = next.type = "button";
    bar.appendChild(prev); bar.appendChild(info); bar.appendChild(next);
    box.appendChild(bar); box.appendChild(grid);
    function show(p) {
      page = Math.min(Math.max(0, p), pages - 1);
      grid.textContent = "";
      var frag = document.createDocumentFragment();
      for (var i = page * PAGE; i < Math.min(rows.length, (page + 1) * PAGE); i++) {
        frag.appendChild(tile(rows[i], caption ? caption(rows[i]) : null));
      }
      grid.appendChild(frag);
      info.textContent = "page " + (page + 1) + " of " + pages + " · " + rows.length + " images";
      prev.disabled = page === 0; next.disabled = page >= pages - 1;
    }
    prev.addEventListener("click", function () { show(page - 1); });
    next.addEventListener("click", function () { show(page + 1); });
    show(0);
    state.pagers++;
  }

  document.querySelectorAll("button.show-all").forEach(function (b) {
    b.addEventListener("click", function () {
      var c = b.getAttribute("data-cluster");
      var box = document.querySelector('.pager[data-cluster="' + c + '"]');
      if (!box.hasChildNodes()) Pager(box, D.members[c]);
      box.hidden = !box.hidden;
      b.textContent = box.hidden ? "Show all " + D.members[c].length : "Hide";
    });
  });

  var dis = document.getElementById("disagree-pager");
  if (dis && D.disagree) {
    Pager(dis, D.disagree, function (r) {
      var c = D.labels[r];
      var m = D.mapping[String(c)];
      return "is " + className(r) + ", in c" + c + (m !== undefined && m !== null ? " → " + m : "");
    });
  }

  // Plots: drawn when scrolled near, so a long report opens at once.
  var card = document.getElementById("hovercard");
  function hoverCard(fig) {
    fig.on("plotly_hover", function (ev) {
      var p = ev.points && ev.points[0];
      if (!p || p.customdata === undefined) return;
      var r = p.customdata;
      card.textContent = "";
      if (D.thumbs && !missing.has(r)) {
        card.appendChild(thumbEl(r, 128, shortName(r)));
      }
      card.appendChild(el("div", null, idOf(r)));
      var cls = className(r);
      card.appendChild(el("div", "note", clusterName(D.labels[r]) + (cls !== null ? " · class " + cls : "")));
      var e = ev.event || {};
      var x = (e.clientX || 0) + 16, y = (e.clientY || 0) + 16;
      card.style.left = Math.min(x, window.innerWidth - 250) + "px";
      card.style.top = Math.min(y, window.innerHeight - 200) + "px";
      card.hidden = false;
    });
    fig.on("plotly_unhover", function () { card.hidden = true; });
  }

  function draw(div) {
    var name = div.getAttribute("data-fig");
    var f = D.figs[name];
    if (!f || div.getAttribute("data-drawn")) return;
    div.setAttribute("data-drawn", "1");
    if (typeof Plotly === "undefined") {
      div.appendChild(el("p", "plot-error", "plotly.min.js was not found beside this report: plots cannot be drawn."));
      state.plotErrors++;
      return;
    }
    Plotly.newPlot(div, f.data, f.layout, { responsive: true, displaylogo: false }).then(function (g) {
      if (name === "map") hoverCard(g);
      state.plotted++;
      div.setAttribute("data-drawn", "done");
    });
  }

  var plots = document.querySelectorAll(".plot[data-fig]");
  state.plots = plots.length;
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) { if (en.isIntersecting) { io.unobserve(en.target); draw(en.target); } });
    }, { rootMargin: "400px" });
    plots.forEach(function (p) { io.observe(p); });
  } else {
    plots.forEach(draw);
  }
  // for tests and for printing: draw everything on request
  state.drawAll = function () { plots.forEach(draw); };
  state.ready = true;
})();
