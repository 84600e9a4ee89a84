'use strict';
// console/test/bench.js — server time of console pages (the Server-Timing
// header's total), as bench/console_dlq.sh runs it: signs in over HTTP, then
// requests each page RUNS times and prints "metric: console_ms_<name> <median>"
// (and the best and worst in a comment).
const URL0 = process.env.CONSOLE_URL;
const ROLE = process.env.ROLE || 'tgcb_admin';
const RUNS = Number(process.env.RUNS || 7);

let cookie = '';
async function req(path, opts = {}) {
  const r = await fetch(URL0 + path, { redirect: 'manual', ...opts, headers: { cookie, ...(opts.headers || {}) } });
  const set = r.headers.getSetCookie ? r.headers.getSetCookie() : [];
  for (const c of set) {
    const [kv] = c.split(';');
    const [k] = kv.split('=');
    cookie = [...cookie.split('; ').filter((x) => x && !x.startsWith(`${k}=`)), kv].join('; ');
  }
  return r;
}
const serverMs = (r) => Number(/total;dur=([\d.]+)/.exec(r.headers.get('server-timing') || '')[1]);

async function main() {
  const login = await (await req('/login')).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(login)[1];
  const r = await req('/login', { method: 'POST', body: new URLSearchParams({ _csrf: csrf, role: ROLE, password: process.env.PASSWORD || 'x' }) });
  if (r.status !== 303) throw new Error(`sign-in failed: ${r.status} ${await r.text()}`);
  // a cursor twenty pages deep, by following "older"
  let deep = '/dlq';
  for (let i = 0; i < 20; i++) {
    const body = await (await req(deep)).text();
    deep = /href="([^"]+)" rel="next"/.exec(body)[1].replace(/&amp;/g, '&');
  }
  const first = /href="\/dlq\/(\d+)"/.exec(await (await req('/dlq')).text())[1];
  const pages = JSON.parse(process.env.PAGES || 'null') || [
    ['dlq_first_page', '/dlq'],
    ['dlq_status', '/dlq?status=PENDING'],
    ['dlq_status_type', '/dlq?status=ABANDONED&type=TRANSIENT_NETWORK'],
    ['dlq_type', '/dlq?type=SYSTEM_DISK_FULL'],
    ['dlq_task', '/dlq?task=task_7'],
    ['dlq_tenant', '/dlq?tenant=tenant2'],
    ['dlq_status_task_tenant', '/dlq?status=ABANDONED&task=task_7&tenant=tenant3'],
    ['dlq_date', '/dlq?from=2000-01-01&to=2999-12-31'],
    ['dlq_search', '/dlq?q=number+99999'],
    ['dlq_page_21', deep],
    ['dlq_record', `/dlq/${first}`],
    ['overview', '/'],
  ];
  for (const [name, path] of pages) {
    const ms = [];
    for (let i = 0; i < RUNS; i++) {
      const res = await req(path);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      ms.push(serverMs(res));
    }
    ms.sort((a, b) => a - b);
    console.log(`metric: console_ms_${name} ${ms[Math.floor(ms.length / 2)].toFixed(1)}`);
    console.log(`# ${name} ${path.slice(0, 80)}: best ${ms[0].toFixed(1)} ms, worst ${ms[ms.length - 1].toFixed(1)} ms`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
