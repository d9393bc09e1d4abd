'use strict';
// The live dashboard of `pel run --http` in a real headless Chromium, through puppeteer-core.
//
//   node dashboard.test.js --pel PEL --source-dir REPO --out DIR [--scenario trading|large]
//                          [--chromium PATH] [--firefox PATH] [--screenshot FILE]
//
// trading: the main job (feed, live, show on the embedded Kafka broker). Every pipeline's graph
//   shows every component the API lists, rate figures move, the panels are there, the lag
//   panel has a row per Kafka partition, and nothing is logged to the console or fails to load.
// large: a generated 50-component generator pipeline behind a bearer token (the page is opened
//   as /?token=T). All 50 boxes are drawn without overlap, dead letters and late records reach
//   their panels, and the page shows "disconnected" when the server stops and resumes when it
//   comes back on the same port.
// firefox: the same 50-component pipeline in Firefox (WebDriver BiDi): every component drawn,
//   dead letters shown, nothing logged to the console. Skipped when Firefox is not installed.
//
// Exit codes: 0 passed, 1 failed, 77 skipped (no browser or no puppeteer-core).

const {spawn} = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const SKIP = 77;
const TOTAL_DEADLINE_MS = 240000;

// ---- arguments and prerequisites ------------------------------------------------------------

function parseArgs(argv) {
  const out = {scenario: 'trading'};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m || i + 1 >= argv.length) throw new Error('bad argument: ' + argv[i]);
    out[m[1]] = argv[++i];
  }
  for (const need of ['pel', 'source-dir', 'out']) {
    if (!out[need]) throw new Error('missing --' + need);
  }
  return out;
}

function findBrowser(args) {
  const candidates = args.scenario === 'firefox'
    ? [args.firefox, process.env.PEL_FIREFOX, '/usr/bin/firefox-esr', '/usr/bin/firefox']
    : [args.chromium, process.env.PEL_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser',
       '/usr/bin/google-chrome'];
  return candidates.filter(Boolean).find((p) => fs.existsSync(p)) || null;
}

function skip(why) {
  console.log('SKIP: ' + why);
  process.exit(SKIP);
}

// ---- small helpers --------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value; throws what (with the last value) at the deadline. */
async function until(what, fn, timeoutMs = 20000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error('timed out after ' + timeoutMs + ' ms waiting for ' + what +
                      (last !== undefined ? ' (last: ' + (last instanceof Error ? last.message : JSON.stringify(last)) + ')' : ''));
    }
    await sleep(everyMs);
  }
}

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok: ' + what);
}

/** The API's token, when the scenario runs the server with one. */
let apiToken = null;

async function getJSON(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 3000);
  try {
    const headers = apiToken ? {Authorization: 'Bearer ' + apiToken} : {};
    const res = await fetch(url, {signal: ctl.signal, headers: headers});
    if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
    return await res.json();
  } finally {
    clearTimeout(timer);
  }
}

function withTimeout(promise, ms) {
  return Promise.race([promise, sleep(ms).then(() => { throw new Error('timed out'); })]);
}

// ---- the pel process ------------------------------------------------------------------------

const children = new Set();

/** Starts `pel run --http HOST:PORT ...` and resolves with {proc, port} once it logs its address. */
function startPel(pel, cwd, httpPort, runArgs, logPath) {
  const args = ['run', '--duration', '300s', '--http', '127.0.0.1:' + httpPort].concat(runArgs);
  const log = fs.createWriteStream(logPath, {flags: 'a'});
  log.write('$ pel ' + args.join(' ') + '\n');
  const env = Object.assign({}, process.env);
  if (apiToken) env.PEL_HTTP_TOKEN = apiToken;
  const proc = spawn(pel, args, {cwd: cwd, env: env, stdio: ['ignore', 'pipe', 'pipe']});
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('pel did not log its HTTP address within 60 s; see ' + logPath)), 60000);
    const onData = (chunk) => {
      log.write(chunk);
      if (text === null) return;
      text += chunk.toString('utf8');
      const m = /HTTP API and dashboard at http:\/\/([^\s/]+):(\d+)\//.exec(text);
      if (m) {
        text = null;
        clearTimeout(timer);
        resolve({proc: proc, port: Number(m[2])});
      } else if (text.length > 1 << 20) {
        text = text.slice(-4096);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (text !== null) reject(new Error('pel exited (' + (signal || code) + ') before serving; see ' + logPath));
    });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** SIGINT, then SIGKILL if it has not exited within 5 s. */
