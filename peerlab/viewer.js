// peerlab run viewer: draws one run's timeline (embedded as JSON) as SVG, at any instant.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("run-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const names = D.names;
  const W = 1000;
  const H = D.height;
  const big = names.length > 50;
  const key = (i, j) => (i < j ? i + "|" + j : j + "|" + i);
  const el = (tag, attrs, parent) => {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  };
  const fmt = (t) => t.toFixed(3) + "s";
  // the last index in rows (sorted by row[0]) whose time is <= t, plus one
  const upTo = (rows, t) => {
    let lo = 0, hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid][0] <= t) lo = mid + 1; else hi = mid;
    }
    return lo;
  };

  // --- the state at an instant, replayed from the timeline -------------------------------
  function linksAt(t) {
    const up = new Set();
    for (const [when, a, b, isUp] of D.linkRows) {
      if (when > t) break;
      if (isUp) up.add(key(a, b)); else up.delete(key(a, b));
    }
    return up;
  }
  function startedAt(t) {  // member index -> when it last started, for those running at t
    const since = new Map();
    for (const [when, m, isUp] of D.memberRows) {
      if (when > t) break;
      if (isUp) since.set(m, when); else since.delete(m);
    }
    return since;
  }
  function rowsOf(rows, since, t) {
    if (!rows) return [];
    let first = 0;
    while (first < rows.length && rows[first][0] < since) first++;
    return rows.slice(first, upTo(rows, t));
  }
  function tableAt(m, since, t) {
    const table = new Map();
    for (const row of rowsOf(D.routes[names[m]], since, t)) {
      for (let i = 1; i < row.length; i += 3) {
        if (row[i + 1] < 0) table.delete(row[i]); else table.set(row[i], [row[i + 1], row[i + 2]]);
      }
    }
    return table;
  }
  function viewAt(m, since, t) {
    const view = new Set();
    for (const [, added, gone] of rowsOf(D.views[names[m]], since, t)) {
      for (let i = 0; i < added.length; i += 2) view.add(key(added[i], added[i + 1]));
      for (let i = 0; i < gone.length; i += 2) view.delete(key(gone[i], gone[i + 1]));
    }
    return view;
  }

  // --- drawing ----------------------------------------------------------------------------
  const svg = $("topology");
  svg.setAttribute("viewBox", `-40 -30 ${W + 80} ${H + 60}`);
  const px = (i) => D.pos[i][0] * W;
  const py = (i) => D.pos[i][1] * H;
  const linkLayer = el("g", {}, svg);
  const nodeLayer = el("g", {}, svg);
  const msgLayer = el("g", {}, svg);
  const lines = new Map();
  for (const [a, b] of D.links) {
    const line = el("line", {x1: px(a), y1: py(a), x2: px(b), y2: py(b), "data-link": names[a] + "|" + names[b]}, linkLayer);
    line.classList.add("link");
    lines.set(key(a, b), line);
  }
  const nodes = names.map((name, i) => {
    const g = el("g", {"data-member": name, transform: `translate(${px(i)},${py(i)})`}, nodeLayer);
    g.classList.add("member");
    el("circle", {r: big ? 5 : 14}, g);
    const label = el("text", {y: big ? -8 : 4}, g);
    label.textContent = name;
    const title = el("title", {}, g);
    title.textContent = name;
    g.addEventListener("click", () => select(i));
    return g;
  });

  const strip = $("strip");
  const SW = 1000, SH = 86;
  strip.setAttribute("viewBox", `0 0 ${SW} ${SH}`);
  const sx = (t) => (t / D.duration) * SW;
  D.convergence.forEach(([at, done, status, label], k) => {
    const next = k + 1 < D.convergence.length ? D.convergence[k + 1][0] : D.duration;
    const end = done === null ? next : done;
    const r = el("rect", {x: sx(at), y: 44, width: Math.max(2, sx(end) - sx(at)), height: 16}, strip);
    r.classList.add("window", status);
    el("title", {}, r).textContent = `${label} at ${fmt(at)}: ` +
      (done === null ? status.replace("_", " ") : `converged in ${((done - at) * 1000).toFixed(0)} ms`);
  });
  D.events.forEach(([at, label], k) => {
    el("line", {x1: sx(at), x2: sx(at), y1: 0, y2: 64}, strip).classList.add("tick");
    const text = el("text", {x: sx(at) + 2, y: 10 + 12 * (k % 3)}, strip);
    text.textContent = label;
  });
  for (const row of D.messages) {
    el("circle", {cx: sx(row[3][0]), cy: 74, r: 2}, strip).classList.add(row[4] ? "sent" : "lost");
  }
  const cursor = el("line", {y1: 0, y2: SH}, strip);
  cursor.classList.add("cursor");
  strip.addEventListener("click", (e) => {
    const box = strip.getBoundingClientRect();
    setTime(((e.clientX - box.left) / box.width) * D.duration);
  });

  // --- state and rendering ----------------------------------------------------------------
  const slider = $("slider");
  slider.max = D.duration;
  slider.step = "any";
  // open on the network as it first settled, rather than on members still dialling
  const first = D.convergence.length ? D.convergence[0][1] : null;
  let t = first === null ? 0 : first, selected = null, playing = false, last = null;

  function render() {
    const up = linksAt(t);
    const since = startedAt(t);
    let view = null;
    if (selected !== null && since.has(selected) && !D.viewsOmitted) view = viewAt(selected, since.get(selected), t);
    for (const [k, line] of lines) {
      let state = up.has(k) ? "up" : "down";
      if (view) {
        if (view.has(k) && !up.has(k)) state = "stale";
        else if (!view.has(k) && up.has(k)) state = "unheard";
      }
      line.dataset.state = state;
    }
    nodes.forEach((g, i) => {
      g.classList.toggle("down", !since.has(i));
      g.classList.toggle("selected", i === selected);
    });
    drawMessages();
    $("time").textContent = fmt(t);
    slider.value = t;
    cursor.setAttribute("x1", sx(t));
    cursor.setAttribute("x2", sx(t));
    $("summary").textContent = `${since.size} members running, ${up.size} links up`;
    panel(since, up, view);
  }

  function drawMessages() {
    msgLayer.replaceChildren();
    const linger = D.duration / 200;
    for (const [src, dst, path, times, delivered] of D.messages) {
      const end = times[times.length - 1];
      if (t < times[0] || t > end + linger) continue;
      let k = 0;
      while (k + 1 < times.length && times[k + 1] <= t) k++;
      let x, y;
      if (k + 1 >= path.length || k + 1 >= times.length) {
        const at = path[Math.min(k, path.length - 1)];
        x = px(at); y = py(at);
      } else {
        const f = (t - times[k]) / Math.max(times[k + 1] - times[k], 1e-9);
        x = px(path[k]) + (px(path[k + 1]) - px(path[k])) * f;
        y = py(path[k]) + (py(path[k + 1]) - py(path[k])) * f;
      }
      const dot = el("circle", {cx: x, cy: y, r: big ? 4 : 6}, msgLayer);
      dot.classList.add("message", delivered ? "ok" : "dropped");
      el("title", {}, dot).textContent = `${names[src]} -> ${names[dst]}`;
    }
  }

  function panel(since, up, view) {
    const box = $("member");
    if (selected === null) {
      box.innerHTML = "<p class='hint'>Click a member to see its routing table and its view.</p>";
      return;
    }
    const name = names[selected];
    if (!since.has(selected)) {
      box.innerHTML = `<h3>${name}</h3><p>not running at ${fmt(t)}</p>`;
      return;
    }
    const table = tableAt(selected, since.get(selected), t);
    const rows = [...table.entries()].sort((a, b) => (names[a[0]] < names[b[0]] ? -1 : 1));
    let html = `<h3>${name}</h3><p>running since ${fmt(since.get(selected))}</p>`;
    if (D.viewsOmitted) {
      html += `<p class="view">view: ${D.viewsOmitted}</p>`;
    } else {
      let known = 0, stale = [], unheard = [];
      for (const k of view) if (up.has(k)) known++; else stale.push(k);
      for (const k of up) if (!view.has(k)) unheard.push(k);
      const show = (ks) => ks.map((k) => k.split("|").map((i) => names[i]).join("-")).join(", ");
      html += `<p class="view" id="view-summary">view: ${known} known, ${stale.length} stale, ${unheard.length} unheard` +
        (stale.length ? `<br><span class="stale-text">believed, but down: ${show(stale)}</span>` : "") +
        (unheard.length ? `<br><span class="unheard-text">up, not heard of: ${show(unheard)}</span>` : "") + "</p>";
    }
    html += `<table id="routes"><thead><tr><th>destination</th><th>next hop</th><th>hops</th></tr></thead><tbody>`;
    for (const [dst, [hop, hops]] of rows) {
      html += `<tr data-dst="${names[dst]}"><td>${names[dst]}</td><td>${names[hop]}</td><td>${hops}</td></tr>`;
    }
    html += "</tbody></table>";
    if (!rows.length) html += "<p>no routes</p>";
    box.innerHTML = html;
  }

  function select(i) {
    selected = selected === i ? null : i;
    render();
  }
  function setTime(value) {
    t = Math.min(Math.max(+value, 0), D.duration);
    render();
  }
  function tick(now) {
    if (!playing) return;
    if (last !== null) {
      t += ((now - last) / 1000) * +$("speed").value;
      if (t >= D.duration) { t = D.duration; stop(); }
      render();
    }
    last = now;
    if (playing) requestAnimationFrame(tick);
  }
  function stop() {
    playing = false;
    $("play").textContent = "play";
  }
  $("play").addEventListener("click", () => {
    if (playing) { stop(); return; }
    if (t >= D.duration) t = 0;
    playing = true;
    last = null;
    $("play").textContent = "pause";
    requestAnimationFrame(tick);
  });
  slider.addEventListener("input", () => { stop(); setTime(slider.value); });
  render();
})();
