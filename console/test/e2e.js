'use strict';
// console/test/e2e.js — drives Debian's Chromium (headless, playwright-core)
// against a running console and prints TAP.  Run by test/t/console.sh, which
// starts the console and fills the database (console/test/data.sql).
//
// Environment: CONSOLE_URL, OUT (screenshots), DOCS (optional: a copy of the
// screenshots for the README), PGDATABASE and the usual PG* for the checks,
// which read the same views as a superuser (or as the role the page showed).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Client } = require('pg');
const { chromium } = require('playwright-core');

const URL0 = process.env.CONSOLE_URL;
const OUT = process.env.OUT;
const DOCS = process.env.DOCS || '';
const PW = { tgc_admin: 'admin-pw', tgc_reader: 'reader-pw', tgc_acme: 'acme-pw' };

let n = 0, failed = 0;
function ok(cond, desc, diag) {
  n++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${desc}`);
  if (!cond) { failed++; if (diag !== undefined) console.log(`#   ${String(diag).replace(/\n/g, '\n#   ')}`); }
}
function is(got, want, desc) {
  ok(String(got) === String(want), desc, `got: '${got}'\nexpected: '${want}'`);
}

const db = new Client();
const sql = async (text, params) => (await db.query(text, params)).rows;
const one = async (text, params) => { const r = await sql(text, params); return r[0] ? Object.values(r[0])[0] : undefined; };
const fmt = (v) => (v === null || v === undefined ? '–' : Number.isInteger(Number(v)) ? Number(v).toLocaleString('en-US') : String(v));
const text = async (page, sel) => (await page.locator(sel).first().textContent()).trim();

async function shot(page, name) {
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  // the README's set: what one screen shows (full pages run to megabytes)
  if (DOCS) await page.screenshot({ path: path.join(DOCS, `${name}.png`) });
}

async function signIn(ctx, role, password = PW[role]) {
  await ctx.clearCookies();
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(`${URL0}/login`);
  await page.fill('input[name=role]', role);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForLoadState('load'), page.click('form.login button')]);
  return page;
}

// A POST straight from the page's context (its cookies), not through a form.
async function post(page, url, fields) {
  return page.evaluate(async ({ url, fields }) => {
    const body = new URLSearchParams();
    for (const [k, v] of fields) body.append(k, v);
    const r = await fetch(url, { method: 'POST', body, redirect: 'manual' });
    return { status: r.status, text: await r.text() };
  }, { url, fields });
}

async function main() {
  await db.connect();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tg-console-chromium.'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  ctx.setDefaultTimeout(15000);
  try {
    await run(ctx);
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
    await db.end();
  }
}

