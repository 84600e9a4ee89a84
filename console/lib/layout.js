'use strict';
// lib/layout.js — the page frame: navigation, who is signed in, flash
// messages, and the small form helpers every page uses (each form carries the
// session's CSRF token).
const { html } = require('./html');

const NAV = [
  ['/', 'Overview'], ['/dlq', 'Dead letters'], ['/taxonomy', 'Failures'], ['/retries', 'Retries'],
  ['/idempotency', 'Idempotency'], ['/schedules', 'Schedules'], ['/breakers', 'Breakers'],
  ['/queues', 'Queues'],
];

function page({ title, path, session, body, flash }) {
  const who = session ? html`<span class="who" title="every query runs as this PostgreSQL role">
      <b data-role>${session.role}</b>${session.tenants ? html` · tenant <b data-tenants>${session.tenants.join(', ')}</b>` : ''}</span>
    <form method="post" action="/logout" class="inline">${csrf(session)}<button class="link">Sign out</button></form>` : '';
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · taskguard</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head><body>
<header><a class="brand" href="/">taskguard</a>
${session ? html`<nav>${NAV.map(([href, label]) => html`<a href="${href}"${(href === '/' ? path === '/' : path.startsWith(href)) ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>` : ''}
<div class="session">${who}</div></header>
<main>
${flash ? html`<p class="flash ${flash.kind}" role="status">${flash.text}</p>` : ''}
<h1>${title}</h1>
${body}
</main></body></html>`;
}

function csrf(session) {
  return html`<input type="hidden" name="_csrf" value="${session.csrf}">`;
}

module.exports = { page, csrf };
