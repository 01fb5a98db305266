// End-to-end test of the dashboard in headless Chromium against the real
// `prescient demo` (embedded Kafka-protocol broker, private PostgreSQL,
// dataflow, forecaster, dashboard server). Screenshots go to e2e-artifacts/.
//
//   node e2e/run.mjs            (after `npm run build` and a cargo build of `prescient`)
//
// Env: PRESCIENT_BIN (binary), CHROMIUM (/usr/bin/chromium), E2E_FORECAST_TIMEOUT_S (180),
// E2E_DEMO_ARGS (extra `prescient demo` flags; see the default below).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { artifactsDir, axeSerious, launchChromium, log, prescient, psql, sleep, startDemo } from './lib.mjs';

const ART = artifactsDir('e2e-artifacts');
const results = [];
let demo;
let chrome;
const demoLog = [];

async function step(name, page, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: String(e?.stack ?? e) });
    log(`FAIL ${name}: ${e?.message ?? e}`);
    if (page) await page.screenshot({ path: path.join(ART, `FAILED-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ART, `${name}.png`), fullPage: true });
}

async function checkAxe(page, view) {
  const v = await axeSerious(page);
  writeFileSync(path.join(ART, `axe-${view}.json`), JSON.stringify(v, null, 2));
  assert(v.length === 0, `axe found serious/critical violations on ${view}: ${JSON.stringify(v, null, 1)}`);
}

/** Counts EventSource constructions and keeps the instances (to check "one stream per page"). */
const INSTRUMENT = () => {
  const Orig = window.EventSource;
  window.__es = [];
  window.EventSource = class extends Orig {
    constructor(...a) {
      super(...a);
      window.__es.push(this);
    }
  };
};

async function main() {
  // A smaller demo than the default so a debug build keeps up on a shared 2-core machine (the
  // backfill never runs more than 100,000 records ahead of what the dataflow has read): 15 min of
  // history is enough for forecasts and predictive decisions, and it is read in well under a
  // minute, after which decisions are for live minutes.
  const extraArgs = (process.env.E2E_DEMO_ARGS ?? '--rate 300 --backfill 15m --backfill-rate 20000 --forecast-after-min 3').split(/\s+/).filter(Boolean);
  demo = await startDemo({ logLines: demoLog, extraArgs });
  chrome = await launchChromium();
  const admin = await chrome.browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'light' });
  await admin.addInitScript(INSTRUMENT);
  const page = await admin.newPage();
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  await step('login page: a wrong token is refused with a message', page, async () => {
    await page.goto(`${demo.base}/`);
    await page.getByLabel('API token').fill('psk_definitely_wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('login-error').waitFor({ timeout: 10_000 });
    await shot(page, 'login');
    await checkAxe(page, 'login');
  });

  await step('one-time link logs in and shows the overview', page, async () => {
    await page.goto(demo.loginLink);
    await page.getByTestId('kpis').waitFor({ timeout: 30_000 });
    assert(new URL(page.url()).pathname === '/', `after the link the page is at ${page.url()}`);
    await page.getByTestId('service-tiles').waitFor({ timeout: 120_000 });
    const who = await page.getByTestId('who').textContent();
    assert(/admin/.test(who), `header says ${who}`);
  });

  await step('overview numbers change without reload (live stream)', page, async () => {
    await page.evaluate(() => {
      window.__noReload = true;
    });
    await page.waitForFunction(() => document.querySelector('[data-testid=stream-state]')?.textContent === 'live', null, { timeout: 20_000 });
    const before = await page.getByTestId('kpis').innerText();
    const t0 = Date.now();
    await page.waitForFunction((b) => document.querySelector('[data-testid=kpis]')?.innerText !== b, before, { timeout: 20_000 });
    const after = await page.getByTestId('kpis').innerText();
    log(`  overview changed after ${Date.now() - t0} ms: ${before.replace(/\s+/g, ' ')} -> ${after.replace(/\s+/g, ' ')}`);
    assert(await page.evaluate(() => window.__noReload === true), 'the page reloaded');
    await shot(page, 'overview');
    await checkAxe(page, 'overview');
  });

  let service = '';
  const forecastTimeout = Number(process.env.E2E_FORECAST_TIMEOUT_S ?? 180) * 1000;
  await step('service view: forecast band past the now line, decision markers with reason and outcome', page, async () => {
    const tile = page.getByTestId('tile-link').first();
    service = (await tile.locator('.tile-name').textContent()).trim();
    await tile.click();
    assert(new URL(page.url()).pathname === `/services/${encodeURIComponent(service)}`, `url ${page.url()}`);
    const chart = page.getByTestId('requests-chart').locator('[role=img]');
    await chart.waitFor({ timeout: 30_000 });
    // The page refetches on `forecast` / `decision` events, so we just wait for the drawing.
    await page.waitForFunction(
      () => {
        const el = document.querySelector('[data-testid=requests-chart] [role=img]');
        if (!el) return false;
        const bands = (el.dataset.bands ?? '0,0').split(',').map(Number);
        return el.dataset.now === '1' && bands[1] > 0 && Number(el.dataset.markers) > 0;
      },
      null,
      { timeout: forecastTimeout, polling: 500 },
    );
    const ds = await chart.evaluate((el) => ({ ...el.dataset }));
    log(`  requests chart: now=${ds.now} bands=${ds.bands} markers=${ds.markers} sum=${ds.sum}`);
    const status = await page.getByTestId('forecast-status').textContent();
    assert(/Latest forecast issued/.test(status), `forecast status: ${status}`);
    // Hover the newest marker: its tooltip gives the reason and the outcome.
    const xs = ds.markerX.split(',').map(Number);
    const over = await page.getByTestId('requests-chart').locator('.u-over').boundingBox();
    await page.mouse.move(over.x + xs[xs.length - 1], over.y + over.height / 2);
    const tip = page.getByTestId('decision-tooltip');
    await tip.waitFor({ timeout: 5_000 });
    const text = await tip.innerText();
    assert(/replicas/.test(text) && /outcome: /.test(text), `tooltip: ${text}`);
    await page.mouse.move(0, 0);
    const rep = page.getByTestId('replicas-chart').locator('[role=img]');
    await rep.waitFor({ timeout: 10_000 });
    assert((await page.getByTestId('decision-list').locator('li').count()) > 0, 'no decisions listed');
    await sleep(300);
    await shot(page, 'service');
    await checkAxe(page, 'service');
  });

  await step('time range is kept in the URL and survives a reload', page, async () => {
    await page.getByRole('button', { name: '24h', exact: true }).click();
    await page.waitForURL((u) => u.searchParams.get('range') === '24h');
    await page.reload();
    await page.getByRole('button', { name: '24h', exact: true }).and(page.locator('[aria-pressed=true]')).waitFor({ timeout: 10_000 });
    await page.getByTestId('requests-chart').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: '1h', exact: true }).click();
    await page.waitForURL((u) => u.searchParams.get('range') === '1h');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=requests-chart] [role=img]')?.dataset.bands?.split(',')[1]) > 0, null, { timeout: 30_000 });
    await sleep(500);
    await shot(page, 'service-1h'); // the README's screenshot (docs/img/dashboard-service.png)
  });

  await step('dark theme renders the service view', page, async () => {
    await page.getByRole('button', { name: /Switch to dark theme/ }).click();
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
    await page.getByTestId('requests-chart').locator('[role=img]').waitFor();
    await sleep(500);
    await shot(page, 'service-dark');
    await checkAxe(page, 'service-dark');
    await page.getByRole('button', { name: /Switch to light theme/ }).click();
  });

  await step('scaling view lists decisions with outcomes, filterable by service', page, async () => {
    await page.getByRole('link', { name: 'Scaling', exact: true }).click();
    await page.getByTestId('decisions-table').waitFor({ timeout: 30_000 });
    await page.getByTestId('service-filter').selectOption(service);
    await page.waitForURL((u) => u.searchParams.get('service') === service);
    await page.waitForFunction(
      (s) => {
        const rows = [...document.querySelectorAll('[data-testid=decisions-table] tbody tr')];
        return rows.length > 0 && rows.every((r) => r.children[1].textContent.trim() === s);
      },
      service,
      { timeout: 15_000 },
    );
    // Once the backfill is read, decisions are for live minutes: a predictive one reaches the
    // scaler's dry run before it expires (not `skipped-stale`, the lot of backfilled minutes).
    const t0 = Date.now();
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-testid=decisions-table] tbody tr')].some(
          (r) => !/fallback/.test(r.children[2].textContent) && /^(dry-run|unchanged|applied|clamped)\b/.test(r.children[7].textContent.trim()),
        ),
      null,
      { timeout: forecastTimeout, polling: 500 },
    );
    log(`  a live predictive decision with its dry-run outcome after ${Date.now() - t0} ms`);
    await shot(page, 'scaling');
    await checkAxe(page, 'scaling');
  });

  await step('pipeline view shows partitions, dead letters, freshness and accuracy', page, async () => {
    await page.getByRole('link', { name: 'Pipeline', exact: true }).click();
    await page.getByTestId('partitions-table').waitFor({ timeout: 30_000 });
    const rows = await page.getByTestId('partitions-table').locator('tbody tr').count();
    assert(rows > 0, 'no partitions');
    await sleep(300);
    await shot(page, 'pipeline');
    await checkAxe(page, 'pipeline');
  });

  await step('one EventSource for the whole page; pause closes it, resume reopens it', page, async () => {
    const n = await page.evaluate(() => window.__es.length);
    assert(n === 1, `${n} EventSources were opened while visiting four views (want 1)`);
    await page.getByTestId('pause').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=stream-state]')?.textContent === 'paused');
    assert(await page.evaluate(() => window.__es[0].readyState === 2), 'the stream stayed open while paused');
    await page.getByTestId('pause').click();
    await page.waitForFunction(() => document.querySelector('[data-testid=stream-state]')?.textContent === 'live', null, { timeout: 15_000 });
    assert(await page.evaluate(() => window.__es.length === 2 && window.__es[1].readyState === 1), 'resume did not reopen one stream');
  });

  await step('a tenant-scoped login sees only its own tenant', null, async () => {
    const tenants = psql(demo.databaseUrl, 'SELECT DISTINCT tenant FROM metrics_minute ORDER BY 1 LIMIT 2');
    assert(tenants.length === 2, `need two tenants in metrics_minute, found ${tenants.join(',')}`);
    const [mine, other] = tenants;
    const out = prescient(['token', 'create', '--name', `e2e-${mine}`, '--role', 'viewer', '--tenant', mine, '--database-url', demo.databaseUrl]);
    const token = (/psk_[A-Za-z0-9_\-]+/.exec(out) ?? [out.trim().split('\n').pop()])[0].trim();
    const ctx = await chrome.browser.newContext({ viewport: { width: 1440, height: 900 } });
    const tp = await ctx.newPage();
    try {
      await tp.goto(`${demo.base}/`);
      await tp.getByLabel('API token').fill(token);
      await tp.getByRole('button', { name: 'Sign in' }).click();
      await tp.getByTestId('tenant-banner').waitFor({ timeout: 30_000 });
      assert((await tp.getByTestId('tenant-banner').innerText()).includes(mine), 'banner does not name the tenant');
      assert((await tp.getByRole('link', { name: 'Scaling', exact: true }).count()) === 0, 'tenant sees the Scaling view');
      await tp.getByTestId('service-tiles').waitFor({ timeout: 60_000 });
      await shot(tp, 'tenant-overview');
      await checkAxe(tp, 'tenant-overview');
      // What the page's own session may read: cross-tenant routes are refused; a crafted
      // tenant parameter changes nothing; its numbers are its own share of the totals.
      const probe = await tp.evaluate(async ([other]) => {
        const j = async (u) => {
          const r = await fetch(u);
          return { status: r.status, body: r.ok ? await r.json() : null };
        };
        const ov = await j('/api/v1/overview');
        const svc = ov.body.services[0].service;
        const enc = encodeURIComponent;
        return {
          svc,
          decisions: (await j('/api/v1/decisions')).status,
          pipeline: (await j('/api/v1/pipeline')).status,
          forecast: (await j(`/api/v1/services/${enc(svc)}/forecast`)).status,
          series: (await j(`/api/v1/services/${enc(svc)}/series?range=1h`)).body,
          crafted: (await j(`/api/v1/services/${enc(svc)}/series?range=1h&tenant=${enc(other)}`)),
        };
      }, [other]);
      assert(probe.decisions === 403 && probe.pipeline === 403 && probe.forecast === 403, `cross-tenant routes: ${JSON.stringify(probe)}`);
      const adminSeries = await page.evaluate(async (svc) => (await fetch(`/api/v1/services/${encodeURIComponent(svc)}/series?range=1h`)).json(), probe.svc);
      const closed = (s) => s.t.map((t, i) => [t, s.requests[i]]).filter(([, v]) => v !== null).slice(0, -3); // minutes surely closed
      const mineRows = closed(probe.series);
      const adminBy = new Map(closed(adminSeries));
      assert(mineRows.length > 0, 'tenant has no closed minutes');
      let less = 0;
      for (const [t, v] of mineRows) {
        const a = adminBy.get(t);
        assert(a !== undefined && v <= a + 1e-9, `tenant minute ${t}: ${v} > all tenants ${a}`);
        if (v < a) less++;
      }
      assert(less > 0, 'tenant numbers equal the totals: not scoped');
      if (probe.crafted.status === 200) {
        const c = new Map(closed(probe.crafted.body));
        for (const [t, v] of mineRows) assert(c.get(t) === undefined || c.get(t) === v, `?tenant=${other} changed minute ${t}: ${v} -> ${c.get(t)}`);
      } else {
        assert(probe.crafted.status === 400, `crafted tenant parameter answered ${probe.crafted.status}`);
      }
      // Opening a service page directly shows actual traffic only, and says why.
      await tp.goto(`${demo.base}/services/${encodeURIComponent(probe.svc)}`);
      await tp.getByTestId('forecast-status').waitFor({ timeout: 30_000 });
      assert(/span tenants/.test(await tp.getByTestId('forecast-status').innerText()), 'tenant service page does not explain the missing forecast');
      await shot(tp, 'tenant-service');
      await checkAxe(tp, 'tenant-service');
    } finally {
      await ctx.close();
    }
  });

  await step('no errors in the browser console', null, async () => {
    const real = consoleErrors.filter((e) => !/401|Unauthorized|403|Forbidden|404/.test(e));
    assert(real.length === 0, `console errors: ${real.join('\n')}`);
  });
}

let fatal = null;
try {
  await main();
} catch (e) {
  fatal = e;
  log(`FATAL ${e?.stack ?? e}`);
} finally {
  await chrome?.close().catch(() => {});
  await demo?.stop().catch(() => {});
  writeFileSync(path.join(ART, 'demo-output.log'), demoLog.join('\n'));
  writeFileSync(path.join(ART, 'results.json'), JSON.stringify(results, null, 2));
}
const failed = results.filter((r) => !r.ok);
log(`${results.length - failed.length}/${results.length} steps passed; artifacts in ${ART}`);
for (const f of failed) log(`FAILED: ${f.name}\n${f.error}`);
process.exit(fatal || failed.length > 0 ? 1 : 0);
