'use strict';
// lib/html.js — HTML built by one tagged template that escapes every
// interpolated value, unless the value is a Raw (made by html`` itself or by
// raw() for markup this file generates).  Nothing user- or database-supplied
// reaches a page any other way.

class Raw {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function esc(v) {
  if (v === null || v === undefined || v === false) return '';
  return String(v).replace(/[&<>"']/g, (c) => ESC[c]);
}

// Interpolation: a Raw goes in as is, an array is joined, anything else escaped.
function part(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(part).join('');
  return esc(v);
}

function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Raw(out);
}

function raw(s) { return new Raw(String(s)); }

// A number with thousands separators ('' for NULL).
function num(v) {
  if (v === null || v === undefined) return '–';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  return Number.isInteger(n) ? n.toLocaleString('en-US') : String(v);
}

// "2 hours ago" / "in 5 minutes"; static/app.js keeps it current.
function relative(date, now = Date.now()) {
  const s = Math.round((date.getTime() - now) / 1000);
  const a = Math.abs(s);
  const units = [[86400 * 365, 'year'], [86400 * 30, 'month'], [86400, 'day'], [3600, 'hour'],
    [60, 'minute'], [1, 'second']];
  if (a < 5) return 'just now';
  for (const [secs, name] of units) {
    if (a >= secs) {
      const n = Math.floor(a / secs);
      const t = `${n} ${name}${n === 1 ? '' : 's'}`;
      return s < 0 ? `${t} ago` : `in ${t}`;
    }
  }
  return 'just now';
}

// A timestamp shown relative, with the exact time (UTC) on hover.
function time(v) {
  if (!v) return html`<span class="muted">–</span>`;
  const d = v instanceof Date ? v : new Date(v);
  const iso = d.toISOString();
  return html`<time datetime="${iso}" title="${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}">${relative(d)}</time>`;
}

// A PostgreSQL interval as pg returns it (an object) in short text.
function interval(v) {
  if (!v) return '–';
  if (typeof v === 'string') return v;
  const parts = [];
  for (const [k, u] of [['years', 'y'], ['months', 'mo'], ['days', 'd'], ['hours', 'h'], ['minutes', 'min']]) {
    if (v[k]) parts.push(`${v[k]} ${u}`);
  }
  const s = (v.seconds || 0) + (v.milliseconds || 0) / 1000;
  if (s || !parts.length) parts.push(`${Math.round(s * 100) / 100} s`);
  return parts.join(' ');
}

module.exports = { html, raw, esc, num, time, relative, interval, Raw };
