'use strict';
// lib/session.js — sign-in as a PostgreSQL role, sessions and CSRF tokens.
//
// A session is a random 256-bit id (the only thing in the HttpOnly,
// SameSite=Strict cookie) mapped in this process's memory to a small pg pool
// that connects AS THE SIGNED-IN ROLE with the credentials the person typed.
// The console has no database account of its own and no permission table:
// every page and action is a query of that role, and what PostgreSQL refuses
// the console refuses.  Passwords live only in that pool's config, in memory,
// and go when the session ends (sign-out, idle timeout, restart).
const crypto = require('crypto');
const { Pool } = require('pg');

const IDLE_MS = Number(process.env.TG_CONSOLE_IDLE_MINUTES || 30) * 60 * 1000;
const sessions = new Map();

function token() { return crypto.randomBytes(32).toString('base64url'); }

function parseCookies(req) {
  const out = {};
  for (const part of (req.headers.cookie || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

function cookie(name, value, { maxAge, secure } = {}) {
  let c = `${name}=${value}; Path=/; HttpOnly; SameSite=Strict`;
  if (maxAge !== undefined) c += `; Max-Age=${maxAge}`;
  if (secure) c += '; Secure';
  return c;
}

// Constant-time comparison of two tokens (strings).
function sameToken(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// The connection settings of a role: the server's own PG* environment for
// host, port and database; user and password from the sign-in form.  An
// empty password means "no password" (local socket: peer or trust, as
// pg_hba.conf says) and is only offered when TG_CONSOLE_SOCKET_LOGIN=1.
// An empty password is sent as a function returning '' (never undefined): pg
// would otherwise fall back to the console's own PGPASSWORD or ~/.pgpass and
// sign a stranger in with the console operator's stored password.
function poolConfig(role, password) {
  return {
    user: role,
    password: password === '' ? () => '' : password,
    // keyset cursors carry timestamps as PostgreSQL prints them (ISO, with offset)
    options: '-c DateStyle=ISO,MDY',
    max: 3,
    idleTimeoutMillis: 60000,
    application_name: 'taskguard-console',
    statement_timeout: Number(process.env.TG_CONSOLE_STATEMENT_TIMEOUT_MS || 15000),
  };
}

// Sign in: connect as the role (PostgreSQL checks the password), learn what
// the role is, and open a session.  Throws the connection error.
async function signIn(role, password) {
  const pool = new Pool(poolConfig(role, password));
  pool.on('error', () => {}); // an idle connection that dies is replaced on next use
  let who;
  try {
    const r = await pool.query(
      `SELECT current_user AS role,
              has_schema_privilege('taskguard', 'USAGE') AS can_use,
              CASE WHEN has_schema_privilege('taskguard', 'USAGE')
                   THEN (SELECT taskguard._tenant_scope()) END AS tenants`);
    who = r.rows[0];
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
  const s = { id: token(), csrf: token(), role: who.role, tenants: who.tenants, pool,
    canUse: who.can_use, seen: Date.now(), flash: null, caps: null };
  sessions.set(s.id, s);
  return s;
}

function get(req) {
  const id = parseCookies(req).tg_session;
  const s = id && sessions.get(id);
  if (!s) return null;
  if (Date.now() - s.seen > IDLE_MS) { end(s); return null; }
  s.seen = Date.now();
  return s;
}

function end(s) {
  sessions.delete(s.id);
  s.pool.end().catch(() => {});
}

// Sessions idle too long are closed (their pools with them).
setInterval(() => {
  for (const s of sessions.values()) if (Date.now() - s.seen > IDLE_MS) end(s);
}, 60000).unref();

async function endAll() {
  await Promise.all([...sessions.values()].map((s) => { sessions.delete(s.id); return s.pool.end().catch(() => {}); }));
}

module.exports = { signIn, get, end, endAll, parseCookies, cookie, token, sameToken };