async function stopPel(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGINT');
  try {
    await withTimeout(exited, 5000);
  } catch (e) {
    proc.kill('SIGKILL');
    await withTimeout(exited, 5000).catch(() => {});
  }
}

function killAllNow() {
  for (const p of children) {
    try { p.kill('SIGKILL'); } catch (e) { /* gone */ }
  }
}

// ---- the browser ----------------------------------------------------------------------------

let browser = null;

async function openPage(puppeteer, executable, firefox) {
  browser = await puppeteer.launch(firefox ? {
    browser: 'firefox',
    executablePath: executable,
    headless: true,
    timeout: 60000,
  } : {
    executablePath: executable,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
           '--disable-extensions', '--disable-background-networking'],
    pipe: true,  // Chromium exits when this process does, however it ends
    timeout: 60000,
  });
  const page = await browser.newPage();
  await page.setViewport({width: 1440, height: 1000});
  const problems = {list: [], watching: true};
  const note = (text) => { if (problems.watching) problems.list.push(text); };
  page.on('console', (m) => {
    const type = m.type();
    if (type === 'error' || type === 'warn' || type === 'warning' || type === 'assert') note('console ' + type + ': ' + m.text());
  });
  page.on('pageerror', (e) => note('page error: ' + e.message));
  page.on('requestfailed', (r) => note('request failed: ' + r.url() + ' ' + (r.failure() ? r.failure().errorText : '')));
  page.on('response', (r) => { if (r.status() >= 400) note('HTTP ' + r.status() + ': ' + r.url()); });
  return {page: page, problems: problems};
}

async function closeBrowser() {
  if (!browser) return;
  const b = browser;
  browser = null;
  const proc = b.process();
  try {
    await withTimeout(b.close(), 5000);
  } catch (e) {
    if (proc) proc.kill('SIGKILL');
  }
}

// ---- page queries ---------------------------------------------------------------------------

const graphNames = (page) => page.$$eval('#graph g[data-component]', (gs) => gs.map((g) => g.getAttribute('data-component')));

const text = (page, sel) => page.$eval(sel, (el) => el.textContent.trim());

const count = (page, sel) => page.$$eval(sel, (els) => els.length);

const figure = (t) => {
  const m = /^([\d,.]+)([kM]?)/.exec(t || '');
  if (!m) return null;
  return Number(m[1].replace(/,/g, '')) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1);
};

const sameSet = (a, b) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

async function selectPipeline(page, name) {
  await page.click('button[data-pipeline="' + name + '"]');
  await until('the summary to show pipeline ' + name,
              async () => (await text(page, '#summary [data-metric="name"]')) === name, 10000);
}

