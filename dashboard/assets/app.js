// leakscope dashboard: live updates of the overview over Server-Sent Events.
// Data is only ever written with textContent, never parsed as HTML.
(function () {
  'use strict';
  var body = document.body;
  if (body.dataset.page !== 'overview') return;
  var root = body.dataset.root || '';
  var q1 = body.dataset.q1 || '';
  var CAP = 600;
  // Tick steps: whole seconds on the time axis, whole numbers on count axes.
  var SECONDS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600];
  var WHOLE = [];
  for (var e = 1; e < 1e12; e *= 10) WHOLE.push(e, 2 * e, 5 * e);
  var BINARY = [];
  for (var b = 1; b < 1e15; b *= 2) BINARY.push(b);

  function count(n) { return Number(n).toLocaleString('en-US'); }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    var u = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'], v = n / 1024, i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + ' ' + u[i];
  }
  function duration(ms) {
    var s = Math.floor(ms / 1000);
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    if (ms < 86400000) return Math.floor(s / 3600) + ' h ' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + ' min';
    return Math.floor(s / 86400) + ' d ' + String(Math.floor(s % 86400 / 3600)).padStart(2, '0') + ' h';
  }
  function clock(secs) {
    var d = new Date(secs * 1000);
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map(function (x) { return String(x).padStart(2, '0'); }).join(':');
  }
  function fmt(kind, n) { return kind === 'bytes' ? bytes(n) : count(n); }

  // Charts: one uPlot per series, sharing the time column.
  var data = { t: [] };
  var charts = [];
  document.querySelectorAll('.chart').forEach(function (fig) {
    var key = fig.dataset.series, kind = fig.dataset.kind;
    data[key] = [];
    if (typeof uPlot === 'undefined') return;
    var plot = fig.querySelector('.plot');
    var red = key === 'orphan_tasks';
    var opts = {
      width: Math.max(plot.clientWidth, 280), height: 180,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // At least the last minute, so a young history is not stretched over a few seconds.
        x: { time: true, range: function (u, min, max) { return [Math.min(min, max - 60), max]; } },
        y: { range: function (u, min, max) { return [0, Math.max(max * 1.15, kind === 'bytes' ? 1024 : 4)]; } },
      },
      axes: [
        { size: 30, space: 80, incrs: SECONDS, stroke: '#5d6778', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#dde1e8' },
          values: function (u, vals) { return vals.map(clock); } },
        { size: kind === 'bytes' ? 80 : 64, incrs: kind === 'bytes' ? BINARY : WHOLE, stroke: '#5d6778',
          grid: { stroke: '#eef0f4' }, ticks: { stroke: '#dde1e8' },
          values: function (u, vals) { return vals.map(function (v) { return fmt(kind, Math.round(v)); }); } },
      ],
      series: [{}, {
        label: fig.querySelector('figcaption').textContent,
        stroke: red ? '#a31515' : '#2456c7', width: 2,
        fill: red ? 'rgba(163,21,21,0.12)' : 'rgba(36,86,199,0.10)',
        value: function (u, v) { return v == null ? '-' : fmt(kind, v); },
      }],
    };
    charts.push({ key: key, el: plot, u: new uPlot(opts, [[], []], plot) });
  });
  function redraw() {
    charts.forEach(function (c) { c.u.setData([data.t, data[c.key]]); });
  }
  window.addEventListener('resize', function () {
    charts.forEach(function (c) { c.u.setSize({ width: Math.max(c.el.clientWidth, 280), height: 180 }); });
  });
  function addPoint(p) {
    var t = p.t_ms / 1000;
    if (data.t.length && t <= data.t[data.t.length - 1]) return;
    data.t.push(t);
    charts.forEach(function (c) { data[c.key].push(p[c.key]); });
    Object.keys(data).forEach(function (k) { if (data[k].length > CAP) data[k].shift(); });
    redraw();
  }

  function setCounter(key, value) {
    var el = document.querySelector('.counter[data-counter="' + key + '"]');
    if (!el) return;
    el.querySelector('.value').textContent = fmt(el.dataset.kind, value);
    el.classList.toggle('bad', el.classList.contains('alarm') && value > 0);
  }

  function cell(tr, text, cls, href) {
    var td = document.createElement('td');
    if (cls) td.className = cls;
    if (href) {
      var a = document.createElement('a');
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    tr.appendChild(td);
  }

  var lastHash = null;
  var tbody = document.getElementById('orphans-body');
  function renderOrphans(s) {
    document.getElementById('orphan-count').textContent = count(s.orphans_listed);
    var more = s.orphans_listed - s.orphans.length;
    var moreEl = document.getElementById('orphans-more');
    moreEl.hidden = more <= 0;
    moreEl.querySelector('span').textContent = count(more);
    document.getElementById('orphans-empty').hidden = s.orphans.length > 0;
    if (s.hash === lastHash) {
      // Same rows: only the ages moved.
      var ages = tbody.querySelectorAll('td.age');
      s.orphans.forEach(function (o, i) { if (ages[i]) ages[i].textContent = duration(o.since_close_ms); });
      return;
    }
    lastHash = s.hash;
    var rows = document.createDocumentFragment();
    s.orphans.forEach(function (o) {
      var tr = document.createElement('tr');
      tr.className = 'orphan';
      tr.dataset.label = o.label;
      tr.dataset.task = String(o.task_id);
      cell(tr, '#' + o.conn_id, 'num', root + 'conn/' + o.conn_id + q1);
      cell(tr, o.label);
      cell(tr, o.peer, 'mono');
      cell(tr, o.name, '', root + 'task/' + o.task_id + q1);
      cell(tr, o.spawned_at, 'mono loc');
      cell(tr, duration(o.since_close_ms), 'num age');
      cell(tr, o.activity, 'activity');
      rows.appendChild(tr);
    });
    tbody.replaceChildren(rows);
  }

  function apply(s) {
    var t = s.totals, h = s.heap;
    setCounter('open_connections', t.open_connections);
    setCounter('live_tasks', t.live_tasks);
    setCounter('orphan_tasks', t.orphan_tasks);
    setCounter('live_bytes', h.connection_live_bytes);
    setCounter('retained_bytes', h.retained_bytes);
    setCounter('connections_leaking_memory', t.connections_leaking_memory);
    setCounter('connections_opened', t.connections_opened);
    setCounter('connections_closed', t.connections_closed);
    setCounter('connections_leaking', t.connections_leaking);
    setCounter('routes_leaking', t.routes_leaking);
    setCounter('shared_tasks', t.shared_tasks);
    setCounter('tasks_spawned', t.tasks_spawned);
    var mode = document.getElementById('mode');
    mode.textContent = s.mode;
    mode.className = 'badge mode-' + s.mode;
    document.getElementById('mode-limits').textContent = s.mode_limits;
    var note = document.getElementById('heap-note');
    if (note) note.hidden = h.tracking;
    renderOrphans(s);
    addPoint(s.point);
  }

  var live = document.getElementById('live');
  function status(state, text) { live.dataset.state = state; live.textContent = text; }

  fetch(body.dataset.history, { credentials: 'same-origin' })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (h) {
      if (!h) return;
      var keep = data.t.length ? data : null;
      data = { t: h.t };
      charts.forEach(function (c) { data[c.key] = h[c.key]; });
      // Points that arrived over the live stream while the history loaded.
      if (keep) keep.t.forEach(function (t, i) {
        var p = { t_ms: t * 1000 };
        charts.forEach(function (c) { p[c.key] = keep[c.key][i]; });
        addPoint(p);
      });
      redraw();
    })
    .catch(function () {});

  if (typeof EventSource === 'undefined') { status('off', 'no live updates'); return; }
  var es = new EventSource(body.dataset.events);
  es.onopen = function () { status('live', 'live'); };
  es.onerror = function () { status('reconnecting', 'reconnecting…'); };
  es.addEventListener('summary', function (ev) {
    status('live', 'live');
    try { apply(JSON.parse(ev.data)); } catch (e) { if (window.console) console.error(e); }
  });
})();
