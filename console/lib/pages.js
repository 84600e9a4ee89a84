'use strict';
// lib/pages.js — one handler per page.  Each reads taskguard's views and
// functions as the signed-in role (ctx.q) and returns { title, body }.  SQL
// text is constant or assembled from constant fragments; every value is a
// bind parameter ($n).
const { html, num, time, interval } = require('./html');
const charts = require('./charts');
const { csrf } = require('./layout');

const STATUSES = ['PENDING', 'RETRYING', 'ABANDONED', 'RESOLVED'];
const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'DEFERRED'];
const PAGE = 50;

// What the role may do, asked of PostgreSQL (the console keeps no list of its
// own): a button is shown only when the role may run the function behind it.
const CAPS_SQL = `
SELECT has_function_privilege('taskguard.dlq_retry(bigint[],taskguard.priority,interval)', 'EXECUTE') AS retry,
       has_function_privilege('taskguard.dlq_abandon(bigint[],text)', 'EXECUTE') AS abandon,
       has_function_privilege('taskguard.dlq_resolve(bigint[],text)', 'EXECUTE') AS resolve,
       coalesce(has_function_privilege(to_regprocedure('taskguard.dlq_purge_records(bigint[])'), 'EXECUTE'), false) AS purge,
       has_function_privilege('taskguard.dlq_purge(interval,taskguard.dlq_status[])', 'EXECUTE') AS purge_age,
       has_function_privilege('taskguard.breaker_force(text,text)', 'EXECUTE') AS breaker_force,
       has_function_privilege('taskguard.breaker_reset(text)', 'EXECUTE') AS breaker_reset,
       coalesce(has_function_privilege(to_regprocedure('taskguard.retry_apply_advice(text,taskguard.failure_type)'), 'EXECUTE'), false) AS apply_advice,
       -- pause/resume run as the caller and write flow_pause: admins only
       coalesce(has_function_privilege(to_regprocedure('taskguard.pause(text,text)'), 'EXECUTE')
                AND has_table_privilege('taskguard.flow_pause', 'INSERT'), false) AS pause`;

async function caps(ctx) {
  const r = await ctx.q(CAPS_SQL);
  const c = r.rows[0];
  c.dlq = c.retry || c.abandon || c.resolve || c.purge;
  return c;
}

const badge = (s) => html`<span class="badge b-${String(s).toLowerCase()}">${s}</span>`;

function table(headers, rows, { cls = '' } = {}) {
  return html`<div class="scroll"><table class="${cls}"><thead><tr>${headers.map((h) => html`<th>${h}</th>`)}</tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="${headers.length}" class="muted">Nothing here.</td></tr>`}</tbody></table></div>`;
}

// ------------------------------------------------------------------ overview

const OVERVIEW_NUMBERS = [
  ['dlq_depth', 'DLQ depth', '/dlq'], ['dlq_pending', 'pending', '/dlq?status=PENDING'],
  ['dlq_retrying', 'retrying', '/dlq?status=RETRYING'], ['dlq_abandoned', 'abandoned', '/dlq?status=ABANDONED'],
  ['failures_1h', 'failures, 1 h', '/taxonomy'], ['abandoned_24h', 'abandoned, 24 h', '/dlq?status=ABANDONED'],
  ['open_breakers', 'open breakers', '/breakers'], ['running', 'running', '/queues'], ['ready', 'ready', '/queues'],
  ['retry_success_pct', 'retry success %', '/retries'], ['idempotency_hit_rate_pct', 'duplicate %', '/idempotency'],
  ['schedule_health', 'schedule health', '/schedules'],
];

async function dashboardRow(ctx) {
  return (await ctx.q('SELECT * FROM taskguard.dashboard')).rows[0];
}

async function overview(ctx) {
  const [d, alerts, breakers, recent] = await Promise.all([
    dashboardRow(ctx),
    ctx.q('SELECT alert, level, value, threshold, detail FROM taskguard.alerts ORDER BY level DESC, alert'),
    ctx.q(`SELECT service, state, mode, failures, opened_at, next_probe_at FROM taskguard.breaker_status
            WHERE state <> 'closed' ORDER BY service`),
    ctx.q(`SELECT id, task_name, tenant, status, failure_type, left(message, 140) AS message, last_failed_at
             FROM taskguard.dlq ORDER BY last_failed_at DESC, id DESC LIMIT 10`),
  ]);
  const body = html`