/** The page's graph shows exactly the components (and fused channels) the API lists. */
async function checkGraph(page, base, name) {
  const detail = await getJSON(base + '/api/v1/pipelines/' + encodeURIComponent(name));
  const want = detail.components.map((c) => c.name);
  await until('the graph of ' + name + ' to show ' + want.length + ' components',
              async () => sameSet(await graphNames(page), want), 15000);
  check(true, name + ': the graph shows every component (' + want.join(', ') + ')');
  for (const c of detail.components) {
    const box = await page.$eval('#graph g[data-component="' + c.name + '"]', (g) => ({
      text: g.textContent,
      par: g.querySelector('[data-metric="parallelism"]').textContent,
      cells: g.querySelectorAll('rect.cell').length,
      label: g.getAttribute('aria-label'),
    }));
    if (!box.text.includes(c.name.slice(0, 20)) || !box.par.startsWith('×' + c.parallelism) ||
        box.cells !== c.parallelism || !box.label.includes(c.name)) {
      throw new Error(name + ': component ' + c.name + ' is drawn wrong: ' + JSON.stringify(box));
    }
  }
  check(true, name + ': each box names its component, its parallelism and one cell per instance');
  const fused = detail.channels.filter((ch) => ch.fused).length;
  const drawn = await count(page, '#graph path.edge');
  const drawnFused = await count(page, '#graph path.edge[data-fused="true"]');
  check(drawn === detail.channels.length && drawnFused === fused,
        name + ': ' + drawn + ' channels drawn (' + drawnFused + ' fused) of ' + detail.channels.length +
        ' (' + fused + ' fused)');
  return detail;
}

// ---- scenarios ------------------------------------------------------------------------------

async function trading(ctx) {
  const {page, problems} = ctx.session;
  const base = ctx.base;
  const list = await until('the three pipelines to be running with records flowing', async () => {
    const l = (await getJSON(base + '/api/v1/pipelines')).pipelines;
    return l.length === 3 && l.every((p) => p.state === 'running') &&
           l.every((p) => p.records_in > 0) ? l : null;
  }, 90000, 500);

  await page.goto(base + '/', {waitUntil: 'load', timeout: 30000});
  await until('the page to say it is connected',
              () => page.$eval('#connection', (e) => e.dataset.state === 'connected'), 15000);
  const buttons = await page.$$eval('#pipelines button[data-pipeline]', (bs) => bs.map((b) => b.dataset.pipeline));
  check(sameSet(buttons, list.map((p) => p.name)), 'the selector lists every pipeline: ' + buttons.join(', '));

  for (const p of list) {
    await selectPipeline(page, p.name);
    await checkGraph(page, base, p.name);
  }

  const live = list.find((p) => p.name.startsWith('live')) || list[0];
  await selectPipeline(page, live.name);
  // The rates of the summary and of the graph's boxes, as the page shows them.
  const rates = () => page.$$eval('#summary [data-metric$="_per_s"], #graph [data-metric$="_per_s"]',
                                  (els) => els.map((e) => e.textContent).join(' '));
  await checkGraph(page, base, live.name);
  const graphRates = await until('the graph to show input rates', async () => {
    const r = await page.$$eval('#graph [data-metric="records_in_per_s"]', (els) => els.map((e) => e.textContent));
    return r.some((t) => figure(t) > 0) && figure(await text(page, '#summary [data-metric="records_in_per_s"]')) > 0 ? r : null;
  }, 15000);
  check(true, live.name + ': the graph shows non-zero input rates: ' + graphRates.join(' '));
  const first = await rates();
  const firstTotal = figure(await text(page, '#summary [data-metric="records_in"]'));
  const second = await until('a rate figure to change from ' + first, async () => {
    const t = await rates();
    return t !== first ? t : null;
  }, 20000, 500);
  check(true, live.name + ': the rates went from [' + first + '] to [' + second + ']');
  const secondTotal = await until('records in to grow from ' + firstTotal, async () => {
    const n = figure(await text(page, '#summary [data-metric="records_in"]'));
    return n > firstTotal ? n : null;
  }, 20000, 500);
  check(true, live.name + ': records in grew from ' + firstTotal + ' to ' + secondTotal);

  for (const panel of ['dead-letters', 'late', 'lag', 'checkpoints', 'restarts', 'scaling', 'throughput', 'events']) {
    const visible = await page.$eval('[data-panel="' + panel + '"]', (el) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && !!el.querySelector('h2');
    });
    check(visible, 'the ' + panel + ' panel is shown');
  }
  const sources = await getJSON(base + '/api/v1/pipelines/' + encodeURIComponent(live.name) + '/sources');
  const splits = sources.splits.map((s) => s.split);
  await until('a lag row per partition (' + splits.join(', ') + ')', async () =>
    sameSet(await page.$$eval('#lag tr[data-split]', (rs) => rs.map((r) => r.dataset.split)), splits), 10000);
  check(splits.length === 4, 'the lag panel shows the 4 partitions of ticks, each with its lag');
  await until('checkpoints to be counted in their panel',
              async () => figure(await text(page, '[data-metric="checkpoints_completed"]')) > 0, 15000);
  check(true, 'the checkpoints panel counts completed checkpoints');
  const points = await until('the throughput chart to draw a line', async () => {
    const n = await page.$$eval('#chart polyline[data-series="records_in_per_s"]',
                                (ps) => ps.reduce((a, p) => a + p.getAttribute('points').trim().split(/\s+/).length, 0));
    return n >= 3 ? n : null;
  }, 15000);
  check(points >= 3, 'the throughput chart has ' + points + ' points');
  const axes = await page.$$eval('#chart .axis-title', (ts) => ts.map((t) => t.textContent));
  check(axes.some((t) => t.includes('records')) && axes.some((t) => t.includes('time')), 'the chart axes are labelled');

  check(problems.list.length === 0, 'no console errors or warnings and no failed requests' +
        (problems.list.length ? ': ' + problems.list.join(' | ') : ''));
}

