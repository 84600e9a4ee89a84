'use strict';
// Summarise bench/peers results (JSON lines from run.sh): a table, metric:
// lines (medians over rounds) and ratio: lines (medians of per-round ratios).
const fs = require('fs');
const { median } = require('./common');

const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const peers = ['graphile-worker', 'pg-boss'];
const names = ['taskguard', ...peers];
const by = (sys) => rows.filter((r) => r.system === sys);
const med = (sys, key) => {
    const xs = by(sys).map((r) => r[key]).filter((x) => typeof x === 'number');
    return xs.length ? median(xs) : NaN;
};
const latencies = (sys) => by(sys).flatMap((r) => (r.latency ? r.latency.samples_ms : []));
const rounds = [...new Set(rows.filter((r) => r.round).map((r) => r.round))];
// one system's row of round n ({} when it did not run)
const at = (n, sys) => rows.find((r) => r.round === n && r.system === sys) || {};

// per-round ratio of taskguard to the best peer of that round
const roundRatio = (key) => median(rounds.map((n) => {
    const get = (sys) => at(n, sys)[key];
    return get('taskguard') / Math.max(...peers.map(get));
}));

const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const us = (x) => (Number.isFinite(x) ? Math.round(x * 1000).toString() : '–');
console.log(`\n| system | version | enqueue 1-by-1 jobs/s | enqueue batch 1000 jobs/s | single jobs/s | batched jobs/s | latency median ms (n) | CPU µs/job single | CPU µs/job batched |`);
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const s of names) {
    const v = (by(s)[0] || {}).version || '(this branch)';
    const lat = latencies(s);
    console.log(`| ${s} | ${v} | ${f0(med(s, 'enqueue_single'))} | ${f0(med(s, 'enqueue_batched'))} | ${f0(med(s, 'single'))} | ` +
                `${f0(med(s, 'batched'))} | ${f1(median(lat))} (${lat.length}) | ` +
                `${us(med(s, 'single_cpu_ms_per_job'))} | ${us(med(s, 'batched_cpu_ms_per_job'))} |`);
}
console.log(`| taskguard, single without piggyback | | | | ${f0(med('taskguard', 'single_strict'))} | | | ` +
            `${us(med('taskguard', 'single_strict_cpu_ms_per_job'))} | |`);
if (by('floor').length) {
    const lat = latencies('floor');
    console.log(`| floor: bare table, no queue features | | | | ${f0(med('floor', 'single'))} | | ${f1(median(lat))} (${lat.length}) | ` +
                `${us(med('floor', 'single_cpu_ms_per_job'))} | |`);
    console.log(`| floor, claim then mark done (2 statements a job) | | | | ${f0(med('floor', 'single_strict'))} | | | ` +
                `${us(med('floor', 'single_strict_cpu_ms_per_job'))} | |`);
}
for (const r of by('raw')) console.log(`raw SKIP LOCKED claim-and-mark (pgbench, ${r.clients} clients): ${f0(r.tps)} tx/s`);
console.log(`rounds: ${rounds.length}; single/batched: median over rounds; latency: median of the pooled samples\n`);
// the spread behind the medians
for (const n of rounds) {
    console.log(`round ${n}: ` + [...names, 'floor'].map((sys) => {
        const r = at(n, sys);
        return r.system ? `${sys} ${f0(r.single)} / ${f0(r.batched)}` : null;
    }).filter(Boolean).join('; ') + ' (single / batched jobs/s)');
}
console.log('');

for (const s of names) {
    const k = s.replace(/-/g, '_');
    for (const m of ['enqueue_single', 'enqueue_batched', 'single', 'batched']) {
        if (Number.isFinite(med(s, m))) console.log(`metric: ${k}_${m}_jobs_per_s ${Math.round(med(s, m))}`);
    }
    console.log(`metric: ${k}_latency_median_ms ${f1(median(latencies(s)))}`);
}
for (const s of names) {
    for (const m of ['single', 'batched']) {
        const v = med(s, `${m}_cpu_ms_per_job`);
        if (Number.isFinite(v)) console.log(`metric: ${s.replace(/-/g, '_')}_${m}_cpu_us_per_job ${Math.round(v * 1000)}`);
    }
}
const cpuRatio = (m) => Math.min(...peers.map((p) => med(p, `${m}_cpu_ms_per_job`))) / med('taskguard', `${m}_cpu_ms_per_job`);
console.log(`ratio: taskguard_cpu_efficiency_vs_best_peer_single ${cpuRatio('single').toFixed(2)}`);
console.log(`ratio: taskguard_cpu_efficiency_vs_best_peer_batched ${cpuRatio('batched').toFixed(2)}`);
console.log(`metric: taskguard_single_strict_jobs_per_s ${Math.round(med('taskguard', 'single_strict'))}`);
const bestLat = Math.min(...peers.map((p) => median(latencies(p))));
console.log(`ratio: taskguard_vs_best_peer_single ${roundRatio('single').toFixed(2)}`);
console.log(`ratio: taskguard_vs_best_peer_batched ${roundRatio('batched').toFixed(2)}`);
console.log(`ratio: taskguard_strict_vs_best_peer_single ${(median(rounds.map((n) => {
    const get = (sys, key) => at(n, sys)[key];
    return get('taskguard', 'single_strict') / Math.max(...peers.map((p) => get(p, 'single')));
}))).toFixed(2)}`);
console.log(`ratio: taskguard_latency_vs_best_peer ${(median(latencies('taskguard')) / bestLat).toFixed(2)}`);

// Against the floor: how close taskguard is, and whether a goal (2x the best
// peer's jobs/s, half its latency) is above what a bare table does at all.
if (by('floor').length) {
    const perRound = (fn) => median(rounds.map((n) => {
        const get = (sys, key) => at(n, sys)[key];
        return fn(get);
    }));
    const floorLat = median(latencies('floor'));
    console.log(`metric: floor_single_jobs_per_s ${Math.round(med('floor', 'single'))}`);
    console.log(`metric: floor_single_strict_jobs_per_s ${Math.round(med('floor', 'single_strict'))}`);
    console.log(`metric: floor_latency_median_ms ${f1(floorLat)}`);
    console.log(`ratio: taskguard_vs_floor_single ${perRound((g) => g('taskguard', 'single') / g('floor', 'single')).toFixed(2)}`);
    console.log(`ratio: goal_2x_best_peer_vs_floor_single ${perRound((g) => 2 * Math.max(...peers.map((p) => g(p, 'single')))
        / g('floor', 'single')).toFixed(2)}`);
    console.log(`ratio: taskguard_latency_vs_floor ${(median(latencies('taskguard')) / floorLat).toFixed(2)}`);
    console.log(`ratio: goal_half_best_peer_latency_vs_floor ${(0.5 * bestLat / floorLat).toFixed(2)}`);
}
