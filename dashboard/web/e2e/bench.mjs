// Web benchmark: JS bundle size (gzip -9), time to first meaningful paint of the
// demo's overview in headless Chromium, and row-to-screen delay (a row committed
// in PostgreSQL, with the dataflow's NOTIFY in the same transaction, until the
// service chart has drawn it via the SSE stream and a refetch).
//
//   node e2e/bench.mjs    (after `npm run build` and a cargo build of `prescient`)
//
// Env: BENCH_PAINT_RUNS (7), BENCH_ROW_RUNS (15), BENCH_DEMO_ARGS ("--backfill 30m"). Writes bench-out/web-bench.json.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { artifactsDir, launchChromium, log, psql, sleep, startDemo, WEB } from './lib.mjs';

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const summary = (xs) => ({ n: xs.length, min: Math.min(...xs), median: pct(xs, 50), p90: pct(xs, 90), max: Math.max(...xs) });

function bundle() {
  const dir = path.join(WEB, 'dist/assets');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.css'));
  const out = {};
  for (const f of files) {
    const buf = readFileSync(path.join(dir, f));
    out[f] = { raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
  }
  const js = Object.entries(out).filter(([f]) => f.endsWith('.js'));
  return { files: out, js_gzip_bytes: js.reduce((s, [, v]) => s + v.gzip, 0), js_raw_bytes: js.reduce((s, [, v]) => s + v.raw, 0) };
}

/** Records, in the page, when the overview first shows its numbers and every tile's sparkline. */
const PAINT_PROBE = () => {
  window.__paint = {};
  const check = () => {
    const p = window.__paint;
    const kpi = document.querySelector('[data-testid=kpi-events] .kpi-value');
    if (p.kpis === undefined && kpi && kpi.textContent && kpi.textContent !== '—') p.kpis = performance.now();
    const tiles = document.querySelectorAll('[data-testid=service-tiles] .tile');
    const drawn = document.querySelectorAll('[data-testid=service-tiles] .tile [data-drawn-at]');
    if (p.tiles === undefined && tiles.length > 0 && drawn.length === tiles.length) p.tiles = performance.now();
    if (p.kpis === undefined || p.tiles === undefined) requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
};

async function main() {
  const out = { when: new Date().toISOString(), machine: process.env.BENCH_MACHINE ?? 'shared 2-core dev machine', bundle: bundle() };
  log(`bundle: JS ${(out.bundle.js_gzip_bytes / 1024).toFixed(1)} KiB gzip (${(out.bundle.js_raw_bytes / 1024).toFixed(1)} KiB raw)`);
  const extraArgs = (process.env.BENCH_DEMO_ARGS ?? '--backfill 30m').split(/\s+/).filter(Boolean);
  out.demo_args = extraArgs;
  const demo = await startDemo({ extraArgs });
  const chrome = await launchChromium();
  try {
    const login = await chrome.browser.newContext();
    const lp = await login.newPage();
    await lp.goto(demo.loginLink);
    await lp.getByTestId('service-tiles').waitFor({ timeout: 120_000 });
    const state = await login.storageState();
    await login.close();

    // First meaningful paint: a fresh context (cold cache) per run, session cookie preset.
    const runs = Number(process.env.BENCH_PAINT_RUNS ?? 7);
    const fcp = [];
    const kpis = [];
    const tiles = [];
    for (let i = 0; i < runs; i++) {
      const ctx = await chrome.browser.newContext({ storageState: state, viewport: { width: 1440, height: 900 } });
      await ctx.addInitScript(PAINT_PROBE);
      const page = await ctx.newPage();
      await page.goto(`${demo.base}/`);
      await page.waitForFunction(() => window.__paint.kpis !== undefined && window.__paint.tiles !== undefined, null, { timeout: 30_000 });
      const r = await page.evaluate(() => ({
        ...window.__paint,
        fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
      }));
      fcp.push(Math.round(r.fcp));
      kpis.push(Math.round(r.kpis));
      tiles.push(Math.round(r.tiles));
      await ctx.close();
    }
    out.first_paint_ms = { first_contentful_paint: summary(fcp), overview_numbers: summary(kpis), overview_all_tiles_drawn: summary(tiles) };
    log(`first paint (ms, median/max): FCP ${summary(fcp).median}/${summary(fcp).max}, numbers ${summary(kpis).median}/${summary(kpis).max}, all tiles ${summary(tiles).median}/${summary(tiles).max}`);

    // Row-to-screen.
    const probe = `bench-probe-${Date.now()}`;
    const ctx = await chrome.browser.newContext({ storageState: state, viewport: { width: 1440, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${demo.base}/services/${probe}?range=1h`);
    const sel = '[data-testid=requests-chart] [role=img]';
    await page.waitForSelector(`${sel}[data-drawn-at]`, { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=stream-state]')?.textContent === 'live', null, { timeout: 20_000 });
    const rowRuns = Number(process.env.BENCH_ROW_RUNS ?? 15);
    const delays = [];
    let expected = 0;
    for (let i = 0; i < rowRuns; i++) {
      const minute = Math.floor(Date.now() / 60_000) * 60_000 - (i + 2) * 60_000;
      const requests = 1000 + i;
      expected += requests;
      const rows = psql(
        demo.databaseUrl,
        `BEGIN;
         INSERT INTO service_minute (service, minute, requests, errors, active_users)
           VALUES ('${probe}', to_timestamp(${minute} / 1000.0), ${requests}, 0, 1);
         SELECT pg_notify('prescient_rows', '{"topic":"user-events","minute_ms":${minute}}');
         COMMIT;
         SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;`,
      );
      const committed = Number(rows[rows.length - 1]);
      await page.waitForFunction(([s, want]) => Number(document.querySelector(s)?.dataset.sum) === want, [sel, expected], { timeout: 15_000, polling: 'raf' });
      const drawnAt = Number(await page.$eval(sel, (el) => el.dataset.drawnAt));
      delays.push(drawnAt - committed);
      await sleep(700 + Math.random() * 900); // spread the commits over the refetch window
    }
    out.row_to_screen_ms = summary(delays);
    out.row_to_screen_samples_ms = delays;
    log(`row-to-screen (ms): ${JSON.stringify(summary(delays))}`);
    await ctx.close();
  } finally {
    await chrome.close().catch(() => {});
    await demo.stop().catch(() => {});
  }
  const dir = artifactsDir('bench-out');
  writeFileSync(path.join(dir, 'web-bench.json'), JSON.stringify(out, null, 2));
  console.log(JSON.stringify(out, null, 2));
  const miss = [];
  if (out.bundle.js_gzip_bytes > 200 * 1024) miss.push('bundle > 200 KB gzip');
  if (out.first_paint_ms.overview_numbers.median > 1000) miss.push('first meaningful paint > 1 s');
  if (out.row_to_screen_ms.p90 > 2000) miss.push('row-to-screen p90 > 2 s');
  log(miss.length ? `targets missed: ${miss.join('; ')}` : 'all web targets met');
}

await main();