/** A 50-component pipeline: a sensor generator, a filter that dead-letters bad readings, six
 *  layers of six maps and filters at parallelism 1 to 4, a keyed window that routes late
 *  records, a union, and discard sinks. */
function largePipelineYaml() {
  const lines = [
    '# Generated by tests/browser/dashboard.test.js: 50 components for the dashboard test.',
    'pipeline:', '  name: wide', '  parallelism: 2', '',
    'sources:', '  readings:', '    type: generator', '    profile: sensors', '    devices: 50',
    '    rate: 300', '    bad_records: 0.05', '    out_of_order: 0.1', '    max_delay: 800ms',
    '    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 10ms}', '',
    'operators:', '  valid:', '    type: filter', '    input: readings', '    where: temperature > -100',
  ];
  let names = 2;
  const layers = 6;
  const width = 6;
  for (let l = 1; l <= layers; l++) {
    for (let j = 0; j < width; j++) {
      const input = l === 1 ? 'valid' : 'l' + (l - 1) + '_' + ((j + (l % 2)) % width);
      const par = 1 + ((l + j) % 4);
      lines.push('  l' + l + '_' + j + ':');
      if ((l + j) % 3 === 0) {
        lines.push('    type: filter', '    input: ' + input, '    where: humidity >= 0', '    parallelism: ' + par);
      } else {
        lines.push('    type: map', '    input: ' + input, '    fields: {f' + l + '_' + j + ': humidity + ' + j + '}',
                   '    parallelism: ' + par);
      }
      names++;
    }
  }
  lines.push('  per_device:', '    type: window', '    input: l' + layers + '_0', '    key: device',
             '    window: {type: tumbling, size: 1s}', '    late: route', '    aggregates:', '      n: count()');
  lines.push('  merged:', '    type: union',
             '    input: [' + Array.from({length: width}, (_, j) => 'l' + layers + '_' + j).join(', ') + ']');
  names += 2;
  lines.push('', 'sinks:');
  const sinks = [['bad', 'valid.dead_letter'], ['late_rows', 'per_device.late'], ['windows', 'per_device'],
                 ['all', 'merged']];
  for (let l = 1; sinks.length < 50 - names; l++) sinks.push(['tap' + l, 'l' + l + '_' + ((l * 2) % width)]);
  for (const [name, input] of sinks) lines.push('  ' + name + ':', '    type: discard', '    input: ' + input);
  if (names + sinks.length !== 50) throw new Error('the generated pipeline has ' + (names + sinks.length) + ' components');
  return lines.join('\n') + '\n';
}