<section class="overview" data-live-src="/live/overview">
  <div class="card health">${charts.gauge(d.health_score)}<div>health score</div></div>
  <div class="numbers">${OVERVIEW_NUMBERS.map(([k, label, href]) => html`<a class="num" href="${href}" id="n-${k}"><b data-live="${k}">${num(d[k])}</b><span>${label}</span></a>`)}</div>
</section>
<p class="muted small">Updated <span data-live-time>${time(d.generated_at)}</span> · refreshes every 5 s</p>
<h2>Alerts</h2>
${table(['alert', 'level', 'value', 'threshold', 'detail'], alerts.rows.map((a) => html`<tr class="alert-row"><td>${a.alert}</td><td>${badge(a.level)}</td><td class="r">${num(a.value)}</td><td class="r">${num(a.threshold)}</td><td>${a.detail}</td></tr>`), { cls: 'alerts' })}
<h2>Open circuit breakers</h2>
${table(['service', 'state', 'mode', 'failures', 'opened', 'next probe'], breakers.rows.map((b) => html`<tr><td>${b.service}</td><td>${badge(b.state)}</td><td>${b.mode}</td><td class="r">${num(b.failures)}</td><td>${time(b.opened_at)}</td><td>${time(b.next_probe_at)}</td></tr>`), { cls: 'breakers' })}
<h2>Recent failures</h2>
${table(['id', 'task', 'tenant', 'status', 'failure type', 'message', 'failed'], recent.rows.map((r) => html`<tr><td><a href="/dlq/${r.id}">${r.id}</a></td><td>${r.task_name}</td><td>${r.tenant}</td><td>${badge(r.status)}</td><td>${r.failure_type}</td><td class="msg">${r.message}</td><td>${time(r.last_failed_at)}</td></tr>`), { cls: 'recent' })}`;
  return { title: 'Overview', body };
}

// The live part of the overview: the dashboard row as JSON (server-sent events).
async function liveOverview(ctx) {
  const d = await dashboardRow(ctx);
  return d;
}

// ------------------------------------------------------------------ dead-letter queue

// The DLQ filters of a query string, validated (unknown values are dropped).
function dlqFilters(url) {
  const p = url.searchParams;
  const f = {};
  const status = p.get('status');
  if (STATUSES.includes(status)) f.status = status;
  const ft = p.get('type');
  if (ft && /^[A-Z_]{1,64}$/.test(ft)) f.type = ft;
  for (const k of ['task', 'tenant', 'q']) {
    const v = (p.get(k) || '').trim();
    if (v) f[k] = v.slice(0, 200);
  }
  for (const k of ['from', 'to']) {
    const v = p.get(k) || '';
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) f[k] = v;
  }
  return f;
}

// WHERE clause and parameters of the filters: constant fragments only.
function dlqWhere(f, params) {
  const w = [];
  const add = (frag, v) => { params.push(v); w.push(frag.replace('?', `$${params.length}`)); };
  if (f.status) add('d.status = ?::taskguard.dlq_status', f.status);
  if (f.type) add('d.failure_type = ?::taskguard.failure_type', f.type);
  if (f.task) add('d.task_name = ?', f.task);
  if (f.tenant) add('d.tenant = ?', f.tenant);
  // dates are whole UTC days; "to" includes its day
  if (f.from) add(`d.last_failed_at >= (?::date)::timestamp AT TIME ZONE 'UTC'`, f.from);
  if (f.to) add(`d.last_failed_at < ((?::date) + 1)::timestamp AT TIME ZONE 'UTC'`, f.to);
  if (f.q) add(`d.message ILIKE ? ESCAPE '\\'`, `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  return w;
}

function qs(obj) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

// Keyset cursor: "<last_failed_at as PostgreSQL prints it>|<id>".
function parseCursor(v) {
  if (!v) return null;
  const m = /^([0-9:. +-]{10,40})\|(\d{1,19})$/.exec(v);
  return m ? { t: m[1], id: m[2] } : null;
}

const DLQ_COLUMNS = `d.id, d.task_name, d.queue, d.tenant, d.status, d.failure_type, d.error_type,
       left(d.message, 160) AS message, d.retry_count, d.max_retries, d.priority,
       d.last_failed_at, d.last_failed_at::text AS cursor_t, d.next_retry_at`;

