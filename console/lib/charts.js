'use strict';
// lib/charts.js — charts as inline SVG, rendered on the server: no chart
// library, no script, and they print and scale on a phone (viewBox).
const { html, num } = require('./html');

const PALETTE = ['#2f6fb0', '#d9822b', '#3a9b5c', '#c23b3b', '#7b5ea7', '#8c6d31', '#d46aa8',
  '#6b6b6b', '#a8b520', '#1fa3b8', '#e0b000', '#5a3d9a', '#a33', '#3a7', '#999'];

function color(i) { return PALETTE[i % PALETTE.length]; }

// Horizontal bars: rows [{label, value, title?}], one bar each.
function hbars(rows, { unit = '', width = 640 } = {}) {
  const max = Math.max(1, ...rows.map((r) => Number(r.value) || 0));
  const rowH = 22;
  const labelW = 230;
  const h = rows.length * rowH + 4;
  const barW = width - labelW - 70;
  return html`<svg class="chart" viewBox="0 0 ${width} ${h}" role="img" preserveAspectRatio="xMinYMin meet">
${rows.map((r, i) => {
    const w = Math.max(0, (Number(r.value) || 0) / max * barW);
    const y = i * rowH + 2;
    return html`<g><title>${r.title || `${r.label}: ${num(r.value)}${unit}`}</title>
<text x="${labelW - 6}" y="${y + 15}" text-anchor="end" class="lbl">${r.label}</text>
<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 7}" fill="${color(i)}"/>
<text x="${(labelW + w + 5).toFixed(1)}" y="${y + 15}" class="val">${num(r.value)}${unit}</text></g>`;
  })}</svg>`;
}

// Lines over time: series [{name, points: [[Date, value], …]}] on one axis.
function lines(series, { width = 720, height = 220, from, to } = {}) {
  const all = series.flatMap((s) => s.points);
  if (!all.length) return html`<p class="muted">No data in this period.</p>`;
  const t0 = from ? from.getTime() : Math.min(...all.map((p) => p[0].getTime()));
  const t1 = to ? to.getTime() : Math.max(...all.map((p) => p[0].getTime()));
  const vmax = Math.max(1, ...all.map((p) => Number(p[1]) || 0));
  const L = 44, R = 8, T = 8, B = 22;
  const x = (t) => L + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * (width - L - R);
  const y = (v) => T + (1 - v / vmax) * (height - T - B);
  const ticks = [0, 0.5, 1].map((f) => Math.round(vmax * f));
  const fmt = (ms) => new Date(ms).toISOString().slice(5, 16).replace('T', ' ');
  return html`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img">
${ticks.map((v) => html`<line x1="${L}" x2="${width - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>
<text x="${L - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" class="val">${num(v)}</text>`)}
<text x="${L}" y="${height - 6}" class="val">${fmt(t0)} UTC</text>
<text x="${width - R}" y="${height - 6}" text-anchor="end" class="val">${fmt(t1)} UTC</text>
${series.map((s, i) => html`<polyline fill="none" stroke="${color(i)}" stroke-width="2" points="${s.points
    .map((p) => `${x(p[0].getTime()).toFixed(1)},${y(Number(p[1]) || 0).toFixed(1)}`).join(' ')}"><title>${s.name}</title></polyline>
${s.points.map((p) => html`<circle cx="${x(p[0].getTime()).toFixed(1)}" cy="${y(Number(p[1]) || 0).toFixed(1)}" r="2.5" fill="${color(i)}"><title>${s.name} ${p[0].toISOString().slice(0, 16).replace('T', ' ')} UTC: ${num(p[1])}</title></circle>`)}`)}
</svg>
<p class="legend">${series.map((s, i) => html`<span><svg viewBox="0 0 10 10" class="key"><rect width="10" height="10" fill="${color(i)}"/></svg>${s.name}</span> `)}</p>`;
}

// The health score as a half-circle gauge (0–100).
function gauge(score) {
  const v = Math.max(0, Math.min(100, Number(score) || 0));
  const a = Math.PI * (1 - v / 100);
  const x = 60 + 50 * Math.cos(a), y = 60 - 50 * Math.sin(a);
  const c = v >= 80 ? '#3a9b5c' : v >= 60 ? '#d9822b' : '#c23b3b';
  return html`<svg class="gauge" viewBox="0 0 120 70" role="img"><title>health score ${v} of 100</title>
<path d="M10 60 A50 50 0 0 1 110 60" fill="none" stroke="#ddd" stroke-width="10"/>
<path d="M10 60 A50 50 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}" fill="none" stroke="${c}" stroke-width="10"/>
<text x="60" y="58" text-anchor="middle" class="gauge-num" data-live="health_score">${v}</text></svg>`;
}

// A heat map: rows [{label, cells: [{value, title}]}]; value 0..1+ (utilization).
function heatmap(rows, { cell = 10, labelW = 40 } = {}) {
  const cols = Math.max(0, ...rows.map((r) => r.cells.length));
  const w = labelW + cols * cell, h = rows.length * cell + 14;
  const shade = (v) => {
    if (!v) return '#f1f3f5';
    if (v > 0.7) return '#c23b3b';
    const l = Math.round(90 - Math.min(v / 0.7, 1) * 45);
    return `hsl(210,60%,${l}%)`;
  };
  return html`<svg class="chart heat" viewBox="0 0 ${w} ${h}" role="img">
${rows.map((r, i) => html`<text x="${labelW - 4}" y="${i * cell + cell - 1}" text-anchor="end" class="lbl small">${r.label}</text>
${r.cells.map((c, j) => html`<rect x="${labelW + j * cell}" y="${i * cell}" width="${cell - 1}" height="${cell - 1}" fill="${shade(c.value)}"><title>${c.title}</title></rect>`)}`)}
${[0, 15, 30, 45].filter((m) => m < cols).map((m) => html`<text x="${labelW + m * cell}" y="${h - 2}" class="lbl small">:${String(m).padStart(2, '0')}</text>`)}
</svg>`;
}

module.exports = { hbars, lines, gauge, heatmap, color };