async function large(ctx, full) {
  const {page, problems} = ctx.session;
  const base = ctx.base;
  const bare = await fetch(base + '/api/v1/pipelines');
  check(bare.status === 401, 'the API wants the token (HTTP ' + bare.status + ' without it)');
  await page.goto(base + '/?token=' + encodeURIComponent(apiToken), {waitUntil: 'load', timeout: 30000});
  await until('the page to say it is connected',
              () => page.$eval('#connection', (e) => e.dataset.state === 'connected'), 15000);
  const detail = await checkGraph(page, base, 'wide');
  check(detail.components.length === 50, 'the API lists 50 components');
  if (!full) {
    await until('dead letters in their panel', async () =>
      (await count(page, '#dead-letters tbody tr[data-component="valid"]')) > 0, 20000);
    check(true, 'the dead-letter panel lists the bad readings the filter sent away');
    check(problems.list.length === 0, 'no console errors or warnings and no failed requests' +
          (problems.list.length ? ': ' + problems.list.join(' | ') : ''));
    await saveScreenshot(page, path.join(ctx.out, 'dashboard-firefox.png'));
    return;
  }

  const boxes = await page.$$eval('#graph g[data-component] rect.box', (rs) => rs.map((r) => {
    const b = r.getBoundingClientRect();
    return {name: r.parentNode.getAttribute('data-component'), x: b.left, y: b.top, w: b.width, h: b.height};
  }));
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) overlaps.push(a.name + '/' + b.name);
    }
  }
  check(overlaps.length === 0, 'no two of the 50 boxes overlap' + (overlaps.length ? ': ' + overlaps.join(', ') : ''));
  const columns = new Set(boxes.map((b) => Math.round(b.x))).size;
  check(columns >= 8, 'the boxes are laid out in ' + columns + ' columns by depth');
  // A box right of its input: columns follow the topological depth.
  const at = Object.fromEntries(boxes.map((b) => [b.name, b]));
  const backwards = detail.channels.filter((c) => at[c.from] && at[c.to] && at[c.to].x <= at[c.from].x);
  check(backwards.length === 0, 'every channel goes left to right');

  await until('dead letters in their panel', async () =>
    figure(await text(page, '[data-metric="dead_letters_total"]')) > 0 &&
    (await count(page, '#dead-letters tbody tr[data-component="valid"]')) > 0, 20000);
  check(true, 'the dead-letter panel lists the bad readings the filter sent away');
  await until('late records in their panel', async () =>
    figure(await text(page, '[data-metric="late_total"]')) > 0 &&
    (await count(page, '#late li[data-component="per_device"]')) > 0, 30000);
  check(true, 'the late panel counts the window\'s late records');
  check(problems.list.length === 0, 'no console errors or warnings and no failed requests' +
        (problems.list.length ? ': ' + problems.list.join(' | ') : ''));
  await saveScreenshot(page, path.join(ctx.out, 'dashboard-50.png'));

  // The server goes away: the page says so, and resumes when it is back on the same port.
  problems.watching = false;
  await stopPel(ctx.pel.proc);
  await until('the page to show it is disconnected', () => page.$eval('#connection', (e) => e.dataset.state === 'disconnected'), 10000);
  const banner = await page.$eval('#banner', (b) => !b.hidden && b.textContent);
  check(!!banner && /disconnected/i.test(banner), 'the page shows "disconnected": ' + banner);
  ctx.pel = await until('pel to serve again on port ' + ctx.port, () =>
    startPel(ctx.args.pel, ctx.args['source-dir'], ctx.port, [ctx.yamlPath], ctx.logPath), 30000, 1000);
  await until('the page to reconnect', () => page.$eval('#connection', (e) => e.dataset.state === 'connected'), 15000);
  await checkGraph(page, base, 'wide');
  check(true, 'the page reconnected and redrew the graph');
}

