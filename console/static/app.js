// taskguard console — the few live parts: relative times kept current, the
// next-retry countdown, the overview's numbers over server-sent events,
// "select all" and confirmations.  The pages work without it.
'use strict';
(function () {
  function rel(date) {
    var s = Math.round((date.getTime() - Date.now()) / 1000), a = Math.abs(s);
    var units = [[31536000, 'year'], [2592000, 'month'], [86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
    if (a < 5) return 'just now';
    for (var i = 0; i < units.length; i++) {
      if (a >= units[i][0]) {
        var n = Math.floor(a / units[i][0]), t = n + ' ' + units[i][1] + (n === 1 ? '' : 's');
        return s < 0 ? t + ' ago' : 'in ' + t;
      }
    }
    return 'just now';
  }
  function refreshTimes() {
    document.querySelectorAll('time[datetime]').forEach(function (el) {
      if (!el.closest('[data-countdown]')) el.textContent = rel(new Date(el.getAttribute('datetime')));
    });
  }
  function countdown() {
    document.querySelectorAll('[data-countdown]').forEach(function (el) {
      var ms = new Date(el.getAttribute('data-countdown')).getTime() - Date.now();
      var t = el.querySelector('time') || el;
      if (ms <= 0) { t.textContent = 'due now'; return; }
      var s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      t.textContent = 'in ' + (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + (s % 60) + ' s';
    });
  }
  function fmt(v) {
    if (v === null || v === undefined) return '–';
    var n = Number(v);
    return Number.isInteger(n) ? n.toLocaleString('en-US') : String(v);
  }
  function liveOverview() {
    var sec = document.querySelector('[data-live-src]');
    if (!sec || !window.EventSource) return;
    var es = new EventSource(sec.getAttribute('data-live-src'));
    es.onmessage = function (ev) {
      var d = JSON.parse(ev.data);
      document.querySelectorAll('[data-live]').forEach(function (el) {
        var k = el.getAttribute('data-live');
        if (k in d) el.textContent = fmt(d[k]);
      });
      var t = document.querySelector('[data-live-time] time');
      if (t && d.generated_at) { t.setAttribute('datetime', d.generated_at); t.title = d.generated_at; t.textContent = rel(new Date(d.generated_at)); }
      document.body.setAttribute('data-live-updates', String(Number(document.body.getAttribute('data-live-updates') || 0) + 1));
    };
  }
  function selection() {
    var all = document.querySelector('[data-select-all]');
    var count = document.querySelector('[data-selected]');
    var boxes = function () { return document.querySelectorAll('input[type=checkbox][name=id]'); };
    var update = function () {
      if (count) count.textContent = Array.prototype.filter.call(boxes(), function (b) { return b.checked; }).length + ' selected';
    };
    if (all) all.addEventListener('change', function () { boxes().forEach(function (b) { b.checked = all.checked; }); update(); });
    boxes().forEach(function (b) { b.addEventListener('change', update); });
  }
  function confirms() {
    document.querySelectorAll('[data-confirm]').forEach(function (b) {
      b.addEventListener('click', function (ev) { if (!window.confirm(b.getAttribute('data-confirm'))) ev.preventDefault(); });
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    refreshTimes(); countdown(); liveOverview(); selection(); confirms();
    setInterval(refreshTimes, 30000);
    setInterval(countdown, 1000);
  });
})();