// One page of the DLQ, newest first, by keyset: ?before=cursor (older) or
// ?after=cursor (newer).  LIMIT PAGE + 1 tells whether there is more.
async function dlqPage(ctx, f) {
  const p = ctx.url.searchParams;
  const before = parseCursor(p.get('before'));
  const after = before ? null : parseCursor(p.get('after'));
  const params = [];
  const w = dlqWhere(f, params);
  if (before) {
    params.push(before.t, before.id);
    w.push(`(d.last_failed_at, d.id) < ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
  } else if (after) {
    params.push(after.t, after.id);
    w.push(`(d.last_failed_at, d.id) > ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
  }
  const order = after ? 'ASC' : 'DESC';
  const sql = `SELECT ${DLQ_COLUMNS} FROM taskguard.dlq d
    ${w.length ? `WHERE ${w.join(' AND ')}` : ''}
    ORDER BY d.last_failed_at ${order}, d.id ${order} LIMIT ${PAGE + 1}`;
  const r = await ctx.q(sql, params);
  let rows = r.rows;
  const more = rows.length > PAGE;
  rows = rows.slice(0, PAGE);
  if (after) rows.reverse();
  return {
    rows,
    older: (after || more) && rows.length ? `${rows[rows.length - 1].cursor_t}|${rows[rows.length - 1].id}` : null,
    newer: (before || (after && more)) && rows.length ? `${rows[0].cursor_t}|${rows[0].id}` : null,
  };
}

async function statusCounts(ctx) {
  const r = await ctx.q(`SELECT d.dlq_pending AS "PENDING", d.dlq_retrying AS "RETRYING", d.dlq_abandoned AS "ABANDONED",
      (SELECT coalesce(sum(records - open_records), 0)::bigint FROM taskguard.failure_distribution) AS "RESOLVED"
    FROM taskguard.dashboard d`);
  return r.rows[0];
}

async function failureTypes(ctx) {
  const r = await ctx.q('SELECT unnest(enum_range(NULL::taskguard.failure_type))::text AS t');
  return r.rows.map((x) => x.t);
}

function dlqActionBar(ctx, c, single) {
  return html`<div class="actions">
${c.retry ? html`<span class="group"><button name="action" value="retry" data-action="retry">Retry</button>
  <label>at <select name="priority"><option value="">its priority</option>${PRIORITIES.map((x) => html`<option>${x}</option>`)}</select></label></span>` : ''}
${c.abandon ? html`<button name="action" value="abandon" data-action="abandon">Abandon</button>` : ''}
${c.resolve ? html`<button name="action" value="resolve" data-action="resolve">Resolve</button>` : ''}
${c.purge ? html`<button name="action" value="purge" data-action="purge" class="danger" data-confirm="Delete the selected records for good?">Purge</button>` : ''}
${c.abandon || c.resolve ? html`<input name="note" placeholder="note (optional)" maxlength="500">` : ''}
<button name="action" value="export" data-action="export" class="secondary">Export CSV</button>
${single ? '' : html`<span class="muted small" data-selected>0 selected</span>`}
</div>`;
}

async function dlq(ctx) {
  const f = dlqFilters(ctx.url);
  const [c, counts, types, pg] = await Promise.all([caps(ctx), statusCounts(ctx), failureTypes(ctx), dlqPage(ctx, f)]);
  const back = ctx.url.pathname + ctx.url.search;
  const filterForm = html`<form method="get" action="/dlq" class="filters">
<label>Status <select name="status"><option value="">all</option>${STATUSES.map((s) => html`<option${f.status === s ? html` selected` : ''}>${s}</option>`)}</select></label>
<label>Failure type <select name="type"><option value="">all</option>${types.map((t) => html`<option${f.type === t ? html` selected` : ''}>${t}</option>`)}</select></label>
<label>Task <input name="task" value="${f.task || ''}" size="14"></label>
<label>Tenant <input name="tenant" value="${f.tenant || ''}" size="10"></label>
<label>From <input type="date" name="from" value="${f.from || ''}"></label>
<label>To <input type="date" name="to" value="${f.to || ''}"></label>
<label>Message <input type="search" name="q" value="${f.q || ''}" placeholder="search in messages"></label>
<button>Filter</button> <a href="/dlq">clear</a></form>`;
  const tabs = html`<p class="tabs">${STATUSES.map((s) => html`<a href="/dlq${qs({ ...f, status: s })}" class="${f.status === s ? 'on' : ''}">${s} <b data-count="${s}">${num(counts[s])}</b></a>`)}</p>`;
  const rows = pg.rows.map((r) => html`<tr data-id="${r.id}">
${c.dlq ? html`<td><input type="checkbox" name="id" value="${r.id}" aria-label="select ${r.id}"></td>` : ''}
<td><a href="/dlq/${r.id}">${r.id}</a></td><td>${r.task_name}</td><td>${r.tenant}</td><td>${badge(r.status)}</td>
<td>${r.failure_type}</td><td class="msg" title="${r.error_type}">${r.message}</td><td class="r">${r.retry_count}/${r.max_retries}</td>
<td>${r.priority}</td><td>${time(r.last_failed_at)}</td><td>${r.status === 'PENDING' ? time(r.next_retry_at) : ''}</td></tr>`);
  const headers = [...(c.dlq ? [html`<input type="checkbox" data-select-all aria-label="select all">`] : []),
    'id', 'task', 'tenant', 'status', 'failure type', 'message', 'retries', 'priority', 'last failed', 'next retry'];
  const nav = html`<p class="pager">
${pg.newer ? html`<a href="/dlq${qs({ ...f, after: pg.newer })}" rel="prev">← newer</a>` : html`<span class="muted">← newer</span>`}
<a href="/dlq${qs(f)}">newest</a>
${pg.older ? html`<a href="/dlq${qs({ ...f, before: pg.older })}" rel="next">older →</a>` : html`<span class="muted">older →</span>`}
<a href="/dlq/export.csv${qs(f)}" class="export">Export all matching (CSV)</a></p>`;
  const list = c.dlq
    ? html`<form method="post" action="/dlq/action" id="bulk">${csrf(ctx.s)}<input type="hidden" name="back" value="${back}">
${dlqActionBar(ctx, c, false)}${table(headers, rows, { cls: 'dlq' })}</form>`
    : table(headers, rows, { cls: 'dlq' });
  const purgeAge = c.purge_age ? html`<details class="purge-age"><summary>Purge old records</summary>
<form method="post" action="/dlq/purge-old">${csrf(ctx.s)}
<label>older than <input type="number" name="days" value="30" min="0" max="36500"> days</label>
${STATUSES.map((s) => html`<label><input type="checkbox" name="status" value="${s}"${s === 'RESOLVED' ? html` checked` : ''}> ${s}</label>`)}
<button class="danger" data-confirm="Delete these records for good?">Purge</button></form></details>` : '';
  return { title: 'Dead-letter queue', body: html`${tabs}${filterForm}${nav}${list}${nav}${purgeAge}` };
}

async function dlqRecord(ctx, id) {
  const [c, r] = await Promise.all([caps(ctx), ctx.q('SELECT * FROM taskguard.dlq WHERE id = $1', [id])]);
  const d = r.rows[0];
  if (!d) return null;
  // Its failed attempts: failure_event rows of this record, found through the
  // time index (the record's first to last failure) rather than a new index.
  const [ev, task] = await Promise.all([
    ctx.q(`SELECT e.time, e.failure_type, e.error_type, e.error, e.retry_count, e.action, e.confidence, e.retry_delay
             FROM taskguard.failure_event e
            WHERE e.failure_id = $1 AND e.time >= $2::timestamptz - interval '1 second'
              AND e.time <= $3::timestamptz + interval '1 second'
            ORDER BY e.time, e.retry_count`, [id, d.first_failed_at, d.last_failed_at]),
    d.task_id ? ctx.q('SELECT id, status, attempts, max_attempts, run_at, queue FROM taskguard.task WHERE id = $1', [d.task_id])
      : Promise.resolve({ rows: [] }),
  ]);
  const t = task.rows[0];
  const field = (k, v) => html`<tr><th>${k}</th><td>${v}</td></tr>`;
  const body = html`
<p><a href="/dlq">← dead-letter queue</a></p>
<div class="detail">
<table class="kv">
${field('status', badge(d.status))}
${field('task', html`${d.task_name}${d.task_id ? html` <span class="muted">(task ${d.task_id}${t ? html`, ${t.status}, attempt ${t.attempts}${t.max_attempts ? html` of ${t.max_attempts}` : ''}` : ''})</span>` : ''}`)}
${field('queue', d.queue)}${field('tenant', d.tenant)}${field('service', d.service)}
${field('failure type', html`${d.failure_type} <span class="muted">confidence ${num(d.confidence)}${d.rule ? html`, rule ${d.rule}` : ''}</span>`)}
${field('remediation', d.remediation)}${field('alert level', badge(d.alert_level))}
${field('error type', d.error_type)}
${field('retries', html`${d.retry_count} of ${d.max_retries}`)}${field('priority', d.priority)}
${field('first failed', time(d.first_failed_at))}${field('last failed', time(d.last_failed_at))}
${field('next retry', d.next_retry_at ? html`<span data-countdown="${d.next_retry_at.toISOString()}" id="countdown">${time(d.next_retry_at)}</span>` : '–')}
${d.resolved_at ? field('resolved', time(d.resolved_at)) : ''}${field('resolution', d.resolution)}
${d.task_ref ? field('task ref', d.task_ref) : ''}
</table>
<div><h2>Message</h2><pre class="message">${d.message}</pre>
<h2>Arguments</h2><pre>${JSON.stringify(d.args, null, 2)}</pre>
<h2>Context</h2><pre>${JSON.stringify(d.context, null, 2)}</pre></div>
</div>
<form method="post" action="/dlq/action" id="one">${csrf(ctx.s)}<input type="hidden" name="id" value="${d.id}">
<input type="hidden" name="back" value="/dlq/${d.id}">${dlqActionBar(ctx, c, true)}</form>
<h2>Failure events</h2>
${table(['time', 'retry', 'failure type', 'error type', 'error', 'action', 'confidence', 'retry delay'], ev.rows.map((e) => html`<tr><td>${time(e.time)}</td><td class="r">${e.retry_count}</td><td>${e.failure_type}</td><td>${e.error_type}</td><td class="msg">${e.error}</td><td>${e.action}</td><td class="r">${num(e.confidence)}</td><td>${interval(e.retry_delay)}</td></tr>`), { cls: 'events' })}`;
  return { title: `Dead letter ${d.id}`, body };
}

// ------------------------------------------------------------------ taxonomy

async function taxonomy(ctx) {
  const hours = ctx.url.searchParams.get('range') === '7d' ? 168 : 24;
  const [dist, trend] = await Promise.all([
    ctx.q(`SELECT * FROM taskguard.failure_distribution ORDER BY records DESC, failures_total DESC, failure_type`),
    ctx.q(`SELECT time, failure_type::text AS failure_type, failures FROM taskguard.failure_trend
            WHERE time >= date_trunc('hour', now()) - make_interval(hours => $1) ORDER BY time`, [hours]),
  ]);
  const used = dist.rows.filter((r) => Number(r.records) > 0 || Number(r.failures_total) > 0);
  const byType = new Map();
  for (const r of trend.rows) {
    if (!byType.has(r.failure_type)) byType.set(r.failure_type, []);
    byType.get(r.failure_type).push([r.time, r.failures]);
  }
  const now = new Date();
  const body = html`
<h2>Dead-letter records by failure type</h2>
${charts.hbars(used.map((r) => ({ label: r.failure_type, value: r.records })))}
<h2>Failed attempts per hour <small><a href="/taxonomy"${hours === 24 ? html` class="on"` : ''}>24 h</a> · <a href="/taxonomy?range=7d"${hours === 168 ? html` class="on"` : ''}>7 days</a></small></h2>
${charts.lines([...byType].map(([name, points]) => ({ name, points })), { from: new Date(now - hours * 3600e3), to: now })}
<h2>Distribution</h2>
${table(['failure type', 'remediation', 'alert', 'retryable', 'records', 'open', '%', 'avg confidence', 'failures 24 h', 'failures ever'],
    dist.rows.map((r) => html`<tr data-type="${r.failure_type}"><td>${r.failure_type}</td><td>${r.remediation}</td><td>${badge(r.alert_level)}</td><td>${r.retryable ? 'yes' : 'no'}</td>
<td class="r" data-col="records">${num(r.records)}</td><td class="r" data-col="open_records">${num(r.open_records)}</td><td class="r">${num(r.pct)}</td><td class="r">${num(r.avg_confidence)}</td>
<td class="r" data-col="failures_24h">${num(r.failures_24h)}</td><td class="r">${num(r.failures_total)}</td></tr>`), { cls: 'distribution' })}`;
  return { title: 'Failure taxonomy', body };
}

// ------------------------------------------------------------------ retries

async function retries(ctx) {
  const hasAdvice = (await ctx.q(`SELECT to_regclass('taskguard.retry_advice') IS NOT NULL AS ok`)).rows[0].ok;
  const [c, eff, adv] = await Promise.all([
    caps(ctx),
    ctx.q('SELECT * FROM taskguard.retry_effectiveness ORDER BY retried DESC, failure_type'),
    hasAdvice ? ctx.q(`SELECT a.*, a.recommended_max_retries IS NOT NULL
                              AND (a.recommended_max_retries, a.recommended_base_delay, a.recommended_max_delay,
                                   a.recommended_multiplier)
                                  IS DISTINCT FROM (a.current_max_retries, a.current_base_delay, a.current_max_delay,
                                                    a.current_multiplier) AS can_apply
                         FROM taskguard.retry_advice a ORDER BY a.sample DESC, a.task_name, a.failure_type LIMIT 100`)
      : Promise.resolve(null),
  ]);
  const used = eff.rows.filter((r) => Number(r.retried) > 0 || Number(r.in_progress) > 0);
  const advice = adv ? html`<h2>Advice <small class="muted">taskguard.retry_advice</small></h2>
${table(['task', 'failure type', 'sample', 'current', 'recommended', 'recovered now → then', 'attempts wasted now → then', 'reason', ...(c.apply_advice ? [''] : [])],
    adv.rows.map((a) => html`<tr><td>${a.task_name}</td><td>${a.failure_type}</td><td class="r">${num(a.sample)}</td>
<td>${a.current_max_retries} × ${interval(a.current_base_delay)}…${interval(a.current_max_delay)}</td>
<td>${a.recommended_max_retries === null ? '–' : html`${a.recommended_max_retries} × ${interval(a.recommended_base_delay)}…${interval(a.recommended_max_delay)}`}</td>
<td class="r">${num(a.current_recovered)} → ${num(a.recommended_recovered)}</td><td class="r">${num(a.current_attempts_wasted)} → ${num(a.recommended_attempts_wasted)}</td>
<td>${a.reason}</td>
${c.apply_advice ? html`<td>${!a.can_apply ? '' : html`<form method="post" action="/retries/apply" class="inline">${csrf(ctx.s)}<input type="hidden" name="task_name" value="${a.task_name}"><input type="hidden" name="failure_type" value="${a.failure_type}"><button data-apply="${a.task_name}">Apply</button></form>`}</td>` : ''}</tr>`), { cls: 'advice' })}`
    : html`<p class="muted">Retry advice is not installed in this database.</p>`;
  const body = html`
<h2>Success rate of retries by failure type</h2>
${charts.hbars(used.filter((r) => r.success_rate_pct !== null).map((r) => ({ label: r.failure_type, value: r.success_rate_pct })), { unit: ' %' })}
${table(['failure type', 'retryable', 'max retries', 'retried', 'recovered', 'exhausted', 'in progress', 'success %', 'avg retries', '% of max', 'retries ever'],
    eff.rows.map((r) => html`<tr data-type="${r.failure_type}"><td>${r.failure_type}</td><td>${r.retryable ? 'yes' : 'no'}</td><td class="r">${r.max_retries}</td>
<td class="r" data-col="retried">${num(r.retried)}</td><td class="r" data-col="recovered">${num(r.recovered)}</td><td class="r">${num(r.exhausted)}</td><td class="r">${num(r.in_progress)}</td>
<td class="r" data-col="success_rate_pct">${num(r.success_rate_pct)}</td><td class="r">${num(r.avg_retries)}</td><td class="r">${num(r.avg_retries_pct_of_max)}</td><td class="r">${num(r.retries_total)}</td></tr>`), { cls: 'effectiveness' })}
${advice}`;
  return { title: 'Retries', body };
}

// ------------------------------------------------------------------ idempotency

async function idempotency(ctx) {
  const [stats, d] = await Promise.all([
    ctx.q('SELECT * FROM taskguard.idempotency_stats ORDER BY checks DESC, task_name'),
    dashboardRow(ctx),
  ]);
  const body = html`
<p class="big">Overall duplicate rate <b data-overall>${num(d.idempotency_hit_rate_pct)} %</b> <span class="muted">(taskguard.dashboard)</span></p>
<h2>Duplicate rate by task</h2>
${charts.hbars(stats.rows.map((r) => ({ label: r.task_name, value: r.hit_rate_pct ?? 0, title: `${r.task_name}: ${r.duplicates} duplicates of ${r.checks} checks` })), { unit: ' %' })}
${table(['task', 'checks', 'duplicates', 'hit rate %', 'last duplicate'], stats.rows.map((r) => html`<tr data-task="${r.task_name}"><td>${r.task_name}</td>
<td class="r" data-col="checks">${num(r.checks)}</td><td class="r" data-col="duplicates">${num(r.duplicates)}</td><td class="r" data-col="hit_rate_pct">${num(r.hit_rate_pct)}</td><td>${time(r.last_duplicate_at)}</td></tr>`), { cls: 'idem' })}`;
  return { title: 'Idempotency', body };
}

// ------------------------------------------------------------------ schedules

async function schedules(ctx) {
  const [health, load, problems, sugg, hot] = await Promise.all([
    ctx.q('SELECT * FROM taskguard.schedule_health()'),
    ctx.q(`SELECT bucket_start, starting, running, utilization, hotspot
             FROM taskguard.schedule_load('24 hours', '1 minute') ORDER BY bucket_start`),
    ctx.q('SELECT * FROM taskguard.validate_schedules() ORDER BY problem, job'),
    ctx.q('SELECT * FROM taskguard.schedule_suggestions() ORDER BY job'),
    ctx.q('SELECT * FROM taskguard.schedule_hotspots ORDER BY utilization DESC, bucket_start LIMIT 20'),
  ]);
  const h = health.rows[0];
  // 24 rows (hours from now) × 60 minutes
  const rows = [];
  for (let i = 0; i < load.rows.length; i += 60) {
    const chunk = load.rows.slice(i, i + 60);
    rows.push({
      label: chunk[0].bucket_start.toISOString().slice(11, 16),
      cells: chunk.map((b) => ({ value: Number(b.utilization),
        title: `${b.bucket_start.toISOString().slice(0, 16).replace('T', ' ')} UTC: ${b.starting} starting, ${b.running} running, ${Math.round(b.utilization * 100)} %` })),
    });
  }
  const body = html`
<div class="numbers small-nums">
<span class="num"><b data-health="score">${h.score}</b><span>health score</span></span>
<span class="num"><b data-health="hotspots">${h.hotspots}</b><span>hotspots</span></span>
<span class="num"><b data-health="duplicates">${h.duplicates}</b><span>duplicates</span></span>
<span class="num"><b data-health="overlaps">${h.overlaps}</b><span>overlaps</span></span>
<span class="num"><b data-health="invalid">${h.invalid}</b><span>invalid</span></span></div>
<h2>Load, next 24 hours <small class="muted">one cell a minute, one row an hour (UTC); red: above 70 % of capacity</small></h2>
${charts.heatmap(rows)}
<h2>Problems</h2>
${table(['job', 'problem', 'detail'], problems.rows.map((p) => html`<tr class="problem-${p.problem}"><td>${p.job}</td><td>${badge(p.problem)}</td><td>${p.detail}</td></tr>`), { cls: 'problems' })}
<h2>Suggestions</h2>
${table(['job', 'current', 'suggested', 'peak before', 'peak after'], sugg.rows.map((s) => html`<tr><td>${s.job}</td><td><code>${s.current_schedule}</code></td><td><code>${s.suggested_schedule}</code></td><td class="r">${num(s.peak_before)}</td><td class="r">${num(s.peak_after)}</td></tr>`), { cls: 'suggestions' })}
<h2>Hotspots</h2>
${table(['minute', 'starting', 'running', 'utilization', 'jobs'], hot.rows.map((x) => html`<tr><td>${time(x.bucket_start)}</td><td class="r">${x.starting}</td><td class="r">${x.running}</td><td class="r">${Math.round(x.utilization * 100)} %</td><td>${(x.jobs || []).join(', ')}</td></tr>`), { cls: 'hotspots' })}`;
  return { title: 'Schedules', body };
}

// ------------------------------------------------------------------ breakers

async function breakers(ctx) {
  const [c, b] = await Promise.all([caps(ctx), ctx.q('SELECT * FROM taskguard.breaker_status ORDER BY service')]);
  const admin = c.breaker_force || c.breaker_reset;
  const act = (service) => html`<td class="ops">
${c.breaker_force ? html`<form method="post" action="/breakers/action" class="inline">${csrf(ctx.s)}<input type="hidden" name="service" value="${service}">
<button name="op" value="open" data-op="open">Force open</button><button name="op" value="disabled" data-op="disabled">Disable</button><button name="op" value="auto" data-op="auto">Auto</button>
${c.breaker_reset ? html`<button name="op" value="reset" data-op="reset">Reset</button>` : ''}</form>` : ''}</td>`;
  const body = html`
${table(['service', 'state', 'mode', 'failures', 'successes', 'opened', 'next probe', 'changed', ...(admin ? [''] : [])],
    b.rows.map((r) => html`<tr data-service="${r.service}"><td>${r.service}</td><td data-col="state">${badge(r.state)}</td><td data-col="mode">${r.mode}</td>
<td class="r">${num(r.failures)}</td><td class="r">${num(r.successes)}</td><td>${time(r.opened_at)}</td><td>${time(r.next_probe_at)}</td><td>${time(r.changed_at)}</td>${admin ? act(r.service) : ''}</tr>`), { cls: 'breakers' })}
<p class="muted small">Force open: a provider's maintenance. Disable: always allow (still counted). Auto: normal operation. Reset: closed, counters cleared.</p>`;
  return { title: 'Circuit breakers', body };
}

// ------------------------------------------------------------------ queues

async function queues(ctx) {
  const [c, r, p] = await Promise.all([caps(ctx), ctx.q(`
    SELECT t.queue,
           count(*) FILTER (WHERE t.status = 'ready' AND t.run_at <= now()) AS ready_now,
           count(*) FILTER (WHERE t.status = 'ready' AND t.run_at > now()) AS scheduled,
           count(*) FILTER (WHERE t.status = 'running') AS running,
           count(*) FILTER (WHERE t.status = 'failed') AS failed,
           min(t.run_at) FILTER (WHERE t.status = 'ready' AND t.run_at <= now()) AS oldest_ready
      FROM taskguard.task t WHERE t.status IN ('ready', 'running', 'failed')
     GROUP BY t.queue ORDER BY t.queue`),
    ctx.q(`SELECT queue, task_name, paused_at, paused_by, waiting FROM taskguard.flow_paused
            ORDER BY queue, task_name NULLS FIRST`)]);
  // a whole queue paused: its row says so; task types paused are listed below
  const whole = new Set(p.rows.filter((x) => x.task_name === null).map((x) => x.queue));
  const op = (queue, taskName, paused) => html`<form method="post" action="/queues/pause" class="inline">${csrf(ctx.s)}
<input type="hidden" name="queue" value="${queue}">${taskName === null ? '' : html`<input type="hidden" name="task_name" value="${taskName}">`}
<button name="op" value="${paused ? 'resume' : 'pause'}" data-pause="${paused ? 'resume' : 'pause'}">${paused ? 'Resume' : 'Pause'}</button></form>`;
  const body = html`
<h2>Depth (ready now)</h2>
${charts.hbars(r.rows.map((q) => ({ label: q.queue, value: q.ready_now })))}
${table(['queue', 'ready now', 'scheduled', 'running', 'failed (waiting for a retry or an operator)', 'oldest ready', 'state'],
    r.rows.map((q) => html`<tr data-queue="${q.queue}"><td>${q.queue}</td><td class="r" data-col="ready_now">${num(q.ready_now)}</td><td class="r">${num(q.scheduled)}</td>
<td class="r" data-col="running">${num(q.running)}</td><td class="r">${num(q.failed)}</td><td>${time(q.oldest_ready)}</td>
<td data-col="state">${whole.has(q.queue) ? badge('paused') : badge('running')}${c.pause ? op(q.queue, null, whole.has(q.queue)) : ''}</td></tr>`), { cls: 'queues' })}
<h2>Paused</h2>
${table(['queue', 'task type', 'paused', 'by', 'tasks waiting', ...(c.pause ? [''] : [])],
    p.rows.map((x) => html`<tr data-paused="${x.queue}${x.task_name === null ? '' : `/${x.task_name}`}"><td>${x.queue}</td><td>${x.task_name === null ? 'every type' : x.task_name}</td>
<td>${time(x.paused_at)}</td><td>${x.paused_by}</td><td class="r">${num(x.waiting)}</td>${c.pause ? html`<td>${op(x.queue, x.task_name, true)}</td>` : ''}</tr>`), { cls: 'paused' })}
<p class="muted small">A paused queue (or task type in it) hands out nothing, loses nothing, uses no attempts and keeps its retries due
(<code>taskguard.pause(queue, task_name)</code>, <code>taskguard.resume(…)</code>; admins). Limits: <code>taskguard.flow_status</code>.</p>`;
  return { title: 'Queues', body };
}

module.exports = {
  overview, liveOverview, dlq, dlqRecord, dlqFilters, dlqWhere, taxonomy, retries, idempotency, schedules,
  breakers, queues, caps, STATUSES, PRIORITIES,
};