async function saveScreenshot(page, file) {
  fs.mkdirSync(path.dirname(file), {recursive: true});
  await page.screenshot({path: file, fullPage: true});
  console.log('screenshot: ' + file);
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const scenario = args.scenario;
  if (!['trading', 'large', 'firefox'].includes(scenario)) {
    console.error('unknown scenario ' + scenario);
    process.exit(2);
  }
  const executable = findBrowser(args);
  if (!executable) {
    skip(scenario === 'firefox' ? 'no Firefox (install the Debian package firefox-esr, or set PEL_FIREFOX)'
                                : 'no Chromium (install the Debian package chromium, or set PEL_CHROMIUM)');
  }
  let puppeteer;
  try {
    puppeteer = require('puppeteer-core');
  } catch (e) {
    skip('puppeteer-core is not installed (npm ci in tests/browser): ' + e.message);
  }
  fs.mkdirSync(args.out, {recursive: true});
  const logPath = path.join(args.out, 'dashboard-' + scenario + '-pel.log');
  fs.writeFileSync(logPath, '');
  // What the test says goes to the test output folder too, stamped with the time.
  const ownLog = path.join(args.out, 'dashboard-' + scenario + '.log');
  fs.writeFileSync(ownLog, '');
  for (const level of ['log', 'error']) {
    const print = console[level].bind(console);
    console[level] = (...parts) => {
      print(...parts);
      fs.appendFileSync(ownLog, new Date().toISOString() + ' ' + parts.join(' ') + '\n');
    };
  }

  const watchdog = setTimeout(() => {
    console.error('FAIL: the test took longer than ' + TOTAL_DEADLINE_MS / 1000 + ' s');
    killAllNow();
    if (browser && browser.process()) browser.process().kill('SIGKILL');
    process.exit(1);
  }, TOTAL_DEADLINE_MS);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      killAllNow();
      if (browser && browser.process()) browser.process().kill('SIGKILL');
      process.exit(1);
    });
  }

  const ctx = {args: args, out: args.out, logPath: logPath};
  let failed = null;
  try {
    let runArgs;
    if (scenario === 'trading') {
      runArgs = ['--embedded-kafka', 'ticks:4,bars:4,alerts:1', 'examples/trading/feed.yaml',
                 'examples/trading/live.yaml', 'examples/trading/show.yaml'];
    } else {
      apiToken = 'dashboard-test-token';
      ctx.yamlPath = path.join(args.out, 'dashboard-wide.yaml');
      fs.writeFileSync(ctx.yamlPath, largePipelineYaml());
      runArgs = [ctx.yamlPath];
    }
    ctx.pel = await startPel(args.pel, args['source-dir'], 0, runArgs, logPath);
    ctx.port = ctx.pel.port;
    ctx.base = 'http://127.0.0.1:' + ctx.port;
    console.log('pel serves ' + ctx.base + '/ (log: ' + logPath + ')');
    ctx.session = await openPage(puppeteer, executable, scenario === 'firefox');
    if (scenario === 'trading') {
      await trading(ctx);
      await saveScreenshot(ctx.session.page, args.screenshot || path.join(args.out, 'dashboard.png'));
    } else {
      await large(ctx, scenario === 'large');
    }
  } catch (e) {
    failed = e;
    if (ctx.session) {
      const file = path.join(args.out, 'dashboard-' + scenario + '-failed.png');
      await withTimeout(saveScreenshot(ctx.session.page, file), 10000).catch(() => {});
    }
  } finally {
    await closeBrowser();
    if (ctx.pel) await stopPel(ctx.pel.proc);
    killAllNow();
    clearTimeout(watchdog);
  }
  if (failed) {
    console.error('FAIL: ' + (failed.stack || failed.message));
    process.exit(1);
  }
  console.log('PASS: dashboard ' + scenario);
  process.exit(0);
}

main();
