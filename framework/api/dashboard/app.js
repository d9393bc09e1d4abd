// PEL live dashboard: polls the read-only JSON API (docs/api.md) about once a second and draws
// the selected pipeline's actor graph, throughput, lag, dead letters, late records,
// checkpoints, restarts and scaling decisions. Plain DOM and SVG, no dependencies.
'use strict';

(function () {
  const API = 'api/v1';          // relative: works behind a path prefix too
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 4000;
  const HISTORY_TIMEOUT_MS = 30000;   // /history is large (every component, 5 minutes)
  const HISTORY_RETRY_MS = 10000;
  const HISTORY_KEEP_MS = 5 * 60 * 1000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const MAX_EVENTS = 100;

  // ---- token: taken from ?token=T once, kept for this tab, sent on every request ----------

  const token = (function () {
    const params = new URLSearchParams(window.location.search);
    let t = params.get('token');
    try {
      if (t) window.sessionStorage.setItem('pel-token', t);
      else t = window.sessionStorage.getItem('pel-token');
    } catch (e) {
      // storage may be disabled; the token from the address is enough
    }
    return t || null;
  })();

  const state = {
    pipelines: [],
    selected: null,
    connected: null,     // null: not yet known
    lastOk: 0,
    tick: 0,
    fit: false,
    graphKey: null,
    graph: null,         // refs into the drawn SVG, by component
    detail: null,
    instances: null,
    sources: null,
    history: {points: []},  // {points}: fetched once, then extended from each poll
    historyLoad: null,   // null, 'loading' or 'done'
    historyRetryAt: 0,
    seen: null,          // what the activity log has reported, per pipeline
    pipelineStates: {},
  };

  // ---- small helpers ------------------------------------------------------------------------

  const $ = (sel) => document.querySelector(sel);

  /** Creates an HTML element: h('td', {class: 'num'}, 'text', child). */
  function h(tag, attrs) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  /** Creates an SVG element. */
  function s(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach((c) => append(el, c)); return; }
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
  const num = (x) => (typeof x === 'number' && isFinite(x) ? x : null);

  const intFormat = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});

  function fmtCount(v) {
    v = num(v);
    return v === null ? '–' : intFormat.format(v);
  }

  function fmtRate(v) {
    v = num(v);
    if (v === null) return '–';
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100) return intFormat.format(v);
    if (a >= 10 || v === Math.round(v)) return v.toFixed(a >= 10 ? 1 : 0).replace(/\.0$/, '');
    return v.toFixed(1);
  }

  function fmtPct(v) {
    v = num(v);
    return v === null ? '–' : Math.round(v * 100) + ' %';
  }

  function fmtSeconds(v) {
    v = num(v);
    if (v === null) return '–';
    const a = Math.abs(v);
    if (a < 0.001) return '0 s';
    if (a < 1) return Math.round(v * 1000) + ' ms';
    if (a < 60) return v.toFixed(a < 10 ? 2 : 1) + ' s';
    if (a < 3600) return Math.floor(v / 60) + ' min ' + Math.round(v % 60) + ' s';
    if (a < 86400) return Math.floor(v / 3600) + ' h ' + Math.round((v % 3600) / 60) + ' min';
    return intFormat.format(Math.floor(v / 86400)) + ' d ' + Math.round((v % 86400) / 3600) + ' h';
  }

  function fmtBytes(v) {
    v = num(v);
    if (v === null) return '–';
    if (v < 1024) return v + ' B';
    if (v < 1024 * 1024) return (v / 1024).toFixed(1) + ' KiB';
    if (v < 1024 * 1024 * 1024) return (v / 1024 / 1024).toFixed(1) + ' MiB';
    return (v / 1024 / 1024 / 1024).toFixed(2) + ' GiB';
  }

  function fmtClock(ms) {
    ms = num(ms);
    if (ms === null) return '–';
    const d = new Date(ms);
    const p = (n, w) => String(n).padStart(w || 2, '0');
    return p(d.getUTCHours()) + ':' + p(d.getUTCMinutes()) + ':' + p(d.getUTCSeconds()) + '.' +
           p(d.getUTCMilliseconds(), 3);
  }

  function fmtWatermark(wm, ms) {
    if (wm === 'end') return 'end';
    if (ms === null || ms === undefined) return '–';
    return fmtClock(ms);
  }

  /** Mixes two #rrggbb colours, t in [0, 1]. */
  function mix(a, b, t) {
    const pa = [1, 3, 5].map((i) => parseInt(a.substr(i, 2), 16));
    const pb = [1, 3, 5].map((i) => parseInt(b.substr(i, 2), 16));
    return '#' + pa.map((x, i) => Math.round(x + (pb[i] - x) * t).toString(16).padStart(2, '0')).join('');
  }

  // Instance colours (the legend in index.html describes them).
  const NO_DATA = '#d5dae1';
  function instanceColour(inst) {
    if (!inst || num(inst.busy) === null) return NO_DATA;
    const bp = num(inst.backpressured) || 0;
    if (bp >= 0.05) return mix('#f6b26b', '#b3261e', clamp((bp - 0.05) / 0.5, 0, 1));
    return mix('#e6effb', '#1d4f9c', clamp(inst.busy, 0, 1));
  }

  function edgeClass(bp) {
    if (bp === null) return '';
    if (bp >= 0.3) return ' bp-high';
    if (bp >= 0.05) return ' bp-low';
    return '';
  }

  // ---- fetching ------------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, text) {
      super(text);
      this.status = status;
    }
  }

  /** The server could not be reached, did not answer in time, or broke off its answer. */
  class NetworkError extends Error {}

  async function getJSON(path, timeoutMs) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs || FETCH_TIMEOUT_MS);
    try {
      const headers = {Accept: 'application/json'};
      if (token) headers.Authorization = 'Bearer ' + token;
      let res;
      try {
        res = await fetch(path, {headers: headers, signal: ctl.signal, cache: 'no-store'});
      } catch (e) {
        throw new NetworkError(e && e.name === 'AbortError' ? 'no answer' : 'server unreachable');
      }
      if (!res.ok) {
        let text = res.statusText;
        try { text = (await res.json()).error || text; } catch (e) { /* not JSON */ }
        throw new HttpError(res.status, text);
      }
      try {
        return await res.json();
      } catch (e) {
        throw new NetworkError('a broken answer');
      }
    } finally {
      clearTimeout(timer);
    }
  }

  const pipelinePath = (name) => API + '/pipelines/' + encodeURIComponent(name);

  // ---- connection state ----------------------------------------------------------------------

  function setConnected(ok, why) {
    const el = $('#connection');
    const banner = $('#banner');
    if (ok) {
      if (state.connected === false) logEvent('connection', 'reconnected to the server');
      state.connected = true;
      state.lastOk = Date.now();
      el.dataset.state = 'connected';
      setText(el, 'live');
      el.setAttribute('aria-label', 'Connected, updating live');
      banner.hidden = true;
      document.body.classList.remove('disconnected');
    } else {
      if (state.connected !== false) logEvent('connection', 'lost the server: ' + why);
      state.connected = false;
      el.dataset.state = 'disconnected';
      setText(el, 'disconnected');
      el.setAttribute('aria-label', 'Disconnected from the server, retrying');
      banner.hidden = false;
      setText(banner, 'Disconnected (' + why + '). Showing the last figures; retrying every second…');
      document.body.classList.add('disconnected');
    }
  }

  function updateClock() {
    const el = $('#updated');
    if (!state.lastOk) { setText(el, ''); return; }
    const ago = (Date.now() - state.lastOk) / 1000;
    setText(el, ago < 2 ? 'updated now' : 'updated ' + Math.round(ago) + ' s ago');
  }

  // ---- the poll loop -------------------------------------------------------------------------

  async function tick() {
    const started = Date.now();
    try {
      const list = await getJSON(API + '/pipelines');
      setConnected(true);
      renderPipelines(list.pipelines || []);
      if (state.selected) await refreshPipeline(state.selected);
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) {
        setConnected(false, 'the server wants a token: open the page as /?token=TOKEN');
      } else if (e instanceof HttpError) {
        setConnected(false, 'HTTP ' + e.status + ': ' + e.message);
      } else if (e instanceof NetworkError) {
        setConnected(false, e.message);
      } else {
        console.error('dashboard: ' + (e && e.stack ? e.stack : e));  // a bug of the page
      }
    }
    state.tick++;
    updateClock();
    setTimeout(tick, Math.max(250, POLL_MS - (Date.now() - started)));
  }

  async function refreshPipeline(name) {
    const base = pipelinePath(name);
    const parts = ['', '/instances', '/sources', '/dead-letters', '/late', '/checkpoints',
                   '/restarts', '/scaling'];
    const results = await Promise.allSettled(parts.map((p) => getJSON(base + p)));
    if (state.selected !== name) return;   // switched while waiting
    const get = {};
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') { get[parts[i]] = r.value; return; }
      // A network failure means the server is gone: let the loop show it.
      if (!(r.reason instanceof HttpError) || r.reason.status === 401) throw r.reason;
      get[parts[i]] = null;
    });

    if (get['']) { state.detail = get['']; }
    if (get['/instances']) state.instances = get['/instances'];
    if (get['/sources']) state.sources = get['/sources'];
    extendHistory(name);
    loadHistory(name);

    const byComponent = aggregateInstances(state.instances);
    renderGraph(state.detail, byComponent, state.sources);
    renderComponents(state.detail, byComponent);
    renderLag(state.sources);
    renderChart(state.history);
    if (get['/dead-letters']) renderDeadLetters(get['/dead-letters']);
    if (get['/late']) renderLate(get['/late']);
    if (get['/checkpoints']) renderCheckpoints(get['/checkpoints']);
    if (get['/restarts']) renderRestarts(get['/restarts']);
    if (get['/scaling']) renderScaling(get['/scaling']);
    noteActivity(name, get);
  }

  // ---- pipelines and summary -----------------------------------------------------------------

  function resetSelection(name) {
    state.selected = name;
    state.graphKey = null;
    state.detail = state.instances = state.sources = null;
    state.history = {points: []};
    state.historyLoad = null;
    state.historyRetryAt = 0;
    state.seen = null;
  }

  function selectPipeline(name) {
    if (state.selected === name) return;
    resetSelection(name);
    try {
      window.history.replaceState(null, '', '#pipeline=' + encodeURIComponent(name));
    } catch (e) { /* file: or sandboxed */ }
    renderPipelines(state.pipelines);
    refreshPipeline(name).catch((e) => {
      if (!(e instanceof HttpError) && !(e instanceof NetworkError)) console.error('dashboard: ' + (e && e.stack ? e.stack : e));
      // the loop reports the server's failures
    });
  }

  function wantedFromHash() {
    const m = /pipeline=([^&]*)/.exec(window.location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function renderPipelines(list) {
    state.pipelines = list;
    for (const p of list) {
      const before = state.pipelineStates[p.name];
      if (before && before !== p.state) {
        logEvent('state', p.name + ': ' + before + ' → ' + p.state + (p.error ? ' (' + p.error + ')' : ''));
      }
      state.pipelineStates[p.name] = p.state;
    }
    if (!state.selected || !list.some((p) => p.name === state.selected)) {
      const wanted = wantedFromHash();
      const pick = list.find((p) => p.name === wanted) || list[0];
      if (pick) resetSelection(pick.name);
    }
    const nav = $('#pipelines');
    const names = list.map((p) => p.name).join('\n');
    if (nav.dataset.names !== names) {
      clear(nav);
      nav.dataset.names = names;
      for (const p of list) {
        const b = h('button', {type: 'button', class: 'pipeline', 'data-pipeline': p.name},
                    h('span', {class: 'pname'}, p.name),
                    h('span', {class: 'pstate', 'data-metric': 'state'}, p.state),
                    h('span', {class: 'prate', 'data-metric': 'records_in_per_s'}, ''));
        b.addEventListener('click', () => selectPipeline(p.name));
        nav.appendChild(b);
      }
    }
    for (const p of list) {
      const b = nav.querySelector('[data-pipeline="' + cssEscape(p.name) + '"]');
      if (!b) continue;
      const selected = p.name === state.selected;
      b.setAttribute('aria-pressed', selected ? 'true' : 'false');
      b.setAttribute('aria-label', 'Pipeline ' + p.name + ', ' + p.state + ', ' +
                     fmtRate(p.records_in_per_s) + ' records in per second');
      b.dataset.state = p.state;
      setText(b.querySelector('.pstate'), p.state);
      setText(b.querySelector('.prate'), fmtRate(p.records_in_per_s) + '/s');
    }
    const cur = list.find((p) => p.name === state.selected);
    renderSummary(cur);
  }

  function cssEscape(v) {
    return window.CSS && CSS.escape ? CSS.escape(v) : String(v).replace(/["\\]/g, '\\$&');
  }

  function renderSummary(p) {
    const root = $('#summary');
    const set = (metric, text) => setText(root.querySelector('[data-metric="' + metric + '"]'), text);
    if (!p) {
      set('name', 'no pipelines');
      return;
    }
    set('name', p.name);
    set('state', p.state + (p.error ? ': ' + p.error : ''));
    root.querySelector('[data-metric="state"]').dataset.state = p.state;
    set('uptime_s', fmtSeconds(p.uptime_s));
    set('records_in_per_s', fmtRate(p.records_in_per_s));
    set('records_out_per_s', fmtRate(p.records_out_per_s));
    set('records_in', fmtCount(p.records_in));
    set('records_out', fmtCount(p.records_out));
    set('dead_letters', fmtCount(p.dead_letters));
    set('late', fmtCount(p.late));
    set('checkpoints', fmtCount(p.checkpoints));
    set('restarts', fmtCount(p.restarts));
    set('size', fmtCount(p.components) + ' / ' + fmtCount(p.instances));
    document.title = p.name + ' · ' + fmtRate(p.records_in_per_s) + ' in/s · PEL';
  }

  // ---- per-component figures -----------------------------------------------------------------

  /** Sums and averages the instances of each component. */
  function aggregateInstances(data) {
    const out = {};
    if (!data || !Array.isArray(data.instances)) return out;
    for (const i of data.instances) {
      let c = out[i.component];
      if (!c) {
        c = out[i.component] = {
          instances: [], records_in_per_s: 0, records_out_per_s: 0, busy: null,
          backpressured: null, watermark_ms: null, watermark_end: true, watermark_lag_s: null,
          queue_used: 0, queue_capacity: 0, state_bytes: null, dead_letters: 0, late: 0,
        };
      }
      c.instances[i.instance] = i;
      c.records_in_per_s += num(i.records_in_per_s) || 0;
      c.records_out_per_s += num(i.records_out_per_s) || 0;
      if (num(i.busy) !== null) c.busy = (c.busy || 0) + i.busy;
      if (num(i.backpressured) !== null) c.backpressured = (c.backpressured || 0) + i.backpressured;
      if (i.watermark !== 'end') c.watermark_end = false;
      if (num(i.watermark_ms) !== null && i.watermark !== 'end') {
        c.watermark_ms = c.watermark_ms === null ? i.watermark_ms : Math.min(c.watermark_ms, i.watermark_ms);
      }
      if (num(i.watermark_lag_s) !== null) {
        c.watermark_lag_s = c.watermark_lag_s === null ? i.watermark_lag_s : Math.max(c.watermark_lag_s, i.watermark_lag_s);
      }
      c.queue_used += num(i.queue_used) || 0;
      c.queue_capacity += num(i.queue_capacity) || 0;
      if (num(i.state_bytes) !== null) c.state_bytes = (c.state_bytes || 0) + i.state_bytes;
      c.dead_letters += num(i.dead_letters) || 0;
      c.late += num(i.late) || 0;
    }
    for (const name of Object.keys(out)) {
      const c = out[name];
      const n = c.instances.filter(Boolean).length || 1;
      if (c.busy !== null) c.busy /= n;
      if (c.backpressured !== null) c.backpressured /= n;
      if (c.watermark_end && c.watermark_ms === null && c.instances.length) c.watermark = 'end';
    }
    return out;
  }

  function sourceLag(sources) {
    const lag = {};
    if (sources && Array.isArray(sources.sources)) {
      for (const src of sources.sources) lag[src.component] = src;
    }
    return lag;
  }

  // ---- the actor graph -----------------------------------------------------------------------

  const BOX_W = 212;
  const GAP_X = 84;
  const GAP_Y = 22;
  const PAD = 16;
  const CELL = 12;
  const CELL_GAP = 3;
  const CELLS_TOP = 78;
  const PER_ROW = Math.floor((BOX_W - 20 + CELL_GAP) / (CELL + CELL_GAP));

  function boxHeight(parallelism) {
    const rows = Math.max(1, Math.ceil(Math.max(1, parallelism) / PER_ROW));
    return CELLS_TOP + rows * (CELL + CELL_GAP) + 8;
  }

  /** Columns by longest path from a source; rows ordered by their inputs' rows. */
  function layout(detail) {
    const comps = detail.components || [];
    const byName = {};
    comps.forEach((c, i) => { byName[c.name] = {c: c, order: i, preds: [], succs: []}; });
    for (const ch of edgesOf(detail)) {
      if (!byName[ch.from] || !byName[ch.to] || ch.from === ch.to) continue;
      byName[ch.to].preds.push(ch.from);
      byName[ch.from].succs.push(ch.to);
    }
    const depth = {};
    const visiting = {};
    function depthOf(name) {
      if (depth[name] !== undefined) return depth[name];
      if (visiting[name]) return 0;  // a cycle: should not happen in a DAG
      visiting[name] = true;
      let d = 0;
      for (const p of byName[name].preds) d = Math.max(d, depthOf(p) + 1);
      visiting[name] = false;
      depth[name] = d;
      return d;
    }
    const columns = [];
    for (const c of comps) {
      const d = depthOf(c.name);
      (columns[d] = columns[d] || []).push(c.name);
    }
    // Order each column by the mean row of its inputs (barycentre), to keep edges short.
    const row = {};
    const pos = {};
    let width = 0;
    let height = 0;
    columns.forEach((col, d) => {
      if (!col) return;
      if (d > 0) {
        const key = (n) => {
          const ps = byName[n].preds.filter((p) => row[p] !== undefined);
          return ps.length ? ps.reduce((a, p) => a + row[p], 0) / ps.length : byName[n].order;
        };
        col.sort((a, b) => key(a) - key(b) || byName[a].order - byName[b].order);
      }
      let y = PAD;
      col.forEach((n, r) => {
        row[n] = r;
        const hgt = boxHeight(byName[n].c.parallelism || 1);
        pos[n] = {x: PAD + d * (BOX_W + GAP_X), y: y, w: BOX_W, h: hgt};
        y += hgt + GAP_Y;
      });
      height = Math.max(height, y - GAP_Y + PAD);
      width = Math.max(width, PAD + d * (BOX_W + GAP_X) + BOX_W + PAD);
    });
    return {pos: pos, width: Math.max(width, 200), height: Math.max(height, 80), byName: byName};
  }

  /** The channels, or edges made from the components' inputs when there are none. */
  function edgesOf(detail) {
    if (Array.isArray(detail.channels) && detail.channels.length) return detail.channels;
    const out = [];
    for (const c of detail.components || []) {
      for (const i of c.inputs || []) {
        out.push({from: i.component, port: i.port || 'main', to: c.name, partitioning: 'forward', fused: false});
      }
    }
    return out;
  }

  function graphKeyOf(detail) {
    return JSON.stringify([
      (detail.components || []).map((c) => [c.name, c.parallelism]),
      edgesOf(detail).map((e) => [e.from, e.to, e.port, e.fused, e.partitioning]),
    ]);
  }

  function edgeLabel(e) {
    const parts = [];
    if (e.port && e.port !== 'main') parts.push(e.port === 'dead_letter' ? 'dead letters' : e.port);
    if (e.fused || e.partitioning === 'fused') parts.push('fused');
    else if (e.partitioning === 'hash') parts.push('hash(' + (e.keys || []).join(', ') + ')');
    else if (e.partitioning && e.partitioning !== 'forward') parts.push(e.partitioning);
    return parts.join(' · ');
  }

  function drawGraph(detail) {
    const svg = $('#graph');
    clear(svg);
    const lay = layout(detail);
    svg.setAttribute('viewBox', '0 0 ' + lay.width + ' ' + lay.height);
    svg.dataset.width = lay.width;
    svg.dataset.height = lay.height;
    applyFit();
    svg.setAttribute('aria-label', 'Actor graph of ' + detail.name + ': ' +
                     (detail.components || []).length + ' components');

    const defs = s('defs', null);
    for (const [id, cls] of [['arrow', ''], ['arrow-bp-low', 'bp-low'], ['arrow-bp-high', 'bp-high'], ['arrow-fused', 'fused']]) {
      defs.appendChild(s('marker', {id: id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7,
                                    markerHeight: 7, markerUnits: 'userSpaceOnUse', orient: 'auto'},
                         s('path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead ' + cls})));
    }
    svg.appendChild(defs);

    const refs = {components: {}, edges: []};
    const edgeLayer = s('g', {class: 'edges'});
    const labelLayer = s('g', {class: 'edge-labels'});
    const boxLayer = s('g', {class: 'boxes'});
    svg.appendChild(edgeLayer);
    svg.appendChild(boxLayer);
    svg.appendChild(labelLayer);

    // Spread the ends of several edges over a box's side.
    const edges = edgesOf(detail).filter((e) => lay.pos[e.from] && lay.pos[e.to]);
    const outs = {};
    const ins = {};
    edges.forEach((e) => { (outs[e.from] = outs[e.from] || []).push(e); (ins[e.to] = ins[e.to] || []).push(e); });
    const sortByOther = (list, other) => list.sort((a, b) => lay.pos[a[other]].y - lay.pos[b[other]].y);
    Object.keys(outs).forEach((k) => sortByOther(outs[k], 'to'));
    Object.keys(ins).forEach((k) => sortByOther(ins[k], 'from'));
    const anchor = (p, list, e) => {
      const n = list.length;
      const i = list.indexOf(e);
      const top = p.y + 18;
      const span = Math.max(0, Math.min(p.h - 30, n * 14));
      return n === 1 ? p.y + Math.min(p.h / 2, 40) : top + (span * (i + 0.5)) / n;
    };

    for (const e of edges) {
      const a = lay.pos[e.from];
      const b = lay.pos[e.to];
      const x1 = a.x + a.w;
      const y1 = anchor(a, outs[e.from], e);
      const x2 = b.x - 2;
      const y2 = anchor(b, ins[e.to], e);
      let d;
      if (x2 > x1) {
        const dx = Math.max(30, (x2 - x1) / 2);
        d = 'M' + x1 + ',' + y1 + ' C' + (x1 + dx) + ',' + y1 + ' ' + (x2 - dx) + ',' + y2 + ' ' + x2 + ',' + y2;
      } else {  // a back edge: go round below
        const yb = Math.max(a.y + a.h, b.y + b.h) + 12;
        d = 'M' + x1 + ',' + y1 + ' C' + (x1 + 60) + ',' + yb + ' ' + (x2 - 60) + ',' + yb + ' ' + x2 + ',' + y2;
      }
      const fused = e.fused || e.partitioning === 'fused';
      const side = e.port === 'late' || e.port === 'dead_letter';
      const label = edgeLabel(e);
      const path = s('path', {
        d: d, class: 'edge' + (fused ? ' fused' : '') + (side ? ' side' : ''),
        'data-edge': e.from + '->' + e.to, 'data-port': e.port || 'main',
        'data-fused': fused ? 'true' : 'false',
        'marker-end': 'url(#' + (fused ? 'arrow-fused' : 'arrow') + ')',
        role: 'img',
        'aria-label': 'channel from ' + e.from + ' to ' + e.to + (label ? ', ' + label : ''),
      }, s('title', null, e.from + ' → ' + e.to + (label ? ' (' + label + ')' : '')));
      edgeLayer.appendChild(path);
      if (label) {
        const mx = (x1 + x2) / 2;
        const my = (y1 + y2) / 2 - 4;
        labelLayer.appendChild(s('text', {x: mx, y: my, class: 'edge-label', 'text-anchor': 'middle'}, label));
      }
      refs.edges.push({e: e, path: path, fused: fused});
    }

    for (const c of detail.components || []) {
      const p = lay.pos[c.name];
      if (!p) continue;
      const par = c.parallelism || 0;
      const range = (c.parallelism_min !== undefined && c.parallelism_max !== undefined &&
                     c.parallelism_min !== c.parallelism_max)
        ? ' (' + c.parallelism_min + '–' + c.parallelism_max + ')' : '';
      const g = s('g', {
        class: 'component kind-' + (c.kind || 'operator'), 'data-component': c.name,
        transform: 'translate(' + p.x + ',' + p.y + ')', role: 'group',
        'aria-label': 'component ' + c.name + ', ' + (c.kind || '') + ' ' + (c.type || '') +
                      ', parallelism ' + par,
      });
      g.appendChild(s('rect', {class: 'box', width: p.w, height: p.h, rx: 7, ry: 7}));
      g.appendChild(s('rect', {class: 'stripe', width: 5, height: p.h, rx: 2, ry: 2}));
      g.appendChild(s('text', {class: 'name', x: 14, y: 19, 'data-metric': 'name'}, clip(c.name, 24)));
      g.appendChild(s('title', null, c.name + ' (' + (c.kind || '') + ', ' + (c.type || '') + ')'));
      g.appendChild(s('text', {class: 'type', x: 14, y: 35},
                      s('tspan', {'data-metric': 'type'}, (c.type || '?') + ' · ' + (c.kind || '')),
                      s('tspan', {dx: 6, class: 'par', 'data-metric': 'parallelism'}, '×' + par + range)));
      const rin = s('tspan', {'data-metric': 'records_in_per_s'}, '–');
      const rout = s('tspan', {'data-metric': 'records_out_per_s'}, '–');
      g.appendChild(s('text', {class: 'rates', x: 14, y: 53}, 'in ', rin, '/s  out ', rout, '/s'));
      const wmLabel = s('tspan', null, 'wm lag ');
      const wm = s('tspan', {'data-metric': 'watermark_lag_s'}, '–');
      const extraLabel = s('tspan', {dx: 8}, '');
      const extra = s('tspan', {'data-metric': c.kind === 'source' ? 'lag' : 'busy'}, '');
      g.appendChild(s('text', {class: 'wm', x: 14, y: 69}, wmLabel, wm, extraLabel, extra));
      const cells = [];
      for (let i = 0; i < par; i++) {
        const cx = 14 + (i % PER_ROW) * (CELL + CELL_GAP);
        const cy = CELLS_TOP + Math.floor(i / PER_ROW) * (CELL + CELL_GAP);
        const title = s('title', null, c.name + '[' + i + ']');
        const rect = s('rect', {class: 'cell', x: cx, y: cy, width: CELL, height: CELL, rx: 2, ry: 2,
                                fill: NO_DATA, 'data-instance': i, role: 'img',
                                'aria-label': c.name + ' instance ' + i}, title);
        g.appendChild(rect);
        cells.push({rect: rect, title: title});
      }
      boxLayer.appendChild(g);
      refs.components[c.name] = {g: g, rin: rin, rout: rout, wm: wm, extra: extra,
                                 extraLabel: extraLabel, cells: cells, kind: c.kind};
    }
    return refs;
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + '…' : text;
  }

  function renderGraph(detail, byComponent, sources) {
    if (!detail) return;
    const key = graphKeyOf(detail);
    if (key !== state.graphKey) {
      state.graph = drawGraph(detail);
      state.graphKey = key;
    }
    const lag = sourceLag(sources);
    const refs = state.graph;
    for (const name of Object.keys(refs.components)) {
      const r = refs.components[name];
      const agg = byComponent[name];
      setText(r.rin, agg ? fmtRate(agg.records_in_per_s) : '–');
      setText(r.rout, agg ? fmtRate(agg.records_out_per_s) : '–');
      setText(r.wm, agg ? (agg.watermark === 'end' ? 'end' : fmtSeconds(agg.watermark_lag_s)) : '–');
      if (r.kind === 'source' && lag[name] && num(lag[name].lag) !== null) {
        setText(r.extraLabel, 'kafka lag ');
        setText(r.extra, fmtCount(lag[name].lag));
      } else if (agg && agg.busy !== null) {
        setText(r.extraLabel, 'busy ');
        setText(r.extra, fmtPct(agg.busy));
      }
      const bp = agg ? agg.backpressured : null;
      r.g.classList.toggle('backpressured', bp !== null && bp >= 0.05);
      r.cells.forEach((cell, i) => {
        const inst = agg ? agg.instances[i] : null;
        cell.rect.setAttribute('fill', instanceColour(inst));
        const text = inst
          ? name + '[' + i + ']: busy ' + fmtPct(inst.busy) + ', backpressured ' + fmtPct(inst.backpressured) +
            ', in ' + fmtRate(inst.records_in_per_s) + '/s, out ' + fmtRate(inst.records_out_per_s) +
            '/s, queue ' + fmtCount(inst.queue_used) + '/' + fmtCount(inst.queue_capacity) +
            ', credits ' + fmtCount(inst.credits_used) + '/' + fmtCount(inst.credit_capacity)
          : name + '[' + i + ']: no figures yet';
        setText(cell.title, text);
        cell.rect.setAttribute('aria-label', text);
      });
    }
    for (const ed of refs.edges) {
      const from = byComponent[ed.e.from];
      const rate = from ? from.records_out_per_s : 0;
      const bp = from ? from.backpressured : null;
      const width = ed.fused ? 1.5 : clamp(1.2 + Math.log10(1 + rate) * 0.9, 1.2, 7);
      ed.path.setAttribute('stroke-width', width.toFixed(1));
      const cls = ed.fused ? '' : edgeClass(bp);
      ed.path.setAttribute('class', 'edge' + (ed.fused ? ' fused' : '') +
                           (ed.e.port === 'late' || ed.e.port === 'dead_letter' ? ' side' : '') + cls);
      if (!ed.fused) {
        ed.path.setAttribute('marker-end', 'url(#arrow' + (cls ? '-' + cls.trim() : '') + ')');
      }
    }
  }

  function applyFit() {
    const svg = $('#graph');
    const w = Number(svg.dataset.width || 400);
    const hgt = Number(svg.dataset.height || 120);
    const box = $('#graph-scroll');
    if (state.fit) {
      const avail = Math.max(200, box.clientWidth - 4);
      const scale = Math.min(1, avail / w);
      svg.setAttribute('width', Math.round(w * scale));
      svg.setAttribute('height', Math.round(hgt * scale));
    } else {
      svg.setAttribute('width', w);
      svg.setAttribute('height', hgt);
    }
    const btn = $('#fit');
    btn.setAttribute('aria-pressed', state.fit ? 'true' : 'false');
    setText(btn, state.fit ? 'Actual size' : 'Fit to width');
  }

  // ---- components table ----------------------------------------------------------------------

  function renderComponents(detail, byComponent) {
    const body = $('#components tbody');
    if (!detail) return;
    const rows = [];
    for (const c of detail.components || []) {
      const a = byComponent[c.name];
      const range = c.parallelism_min !== c.parallelism_max && c.parallelism_max !== undefined
        ? ' (' + c.parallelism_min + '–' + c.parallelism_max + ')' : '';
      rows.push(h('tr', {'data-component': c.name, class: 'kind-' + (c.kind || 'operator')},
        h('th', {scope: 'row'}, c.name),
        h('td', null, (c.type || '') + ' ', h('span', {class: 'muted'}, c.kind || '')),
        h('td', {'data-metric': 'parallelism'}, String(c.parallelism) + range),
        h('td', {class: 'num', 'data-metric': 'records_in_per_s'}, a ? fmtRate(a.records_in_per_s) : '–'),
        h('td', {class: 'num', 'data-metric': 'records_out_per_s'}, a ? fmtRate(a.records_out_per_s) : '–'),
        h('td', {class: 'num', 'data-metric': 'busy'}, bar(a ? a.busy : null, 'busy')),
        h('td', {class: 'num', 'data-metric': 'backpressured'}, bar(a ? a.backpressured : null, 'bp')),
        h('td', {'data-metric': 'watermark'}, a ? fmtWatermark(a.watermark, a.watermark_ms) : '–'),
        h('td', {class: 'num', 'data-metric': 'watermark_lag_s'}, a ? fmtSeconds(a.watermark_lag_s) : '–'),
        h('td', {class: 'num', 'data-metric': 'queue'}, a ? a.queue_used + '/' + a.queue_capacity : '–'),
        h('td', {class: 'num', 'data-metric': 'state_bytes'}, a ? fmtBytes(a.state_bytes) : '–'),
        h('td', {class: 'num', 'data-metric': 'dead_letters'}, a ? fmtCount(a.dead_letters) : '–'),
        h('td', {class: 'num', 'data-metric': 'late'}, a ? fmtCount(a.late) : '–')));
    }
    clear(body);
    rows.forEach((r) => body.appendChild(r));
  }

  function bar(v, cls) {
    const f = num(v);
    if (f === null) return '–';
    return h('span', {class: 'bar ' + cls, role: 'img', 'aria-label': fmtPct(f)},
             h('span', {class: 'fill', style: 'width:' + Math.round(clamp(f, 0, 1) * 100) + '%'}),
             h('span', {class: 'bar-text'}, fmtPct(f)));
  }

  // ---- sources and Kafka lag -----------------------------------------------------------------

  function renderLag(data) {
    const root = $('#lag');
    if (!data) return;
    const splits = Array.isArray(data.splits) ? data.splits : [];
    const sources = Array.isArray(data.sources) ? data.sources : [];
    clear(root);
    if (sources.length) {
      root.appendChild(h('table', {class: 'compact', 'aria-label': 'Sources'},
        h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'source'), h('th', {scope: 'col', class: 'num'}, 'out / s'),
          h('th', {scope: 'col', class: 'num'}, 'lag'), h('th', {scope: 'col', class: 'num'}, 'lost'),
          h('th', {scope: 'col', class: 'num'}, 'progress'))),
        h('tbody', null, sources.map((src) => h('tr', {'data-source': src.component},
          h('th', {scope: 'row'}, src.component),
          h('td', {class: 'num', 'data-metric': 'records_out_per_s'}, fmtRate(src.records_out_per_s)),
          h('td', {class: 'num', 'data-metric': 'lag'}, fmtCount(src.lag)),
          h('td', {class: 'num', 'data-metric': 'lost'}, fmtCount(src.lost)),
          h('td', {class: 'num', 'data-metric': 'progress'},
            src.progress && num(src.progress.total)
              ? Math.round((100 * src.progress.done) / src.progress.total) + ' %' : '–'))))));
    }
    if (!splits.length) {
      root.appendChild(h('p', {class: 'empty'}, sources.length ? 'No partitions reported yet.' : 'No source partitions.'));
      return;
    }
    const maxLag = Math.max(1, ...splits.map((x) => num(x.lag) || 0));
    root.appendChild(h('table', {class: 'compact', 'aria-label': 'Lag per partition'},
      h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'partition'), h('th', {scope: 'col', class: 'num'}, 'instance'),
        h('th', {scope: 'col', class: 'num'}, 'position'), h('th', {scope: 'col', class: 'num'}, 'end'),
        h('th', {scope: 'col', class: 'num'}, 'lag'), h('th', {scope: 'col'}, 'watermark'))),
      h('tbody', null, splits.map((x) => h('tr', {'data-split': x.split, 'data-component': x.component},
        h('th', {scope: 'row'}, x.split, x.idle ? h('span', {class: 'tag'}, 'idle') : null,
          x.paused ? h('span', {class: 'tag warn'}, 'paused') : null),
        h('td', {class: 'num'}, fmtCount(x.instance)),
        h('td', {class: 'num', 'data-metric': 'position'}, fmtCount(x.position)),
        h('td', {class: 'num', 'data-metric': 'end'}, fmtCount(x.end)),
        h('td', {class: 'num lagcell', 'data-metric': 'lag'},
          h('span', {class: 'lagbar', style: 'width:' + Math.round(((num(x.lag) || 0) / maxLag) * 100) + '%'}),
          h('span', {class: 'bar-text'}, fmtCount(x.lag))),
        h('td', {'data-metric': 'watermark'}, fmtWatermark(x.watermark, x.watermark_ms)))))));
  }

  // ---- throughput chart ----------------------------------------------------------------------

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /** Fetches the server's samples of the last minutes once per selected pipeline, off the
   *  poll loop (the answer is large), and puts the points polled meanwhile after them. */
  function loadHistory(name) {
    if (state.historyLoad !== null || Date.now() < state.historyRetryAt) return;
    state.historyLoad = 'loading';
    getJSON(pipelinePath(name) + '/history', HISTORY_TIMEOUT_MS).then((h) => {
      if (state.selected !== name || state.historyLoad !== 'loading') return;
      const fetched = (Array.isArray(h.points) ? h.points : []).filter((p) => num(p.at_ms) !== null)
        .map((p) => ({at_ms: p.at_ms, records_in_per_s: p.records_in_per_s, records_out_per_s: p.records_out_per_s}));
      const lastAt = fetched.length ? fetched[fetched.length - 1].at_ms : -Infinity;
      state.history.points = fetched.concat(state.history.points.filter((p) => p.at_ms > lastAt));
      state.historyLoad = 'done';
      renderChart(state.history);
    }, () => {
      if (state.selected !== name || state.historyLoad !== 'loading') return;
      state.historyLoad = null;
      state.historyRetryAt = Date.now() + HISTORY_RETRY_MS;
    });
  }

  /** Adds this poll's rates (of the server's sample at /instances' `at_ms`) to the chart. */
  function extendHistory(name) {
    const p = state.pipelines.find((x) => x.name === name);
    const at = state.instances ? num(state.instances.at_ms) : null;
    if (!p || at === null || !state.history) return;
    const points = state.history.points;
    if (points.length && points[points.length - 1].at_ms >= at) return;
    points.push({at_ms: at, records_in_per_s: p.records_in_per_s, records_out_per_s: p.records_out_per_s});
    while (points.length && points[0].at_ms < at - HISTORY_KEEP_MS) points.shift();
  }

  function renderChart(history) {
    const svg = $('#chart');
    const W = Math.max(320, Math.round(svg.parentNode.clientWidth - 32) || 600);
    const H = 220;
    const M = {l: 64, r: 18, t: 14, b: 40};
    clear(svg);
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    const points = history && Array.isArray(history.points) ? history.points.filter((p) => num(p.at_ms) !== null) : [];
    const pw = W - M.l - M.r;
    const ph = H - M.t - M.b;
    const now = points.length ? points[points.length - 1].at_ms : Date.now();
    const spanS = clamp(points.length ? Math.ceil((now - points[0].at_ms) / 60000) * 60 : 60, 60, 300);
    let max = 0;
    for (const p of points) max = Math.max(max, num(p.records_in_per_s) || 0, num(p.records_out_per_s) || 0);
    max = niceMax(max * 1.05);
    const x = (ms) => M.l + pw * (1 - (now - ms) / 1000 / spanS);
    const y = (v) => M.t + ph * (1 - v / max);

    const axes = s('g', {class: 'axes'});
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      axes.appendChild(s('line', {class: 'grid', x1: M.l, x2: W - M.r, y1: y(v), y2: y(v)}));
      axes.appendChild(s('text', {class: 'tick', x: M.l - 6, y: y(v) + 4, 'text-anchor': 'end'}, fmtRate(v)));
    }
    const step = spanS <= 60 ? 10 : spanS <= 180 ? 30 : 60;
    for (let t = 0; t <= spanS; t += step) {
      const xx = M.l + pw * (1 - t / spanS);
      axes.appendChild(s('line', {class: 'tickmark', x1: xx, x2: xx, y1: M.t + ph, y2: M.t + ph + 4}));
      axes.appendChild(s('text', {class: 'tick', x: xx, y: M.t + ph + 16, 'text-anchor': 'middle'},
                         t === 0 ? 'now' : '−' + (t >= 60 && t % 60 === 0 ? t / 60 + ' min' : t + ' s')));
    }
    axes.appendChild(s('line', {class: 'axis', x1: M.l, x2: M.l, y1: M.t, y2: M.t + ph}));
    axes.appendChild(s('line', {class: 'axis', x1: M.l, x2: W - M.r, y1: M.t + ph, y2: M.t + ph}));
    axes.appendChild(s('text', {class: 'axis-title', x: M.l + pw / 2, y: H - 4, 'text-anchor': 'middle'},
                       'time (the last ' + (spanS >= 120 ? spanS / 60 + ' minutes' : spanS + ' seconds') + ')'));
    axes.appendChild(s('text', {class: 'axis-title', x: 12, y: M.t + ph / 2, 'text-anchor': 'middle',
                                transform: 'rotate(-90 12 ' + (M.t + ph / 2) + ')'}, 'records / s'));
    svg.appendChild(axes);

    if (!points.length) {
      svg.appendChild(s('text', {class: 'empty-chart', x: M.l + pw / 2, y: M.t + ph / 2, 'text-anchor': 'middle'},
                        'waiting for samples…'));
      return;
    }
    const labels = [];
    for (const [field, cls] of [['records_in_per_s', 'in'], ['records_out_per_s', 'out']]) {
      // A null sample breaks the line.
      let seg = [];
      const segs = [];
      for (const p of points) {
        const v = num(p[field]);
        if (v === null || now - p.at_ms > spanS * 1000) { if (seg.length) segs.push(seg); seg = []; continue; }
        seg.push(x(p.at_ms).toFixed(1) + ',' + y(v).toFixed(1));
      }
      if (seg.length) segs.push(seg);
      for (const sg of segs) {
        svg.appendChild(s('polyline', {class: 'series ' + cls, points: sg.join(' '), 'data-series': field}));
      }
      const last = points[points.length - 1];
      labels.push(field === 'records_in_per_s' ? 'in ' : 'out ');
      labels.push(fmtRate(last[field]) + ' records per second now; ');
      if (num(last[field]) !== null) {
        svg.appendChild(s('text', {class: 'last ' + cls, x: W - M.r - 2, y: y(last[field]) - 5, 'text-anchor': 'end',
                                   'data-metric': 'chart_' + field}, fmtRate(last[field]) + '/s'));
      }
    }
    svg.setAttribute('aria-label', 'Records per second over the last ' + fmtSeconds(spanS) + ': ' + labels.join('').replace(/; $/, ''));
  }

  // ---- dead letters, late, checkpoints, restarts, scaling ------------------------------------

  function byComponentList(map) {
    const names = Object.keys(map || {}).sort((a, b) => map[b] - map[a]);
    if (!names.length) return null;
    return h('ul', {class: 'chips'}, names.map((n) =>
      h('li', {'data-component': n}, h('span', {class: 'chip-name'}, n), h('span', {class: 'chip-count'}, fmtCount(map[n])))));
  }

  function kv(pairs, inline) {
    return h('dl', {class: inline ? 'kv inline' : 'kv'}, pairs.map(([k, v, metric]) =>
      [h('dt', null, k), h('dd', {'data-metric': metric || null}, v)]));
  }

  function renderDeadLetters(d) {
    setText($('[data-metric="dead_letters_total"]'), fmtCount(d.total));
    const root = $('#dead-letters');
    clear(root);
    root.appendChild(kv([['total', fmtCount(d.total), 'total'], ['logged', fmtCount(d.logged), 'logged'],
                         ['dropped', fmtCount(d.dropped), 'dropped']], true));
    append(root, byComponentList(d.by_component));
    const latest = Array.isArray(d.latest) ? d.latest.slice().reverse() : [];
    if (!latest.length) { root.appendChild(h('p', {class: 'empty'}, 'None.')); return; }
    root.appendChild(h('div', {class: 'scroll-list'}, h('table', {class: 'compact letters', 'aria-label': 'Latest dead letters, newest first'},
      h('thead', null, h('tr', null, h('th', {scope: 'col'}, 'at'), h('th', {scope: 'col'}, 'component'),
                         h('th', {scope: 'col'}, 'reason'), h('th', {scope: 'col'}, 'record'))),
      h('tbody', null, latest.map((l) => {
        const rec = l.record || {};
        const raw = typeof rec.record === 'string' ? rec.record : JSON.stringify(rec.record !== undefined ? rec.record : rec);
        return h('tr', {'data-component': l.component},
          h('td', {class: 'time'}, fmtClock(l.at_ms)), h('td', null, l.component),
          h('td', {class: 'reason', title: String(rec.reason || '')}, String(rec.reason || '')),
          h('td', {class: 'record', title: raw}, clip(raw || '', 400)));
      })))));
  }

  function renderLate(d) {
    setText($('[data-metric="late_total"]'), fmtCount(d.total));
    const root = $('#late');
    clear(root);
    root.appendChild(kv([['total', fmtCount(d.total), 'total']], true));
    append(root, byComponentList(d.by_component) || h('p', {class: 'empty'}, 'None.'));
  }

  function renderCheckpoints(d) {
    setText($('[data-metric="checkpoints_completed"]'), fmtCount(d.completed));
    const root = $('#checkpoints');
    clear(root);
    const inProgress = d.in_progress === null || d.in_progress === undefined ? 'none'
      : typeof d.in_progress === 'object' ? JSON.stringify(d.in_progress) : String(d.in_progress);
    root.appendChild(kv([
      ['completed', fmtCount(d.completed), 'completed'], ['abandoned', fmtCount(d.abandoned), 'abandoned'],
      ['in progress', inProgress, 'in_progress'], ['last', d.last_id === null || d.last_id === undefined ? '–' : '#' + d.last_id, 'last_id'],
      ['last at', fmtClock(d.last_at_ms), 'last_at'], ['last size', fmtBytes(d.last_bytes), 'last_bytes'],
      ['last took', fmtSeconds(d.last_duration_s), 'last_duration_s'], ['longest', fmtSeconds(d.max_duration_s), 'max_duration_s'],
      ['restored from', d.restored_from === null || d.restored_from === undefined ? '–' : String(d.restored_from), 'restored_from'],
    ]));
  }

  function renderRestarts(d) {
    setText($('[data-metric="restarts_count"]'), fmtCount(d.count));
    const root = $('#restarts');
    clear(root);
    root.appendChild(kv([['restarts', fmtCount(d.count), 'count'], ['quarantined', fmtCount(d.quarantined), 'quarantined']], true));
    const log = Array.isArray(d.log) ? d.log.slice().reverse() : [];
    if (!log.length) { root.appendChild(h('p', {class: 'empty'}, 'None.')); return; }
    root.appendChild(h('ol', {class: 'log', reversed: true, start: log.length, 'aria-label': 'Restarts, newest first'},
                       log.slice(0, 30).map((l) => h('li', null, String(l)))));
  }

  function renderScaling(d) {
    const events = Array.isArray(d.events) ? d.events : [];
    setText($('[data-metric="scaling_events"]'), fmtCount(events.length));
    const root = $('#scaling');
    clear(root);
    root.appendChild(kv([['policy', d.policy === null || d.policy === undefined ? 'none (fixed parallelism)' : String(d.policy), 'policy'],
                         ['decisions', fmtCount(events.length), 'decisions']]));
    if (!events.length) { root.appendChild(h('p', {class: 'empty'}, 'No decisions.')); return; }
    root.appendChild(h('div', {class: 'table-scroll'}, h('table', {class: 'compact scaling', 'aria-label': 'Scaling decisions, newest first'},
      h('thead', null, h('tr', null, h('th', {scope: 'col', class: 'num'}, 'at'), h('th', {scope: 'col'}, 'component'),
        h('th', {scope: 'col'}, 'change'), h('th', {scope: 'col'}, 'reason'), h('th', {scope: 'col'}, 'outcome'))),
      h('tbody', null, events.slice().reverse().slice(0, 30).map((ev) => h('tr', {'data-component': ev.component},
        h('td', {class: 'num'}, fmtSeconds(ev.at_s)), h('td', null, ev.component),
        h('td', {class: 'change'}, ev.from + ' → ' + ev.to),
        h('td', {class: 'reason', title: ev.inputs || ''}, String(ev.reason || '')),
        h('td', {class: 'outcome'}, ev.done ? String(ev.outcome || 'done') : h('span', {class: 'tag warn'}, 'in progress'))))))));
  }

  // ---- activity log --------------------------------------------------------------------------

  /** Adds a line to the activity log, newest first. A line with the same merge key as the
   *  newest one replaces it (one line for a run of checkpoints, not one a second). */
  function logEvent(kind, text, mergeKey) {
    const ol = $('#events');
    const top = ol.firstChild;
    if (mergeKey && top && top.dataset.merge === mergeKey) {
      const n = Number(top.dataset.repeats || 1) + 1;
      top.dataset.repeats = n;
      setText(top.querySelector('.time'), fmtClock(Date.now()).slice(0, 8));
      setText(top.querySelector('.text'), text + ' (' + n + ' in a row)');
      return;
    }
    const li = h('li', {'data-kind': kind, 'data-merge': mergeKey || null},
                 h('span', {class: 'time'}, fmtClock(Date.now()).slice(0, 8)),
                 h('span', {class: 'kind'}, kind), h('span', {class: 'text'}, text));
    ol.insertBefore(li, top);
    while (ol.children.length > MAX_EVENTS) ol.removeChild(ol.lastChild);
  }

  /** Reports what changed since the last poll (nothing on the first one: it sets the baseline). */
  function noteActivity(name, get) {
    const prev = state.seen;
    const cur = {
      checkpoints: get['/checkpoints'] ? get['/checkpoints'].completed : prev && prev.checkpoints,
      abandoned: get['/checkpoints'] ? get['/checkpoints'].abandoned : prev && prev.abandoned,
      restarts: get['/restarts'] && Array.isArray(get['/restarts'].log) ? get['/restarts'].log.length : prev && prev.restarts,
      scaling: get['/scaling'] && Array.isArray(get['/scaling'].events) ? get['/scaling'].events.map((e) => !!e.done) : prev && prev.scaling,
      deadAt: prev ? prev.deadAt : 0,
      late: get['/late'] ? Object.assign({}, get['/late'].by_component) : prev && prev.late,
    };
    const latest = get['/dead-letters'] && Array.isArray(get['/dead-letters'].latest) ? get['/dead-letters'].latest : [];
    const newestAt = latest.reduce((m, l) => Math.max(m, num(l.at_ms) || 0), cur.deadAt || 0);
    if (!prev) {
      // What happened before the page opened (or before this pipeline was selected).
      const rs = get['/restarts'];
      if (rs && Array.isArray(rs.log)) rs.log.slice(-10).forEach((l) => logEvent('restart', name + ': ' + l + ' (earlier)'));
      const sc = get['/scaling'];
      if (sc && Array.isArray(sc.events)) {
        sc.events.slice(-10).forEach((ev) => logEvent('scaling', name + ': at ' + fmtSeconds(ev.at_s) + ' ' + ev.component +
                                                      ' ' + ev.from + ' → ' + ev.to + (ev.outcome ? ': ' + ev.outcome : '')));
      }
    } else {
      const cp = get['/checkpoints'];
      if (cp && num(prev.checkpoints) !== null && cp.completed > prev.checkpoints) {
        logEvent('checkpoint', name + ': checkpoint #' + cp.last_id + ' completed (' + fmtBytes(cp.last_bytes) +
                 ', ' + fmtSeconds(cp.last_duration_s) + ')', 'checkpoint ' + name);
      }
      if (cp && num(prev.abandoned) !== null && cp.abandoned > prev.abandoned) {
        logEvent('checkpoint', name + ': ' + (cp.abandoned - prev.abandoned) + ' checkpoint(s) abandoned');
      }
      const rs = get['/restarts'];
      if (rs && Array.isArray(rs.log) && num(prev.restarts) !== null) {
        rs.log.slice(prev.restarts).forEach((l) => logEvent('restart', name + ': ' + l));
      }
      const sc = get['/scaling'];
      if (sc && Array.isArray(sc.events) && prev.scaling) {
        sc.events.forEach((ev, i) => {
          if (i >= prev.scaling.length) {
            logEvent('scaling', name + ': ' + ev.component + ' ' + ev.from + ' → ' + ev.to + (ev.reason ? ': ' + ev.reason : ''));
          }
          if (ev.done && (i >= prev.scaling.length || !prev.scaling[i])) {
            logEvent('scaling', name + ': ' + ev.component + ' ' + (ev.outcome || 'rescaled'));
          }
        });
      }
      latest.filter((l) => (num(l.at_ms) || 0) > (prev.deadAt || 0)).slice(-5).forEach((l) => {
        logEvent('dead letter', name + ': ' + l.component + ': ' + String((l.record && l.record.reason) || ''));
      });
      if (cur.late && prev.late) {
        const grew = Object.keys(cur.late).filter((k) => cur.late[k] > (prev.late[k] || 0))
          .map((k) => k + ' +' + fmtCount(cur.late[k] - (prev.late[k] || 0)) + ' (' + fmtCount(cur.late[k]) + ' in all)');
        if (grew.length) logEvent('late', name + ': late records: ' + grew.join(', '), 'late ' + name);
      }
    }
    cur.deadAt = newestAt;
    state.seen = cur;
  }

  // ---- start ---------------------------------------------------------------------------------

  function start() {
    $('#fit').addEventListener('click', () => {
      state.fit = !state.fit;
      applyFit();
    });
    window.addEventListener('resize', () => {
      applyFit();
      renderChart(state.history);
    });
    window.addEventListener('hashchange', () => {
      const wanted = wantedFromHash();
      if (wanted && state.pipelines.some((p) => p.name === wanted)) selectPipeline(wanted);
    });
    setInterval(updateClock, 1000);
    renderChart(null);
    tick();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
