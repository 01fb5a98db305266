// Shared helpers for the end-to-end test and the web benchmark: start the real
// `prescient demo`, parse its URLs, run psql against its database, launch the
// Debian Chromium through playwright-core (never a downloaded browser).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(WEB, '../..');

export function log(...a) {
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...a);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function prescientBin() {
  const cands = [
    process.env.PRESCIENT_BIN,
    path.join(REPO, 'target/release/prescient'),
    path.join(REPO, 'target/debug/prescient'),
  ].filter(Boolean);
  const found = cands.find((p) => existsSync(p));
  if (!found) throw new Error(`no prescient binary (looked at ${cands.join(', ')}); build it with cargo build --release -p prescient`);
  return found;
}

/**
 * Starts `prescient demo` on free ports and resolves once it printed the
 * one-time login link and the database URL. Its output goes to `logFile`.
 */
export async function startDemo({ extraArgs = [], timeoutMs = 180_000, logLines = [] } = {}) {
  const bin = prescientBin();
  const dashPort = await freePort();
  const metricsPort = await freePort();
  const args = ['demo', '--dashboard-listen', `127.0.0.1:${dashPort}`, '--metrics-addr', `127.0.0.1:${metricsPort}`, ...extraArgs];
  log(`starting ${bin} ${args.join(' ')}`);
  const env = { ...process.env };
  delete env.DATABASE_URL; // the demo starts its own private PostgreSQL
  const child = spawn(bin, args, {
    cwd: REPO,
    env: { ...env, RUST_LOG: process.env.RUST_LOG ?? 'warn', PRESCIENT_DASHBOARD_WEB_DIR: path.join(WEB, 'dist') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const found = {};
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo printed no login link within ${timeoutMs / 1000}s:\n${out.slice(-4000)}`)), timeoutMs);
    const onData = (buf) => {
      const s = buf.toString();
      out += s;
      for (const line of s.split('\n')) if (line.trim()) logLines.push(line);
      if (out.length > 1_000_000) out = out.slice(-200_000);
      const link = /(https?:\/\/127\.0\.0\.1:\d+)\/login\?code=[A-Za-z0-9_\-.%~]+/.exec(out);
      const pg = /PostgreSQL\s*:\s*(postgres(?:ql)?:\/\/\S+)/.exec(out);
      if (link) {
        found.loginLink = link[0];
        found.base = link[1];
      }
      if (pg) found.databaseUrl = pg[1];
      if (found.loginLink && found.databaseUrl) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`demo exited early (code ${code}, signal ${sig}):\n${out.slice(-4000)}`));
    });
  });
  await done;
  log(`demo ready: ${found.base} (database ${found.databaseUrl.replace(/:[^:@/]*@/, ':***@')})`);
  return {
    ...found,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid, 'SIGINT');
      } catch {
        /* gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Runs one SQL statement with psql; returns its unaligned output rows. */
export function psql(url, sql) {
  const out = execFileSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.length > 0);
}

/** Runs a `prescient` subcommand and returns stdout. */
export function prescient(args) {
  return execFileSync(prescientBin(), args, { cwd: REPO, encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
}

/**
 * Launches the Debian Chromium headless with the flags DESIGN.md asks for.
 * The fresh --user-data-dir is playwright's own: launch() always starts
 * Chromium on a new temporary profile (it refuses a --user-data-dir argument).
 */
export async function launchChromium() {
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    close: () => browser.close(),
  };
}

const AXE = readFileSync(path.join(WEB, 'node_modules/axe-core/axe.min.js'), 'utf8');

/** Runs axe-core on the page; returns the serious and critical violations. */
export async function axeSerious(page) {
  await page.addScriptTag({ content: AXE });
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export function artifactsDir(name) {
  const d = path.join(WEB, name);
  mkdirSync(d, { recursive: true });
  return d;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