async function run(ctx) {
  // ---------------------------------------------------------------- sign-in
  let page = await signIn(ctx, 'tgc_admin', 'wrong password');
  ok(/Sign-in refused by the database/.test(await page.content()), 'a wrong password is refused (by PostgreSQL)');
  await shot(page, 'console-login');
  page = await signIn(ctx, 'tgc_admin');
  is(await text(page, '[data-role]'), 'tgc_admin', 'signed in as the PostgreSQL role tgc_admin');
  const cookies = await ctx.cookies();
  const sc = cookies.find((c) => c.name === 'tg_session');
  ok(sc && sc.httpOnly && sc.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');

  // ---------------------------------------------------------------- overview
  let d = (await sql('SELECT * FROM taskguard.dashboard'))[0];
  for (const k of ['health_score', 'dlq_depth', 'dlq_pending', 'dlq_abandoned', 'open_breakers', 'failures_1h']) {
    is(await text(page, `[data-live="${k}"]`), fmt(d[k]), `overview: ${k} is the dashboard view's`);
  }
  const alerts = await sql('SELECT alert FROM taskguard.alerts ORDER BY level DESC, alert');
  is(await page.locator('table.alerts tbody tr.alert-row').count(), alerts.length, 'overview: every alert of taskguard.alerts is listed');
  is(await text(page, 'table.breakers tbody td'), 'stripe', 'overview: the open breaker is listed');
  is(await text(page, 'table.recent tbody td a'),
    await one('SELECT id FROM taskguard.dlq ORDER BY last_failed_at DESC, id DESC LIMIT 1'), 'overview: the newest failure comes first');
  const xss = await one(`SELECT id FROM taskguard.dlq WHERE message LIKE '%<script>%' ORDER BY id LIMIT 1`);
  await page.goto(`${URL0}/dlq/${xss}`);
  ok((await text(page, 'pre.message')).endsWith('<script>alert(1)</script>') && await page.locator('script').count() === 1,
    'a message with markup is shown as text (escaped), no script of it runs');
  await page.goto(`${URL0}/`);
  // live: a new failure shows without reloading
  const depth0 = Number(d.dlq_depth);
  await sql(`SELECT taskguard.record_failure('live_probe', '{}', 'TimeoutError', 'timed out', '{}', NULL, 'live-probe')`);
  await page.waitForFunction((want) => document.querySelector('[data-live="dlq_depth"]').textContent.replace(/,/g, '') === String(want),
    depth0 + 1, { timeout: 12000 }).then(() => ok(true, 'overview refreshes live (a new dead letter shows without a reload)'),
    (e) => ok(false, 'overview refreshes live (a new dead letter shows without a reload)', e.message));
  await shot(page, 'console-overview');

  // ---------------------------------------------------------------- DLQ list
  await page.goto(`${URL0}/dlq`);
  d = (await sql('SELECT * FROM taskguard.dashboard'))[0];
  is(await text(page, '[data-count="PENDING"]'), fmt(d.dlq_pending), 'DLQ: the PENDING count is the dashboard view\'s');
  is(await text(page, '[data-count="ABANDONED"]'), fmt(d.dlq_abandoned), 'DLQ: the ABANDONED count is the dashboard view\'s');
  const total = Number(await one('SELECT count(*) FROM taskguard.dlq'));
  is(await page.locator('table.dlq tbody tr[data-id]').count(), Math.min(50, total), 'DLQ: the first page has 50 records (or all)');
  const newest = await sql('SELECT id FROM taskguard.dlq ORDER BY last_failed_at DESC, id DESC LIMIT 100');
  is(await page.locator('table.dlq tbody tr[data-id]').first().getAttribute('data-id'), newest[0].id, 'DLQ: newest first');
  await shot(page, 'console-dlq');
  await Promise.all([page.waitForLoadState('load'), page.locator('a[rel=next]').first().click()]);
  is(await page.locator('table.dlq tbody tr[data-id]').first().getAttribute('data-id'), newest[50].id,
    'DLQ: "older" shows the next page (keyset)');
  await Promise.all([page.waitForLoadState('load'), page.locator('a[rel=prev]').first().click()]);
  is(await page.locator('table.dlq tbody tr[data-id]').first().getAttribute('data-id'), newest[0].id, 'DLQ: "newer" goes back');

  // filters: status + type + task + tenant + date + message search
  await page.goto(`${URL0}/dlq`);
  await page.selectOption('select[name=status]', 'ABANDONED');
  await page.selectOption('select[name=type]', 'PERMANENT_INVALID_INPUT');
  await Promise.all([page.waitForLoadState('load'), page.click('form.filters button')]);
  let want = await sql(`SELECT id FROM taskguard.dlq WHERE status = 'ABANDONED' AND failure_type = 'PERMANENT_INVALID_INPUT'
                         ORDER BY last_failed_at DESC, id DESC LIMIT 50`);
  is((await page.locator('table.dlq tbody tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id))).join(','),
    want.map((r) => r.id).join(','), 'DLQ: filtered by status and failure type, the rows the view gives');
  const today = new Date().toISOString().slice(0, 10);
  await page.goto(`${URL0}/dlq?task=send_email&tenant=acme&from=${today}&to=${today}&q=INVALID+API`);
  want = await sql(`SELECT id FROM taskguard.dlq WHERE task_name = 'send_email' AND tenant = 'acme'
                     AND message ILIKE '%invalid api%' ORDER BY last_failed_at DESC, id DESC LIMIT 50`);
  ok(want.length > 0, 'DLQ: the search case has records');
  is((await page.locator('table.dlq tbody tr[data-id]').evaluateAll((rs) => rs.map((r) => r.dataset.id))).join(','),
    want.map((r) => r.id).join(','), 'DLQ: task, tenant, date and message search filter as SQL does');
  await page.goto(`${URL0}/dlq?q=100%25_x`);
  is(await page.locator('table.dlq tbody tr[data-id]').count(), 0, 'DLQ: % and _ in a search are literal');

  // ---------------------------------------------------------------- record detail
  const ext = (await sql(`SELECT id, next_retry_at FROM taskguard.dlq WHERE task_ref = 'inv-3'`))[0];
  await page.goto(`${URL0}/dlq/${ext.id}`);
  const cd1 = await text(page, '#countdown');
  ok(/^in (\d+ h )?\d+ min \d+ s$/.test(cd1), `record: the next retry counts down (${cd1})`);
  await page.waitForFunction((t) => document.querySelector('#countdown').textContent.trim() !== t, cd1, { timeout: 3000 })
    .then(() => ok(true, 'record: the countdown ticks'), () => ok(false, 'record: the countdown ticks'));
  const withEvents = await one(`SELECT d.id FROM taskguard.dlq d WHERE d.status = 'ABANDONED' AND d.retry_count >= 1
                                  AND d.task_id IS NOT NULL ORDER BY d.id LIMIT 1`);
  await page.goto(`${URL0}/dlq/${withEvents}`);
  is(await page.locator('table.events tbody tr').count(),
    await one('SELECT count(*) FROM taskguard.failure_event WHERE failure_id = $1', [withEvents]),
    'record: its failure events are listed');
  ok((await page.locator('time[title]').count()) > 0 && /UTC$/.test(await page.locator('time[title]').first().getAttribute('title')),
    'times are relative with the exact time on hover');
  await shot(page, 'console-dlq-record');

  // ---------------------------------------------------------------- actions (admin)
  const ab = (await sql(`SELECT d.id FROM taskguard.dlq d JOIN taskguard.task t ON t.id = d.task_id
                          WHERE d.status = 'ABANDONED' AND t.status IN ('failed', 'cancelled') AND t.failure_id = d.id
                          ORDER BY d.id LIMIT 2`)).map((r) => r.id);
  await page.goto(`${URL0}/dlq?status=ABANDONED`);
  for (const id of ab) await page.check(`input[name=id][value="${id}"]`);
  is(await text(page, '[data-selected]'), '2 selected', 'DLQ: a selection of two');
  await page.selectOption('select[name=priority]', 'HIGH');
  await Promise.all([page.waitForLoadState('load'), page.click('button[data-action=retry]')]);
  ok(/Retried 2 of 2 records/.test(await text(page, '.flash')), 'retry at a priority: the console says 2 retried');
  is((await sql(`SELECT string_agg(status || ' ' || priority, ',') s FROM taskguard.dlq WHERE id = ANY($1)`, [ab]))[0].s,
    'RETRYING HIGH,RETRYING HIGH', 'retry at a priority: the records are RETRYING at HIGH');
  is(await one(`SELECT count(*) FROM taskguard.task t JOIN taskguard.dlq d ON d.task_id = t.id
                 WHERE d.id = ANY($1) AND t.status = 'ready' AND t.priority = 'HIGH'`, [ab]), 2,
  'retry at a priority: their tasks are ready at HIGH');
  await page.goto(`${URL0}/dlq?status=RETRYING`);
  is(await page.locator(ab.map((id) => `tr[data-id="${id}"]`).join(', ')).count(), 2, 'retry: the records show under RETRYING');

  const pend = (await sql(`SELECT id FROM taskguard.dlq WHERE status = 'PENDING' ORDER BY id LIMIT 3`)).map((r) => r.id);
  await page.goto(`${URL0}/dlq/${pend[0]}`);
  await Promise.all([page.waitForLoadState('load'), page.click('button[data-action=abandon]')]);
  is(await one('SELECT status FROM taskguard.dlq WHERE id = $1', [pend[0]]), 'ABANDONED', 'abandon one record from its page');
  await page.goto(`${URL0}/dlq/${pend[1]}`);
  await page.fill('input[name=note]', 'fixed by hand');
  await Promise.all([page.waitForLoadState('load'), page.click('button[data-action=resolve]')]);
  is(await one(`SELECT status || ' ' || resolution FROM taskguard.dlq WHERE id = $1`, [pend[1]]), 'RESOLVED fixed by hand',
    'resolve one record with a note');
  ok(/Resolved 1 of 1 record/.test(await text(page, '.flash')), 'resolve: the console says so');
  await page.goto(`${URL0}/dlq?status=RESOLVED`);
  is(await page.locator(`tr[data-id="${pend[1]}"]`).count(), 1, 'resolve: the record shows under RESOLVED');

  // purge a selection (dialog confirmed)
  const res = (await sql(`SELECT id FROM taskguard.dlq WHERE status = 'RESOLVED' ORDER BY last_failed_at DESC, id DESC LIMIT 2`)).map((r) => r.id);
  page.once('dialog', (dlg) => dlg.accept());
  for (const id of res) await page.check(`input[name=id][value="${id}"]`);
  await Promise.all([page.waitForLoadState('load'), page.click('button[data-action=purge]')]);
  is(await one('SELECT count(*) FROM taskguard.dlq WHERE id = ANY($1)', [res]), 0, 'purge a selection: the records are gone');
  is(await page.locator(`tr[data-id="${res[0]}"]`).count(), 0, 'purge: gone from the page too');

  // CSV export of a selection
  await page.goto(`${URL0}/dlq?status=ABANDONED`);
  const sel = await page.locator('input[name=id]').evaluateAll((bs) => bs.slice(0, 3).map((b) => b.value));
  for (const id of sel) await page.check(`input[name=id][value="${id}"]`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('button[data-action=export]')]);
  const csv = fs.readFileSync(await dl.path(), 'utf8').trim().split('\r\n');
  is(csv.length, 4, 'CSV export of a selection: a header and three records');
  is(csv.slice(1).map((l) => l.split(',')[0]).sort().join(','), [...sel].sort().join(','), 'CSV export: the chosen records');
  const [dl2] = await Promise.all([page.waitForEvent('download'), page.click('a.export >> nth=0')]);
  is(fs.readFileSync(await dl2.path(), 'utf8').trim().split('\r\n').length - 1,
    await one(`SELECT count(*) FROM taskguard.dlq WHERE status = 'ABANDONED'`), 'CSV export of a filter: every matching record');

  // ---------------------------------------------------------------- CSRF
  const victim = (await sql(`SELECT id FROM taskguard.dlq WHERE status = 'PENDING' ORDER BY id LIMIT 1`))[0].id;
  let r = await post(page, '/dlq/action', [['action', 'abandon'], ['id', victim]]);
  is(r.status, 403, 'a POST without the CSRF token is refused (403)');
  r = await post(page, '/dlq/action', [['action', 'abandon'], ['id', victim], ['_csrf', 'x'.repeat(43)]]);
  is(r.status, 403, 'a POST with a wrong CSRF token is refused (403)');
  is(await one('SELECT status FROM taskguard.dlq WHERE id = $1', [victim]), 'PENDING', 'and the record is unchanged');

  // ---------------------------------------------------------------- other pages
  await page.goto(`${URL0}/taxonomy`);
  const dist = await sql('SELECT failure_type, records, open_records, failures_24h FROM taskguard.failure_distribution');
  let bad = [];
  for (const x of dist) {
    const row = page.locator(`tr[data-type="${x.failure_type}"]`);
    const got = [await row.locator('[data-col=records]').textContent(), await row.locator('[data-col=open_records]').textContent(),
      await row.locator('[data-col=failures_24h]').textContent()].join('/');
    if (got !== [fmt(x.records), fmt(x.open_records), fmt(x.failures_24h)].join('/')) bad.push(`${x.failure_type} ${got}`);
  }
  is(bad.join('; '), '', 'taxonomy: records, open records and 24 h failures per type are failure_distribution\'s');
  ok(await page.locator('svg.chart polyline').count() > 0 && await page.locator('svg.chart rect').count() > 0,
    'taxonomy: distribution and trend charts are drawn');
  await shot(page, 'console-taxonomy');

  await page.goto(`${URL0}/retries`);
  bad = [];
  for (const x of await sql('SELECT failure_type, retried, recovered, success_rate_pct FROM taskguard.retry_effectiveness')) {
    const row = page.locator(`tr[data-type="${x.failure_type}"]`);
    const got = [await row.locator('[data-col=retried]').textContent(), await row.locator('[data-col=recovered]').textContent(),
      await row.locator('[data-col=success_rate_pct]').textContent()].join('/');
    if (got !== [fmt(x.retried), fmt(x.recovered), fmt(x.success_rate_pct)].join('/')) bad.push(`${x.failure_type} ${got}`);
  }
  is(bad.join('; '), '', 'retries: retried, recovered and success rate per type are retry_effectiveness\'s');
  is(await page.locator('table.advice tbody tr').count(),
    Math.max(1, Number(await one('SELECT count(*) FROM (SELECT 1 FROM taskguard.retry_advice LIMIT 100) s'))),
    'retries: the advice of taskguard.retry_advice is listed');
  await shot(page, 'console-retries');
  await Promise.all([page.waitForLoadState('load'), page.click('button[data-apply=poll_feed]')]);
  is(await one(`SELECT max_retries FROM taskguard.retry_policy WHERE task_name = 'poll_feed' AND failure_type = 'TRANSIENT_NETWORK'`),
    await one(`SELECT (new_policy->>'max_retries') FROM taskguard.retry_policy_change WHERE task_name = 'poll_feed'`),
    'retries: an admin applies the advice (a per-task policy, recorded in retry_policy_change)');
  ok(/Advice applied to poll_feed/.test(await text(page, '.flash')), 'retries: the console says so');
  is(await page.locator('button[data-apply=poll_feed]').count(), 0, 'retries: applied advice offers no second apply');

  await page.goto(`${URL0}/idempotency`);
  const idem = (await sql(`SELECT checks, duplicates, hit_rate_pct FROM taskguard.idempotency_stats WHERE task_name = 'charge_card'`))[0];
  is([await text(page, 'tr[data-task=charge_card] [data-col=checks]'), await text(page, 'tr[data-task=charge_card] [data-col=duplicates]'),
    await text(page, 'tr[data-task=charge_card] [data-col=hit_rate_pct]')].join('/'),
  [fmt(idem.checks), fmt(idem.duplicates), fmt(idem.hit_rate_pct)].join('/'), 'idempotency: checks, duplicates and hit rate are idempotency_stats\'s');
  await shot(page, 'console-idempotency');

  await page.goto(`${URL0}/schedules`);
  const sh = (await sql('SELECT * FROM taskguard.schedule_health()'))[0];
  is(['score', 'hotspots', 'duplicates'].map((k) => sh[k]).join('/'),
    [await text(page, '[data-health=score]'), await text(page, '[data-health=hotspots]'), await text(page, '[data-health=duplicates]')].join('/'),
    'schedules: score, hotspots and duplicates are schedule_health()\'s');
  is(await page.locator('svg.heat rect').count(), 1440, 'schedules: the heat map has a cell per minute of 24 hours');
  is(await page.locator('table.problems tr.problem-duplicate').count(),
    await one(`SELECT count(*) FROM taskguard.validate_schedules() WHERE problem = 'duplicate'`), 'schedules: the duplicates are listed');
  is(await page.locator('table.suggestions tbody tr').count(),
    Math.max(1, Number(await one('SELECT count(*) FROM taskguard.schedule_suggestions()'))), 'schedules: the suggestions are listed');
  await shot(page, 'console-schedules');

  await page.goto(`${URL0}/queues`);
  const qs = await sql(`SELECT queue, count(*) FILTER (WHERE status = 'ready' AND run_at <= now()) AS ready
                          FROM taskguard.task GROUP BY queue HAVING count(*) FILTER (WHERE status IN ('ready', 'running', 'failed')) > 0`);
  bad = [];
  for (const x of qs) {
    const got = await text(page, `tr[data-queue="${x.queue}"] [data-col=ready_now]`);
    if (got !== fmt(x.ready)) bad.push(`${x.queue} ${got} (want ${x.ready})`);
  }
  is(bad.join('; '), '', 'queues: the ready depth of every queue is the task table\'s');
  const pq = qs[0].queue;
  await Promise.all([page.waitForLoadState('load'), page.click(`tr[data-queue="${pq}"] button[data-pause=pause]`)]);
  is(await one('SELECT count(*) FROM taskguard.flow_paused WHERE queue = $1 AND task_name IS NULL', [pq]), '1',
    'queues: an admin pauses a queue (taskguard.flow_paused has it)');
  is(await text(page, `tr[data-queue="${pq}"] [data-col=state] .badge`), 'paused', 'queues: and the page shows it paused');
  is(await page.locator(`tr[data-paused="${pq}"]`).count(), 1, 'queues: and lists it under Paused');
  await shot(page, 'console-queues');
  await Promise.all([page.waitForLoadState('load'), page.click(`tr[data-queue="${pq}"] button[data-pause=resume]`)]);
  is(await one('SELECT count(*) FROM taskguard.flow_paused WHERE queue = $1', [pq]), '0', 'queues: and resumes it');

  await page.goto(`${URL0}/breakers`);
  is(await text(page, 'tr[data-service=stripe] [data-col=state]'), await one(`SELECT state FROM taskguard.breaker_status WHERE service = 'stripe'`),
    'breakers: the state is breaker_status\'s');
  await Promise.all([page.waitForLoadState('load'), page.click('tr[data-service=partner-api] button[data-op=open]')]);
  is(await one(`SELECT state || ' ' || mode FROM taskguard.breaker_status WHERE service = 'partner-api'`), 'open open',
    'breakers: an admin forces one open');
  is(await text(page, 'tr[data-service=partner-api] [data-col=state]'), 'open', 'breakers: and the page shows it open');
  await shot(page, 'console-breakers');
  await Promise.all([page.waitForLoadState('load'), page.click('tr[data-service=partner-api] button[data-op=auto]')]);
  is(await one(`SELECT mode FROM taskguard.breaker_status WHERE service = 'partner-api'`), 'auto', 'breakers: back to auto');
  for (const svc of ['partner-api', 'stripe']) {
    await Promise.all([page.waitForLoadState('load'), page.click(`tr[data-service=${svc}] button[data-op=reset]`)]);
  }
  is(await one(`SELECT string_agg(service || ' ' || state || ' ' || mode, ', ' ORDER BY service) FROM taskguard.breaker_status
                 WHERE service IN ('partner-api', 'stripe')`), 'partner-api closed auto, stripe closed auto',
  'breakers: a reset closes an open one');

  // purge by age (taskguard.dlq_purge): every RESOLVED record
  await page.goto(`${URL0}/dlq`);
  await page.click('details.purge-age summary');
  await page.fill('details.purge-age input[name=days]', '0');
  page.once('dialog', (dlg) => dlg.accept());
  await Promise.all([page.waitForLoadState('load'), page.click('details.purge-age button')]);
  is(await one(`SELECT count(*) FROM taskguard.dlq WHERE status = 'RESOLVED'`), 0, 'purge by age: the RESOLVED records are gone');
  is(await text(page, '[data-count="RESOLVED"]'), '0', 'purge by age: the page counts none');

  // a phone
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${URL0}/`);
  ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'on a phone the overview needs no sideways scrolling');
  await shot(page, 'console-phone-overview');
  await page.goto(`${URL0}/dlq`);
  await shot(page, 'console-phone-dlq');
  await page.setViewportSize({ width: 1280, height: 900 });

  // ---------------------------------------------------------------- a reader
  page = await signIn(ctx, 'tgc_reader');
  is(await text(page, '[data-role]'), 'tgc_reader', 'signed in as the reader');
  await page.goto(`${URL0}/dlq`);
  is(await page.locator('button[data-action], input[name=id]').count(), 0, 'a reader sees no DLQ action and no selection');
  await page.goto(`${URL0}/breakers`);
  is(await page.locator('button[data-op]').count(), 0, 'a reader sees no breaker action');
  await page.goto(`${URL0}/retries`);
  is(await page.locator('button[data-apply]').count(), 0, 'a reader sees no advice to apply');
  await page.goto(`${URL0}/breakers`);
  const token = await page.locator('input[name=_csrf]').first().inputValue();
  const target = (await sql(`SELECT id FROM taskguard.dlq WHERE status = 'PENDING' ORDER BY id LIMIT 1`))[0].id;
  r = await post(page, '/dlq/action', [['_csrf', token], ['action', 'abandon'], ['id', target], ['back', '/dlq']]);
  is(r.status, 403, 'a forged action POST of a reader (with its own valid token) is refused');
  ok(/permission denied for function dlq_abandon/.test(r.text) && /42501/.test(r.text), 'and the refusal is PostgreSQL\'s, relayed',
    r.text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400));
  is(await one('SELECT status FROM taskguard.dlq WHERE id = $1', [target]), 'PENDING', 'and the record is unchanged');
  r = await post(page, '/breakers/action', [['_csrf', token], ['service', 'stripe'], ['op', 'open']]);
  is(r.status, 403, 'a forged breaker force of a reader is refused');
  await page.goto(`${URL0}/queues`);
  is(await page.locator('button[data-pause]').count(), 0, 'a reader sees no pause button');
  r = await post(page, '/queues/pause', [['_csrf', token], ['queue', qs[0].queue], ['op', 'pause']]);
  is(r.status, 403, 'a forged pause of a reader is refused');
  is(await one('SELECT count(*) FROM taskguard.flow_paused'), '0', 'and nothing is paused');
  await shot(page, 'console-reader-dlq');

  // ---------------------------------------------------------------- a tenant-bound admin
  page = await signIn(ctx, 'tgc_acme');
  is(await text(page, '[data-tenants]'), 'acme', 'a tenant-bound login shows its tenant');
  await page.goto(`${URL0}/dlq`);
  const tenants = await page.locator('table.dlq tbody tr[data-id] td:nth-child(4)').evaluateAll((tds) => [...new Set(tds.map((t) => t.textContent))]);
  is(tenants.join(','), 'acme', 'a tenant-bound login sees only its tenant\'s records');
  is(await text(page, '[data-count="ABANDONED"]'),
    fmt(await one(`SELECT count(*) FROM taskguard.dlq WHERE tenant = 'acme' AND status = 'ABANDONED'`)),
    'and counts only its tenant\'s');
  const other = await one(`SELECT id FROM taskguard.dlq WHERE tenant = 'globex' AND status = 'PENDING' ORDER BY id LIMIT 1`);
  const resp = await page.goto(`${URL0}/dlq/${other}`);
  is(resp.status(), 404, 'another tenant\'s record is not found');
  const tok2 = await page.locator('input[name=_csrf]').first().inputValue();
  r = await post(page, '/dlq/action', [['_csrf', tok2], ['action', 'abandon'], ['id', other], ['back', '/dlq']]);
  is(await one('SELECT status FROM taskguard.dlq WHERE id = $1', [other]), 'PENDING', 'an action on another tenant\'s record changes nothing');
  r = await post(page, '/dlq/action', [['_csrf', tok2], ['action', 'purge'], ['id', other], ['back', '/dlq']]);
  is(await one('SELECT count(*) FROM taskguard.dlq WHERE id = $1', [other]), 1, 'nor does a purge of it');
  await page.goto(`${URL0}/`);
  is(await text(page, '[data-live="dlq_depth"]'),
    fmt(await one(`SELECT count(*) FROM taskguard.dlq WHERE tenant = 'acme' AND status <> 'RESOLVED'`)), 'the tenant\'s overview counts only its tenant');
  await shot(page, 'console-tenant-dlq');

  // sign out ends the session
  await Promise.all([page.waitForLoadState('load'), page.click('header form button')]);
  const after = await page.goto(`${URL0}/dlq`);
  ok(/\/login$/.test(after.url()), 'after signing out the console asks to sign in again');
}

main().then(() => {
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}, (e) => {
  console.log(`not ok ${n + 1} - the browser run failed: ${String(e.stack || e).split('\n').slice(0, 6).join(' | ')}`);
  console.log(`1..${n + 1}`);
  process.exit(1);
});
