"""Producers: put tasks on a taskguard queue from a psycopg 3 connection (or
cursor), inside the caller's transaction — the task is enqueued only if the
transaction that asked for it commits.

    from taskguard import enqueue

    with psycopg.connect() as conn:
        task_id = enqueue(conn, "send_email", {"to": "ana@example.com"},
                          queue="mail", priority="HIGH", idempotency_key="welcome:42")

The options are taskguard.enqueue()'s named arguments (docs/reference.md#queue, #flow-control).  ``run_at``
takes a datetime, or a timedelta meaning "that long from now".  With an
idempotency_key already used within its TTL the existing task's id comes back
and nothing is enqueued.  For an AsyncConnection use ``aenqueue``.

Flow control (docs/flow.md): ``flow_key`` names what a flow limit counts (a
customer, an API account); with ``debounce_key`` a new enqueue replaces the
args of the unclaimed task with the same tenant, name and key and moves it to
now + ``debounce`` (a timedelta), never past its first enqueue +
``debounce_max``:

    enqueue(conn, "reindex", {"doc": 7, "rev": 12}, debounce_key="doc:7",
            debounce=timedelta(seconds=30), debounce_max=timedelta(minutes=5))

``pause(conn, queue, task_name=None)`` and ``resume(...)`` stop and restart
what claim() hands out (admin access).
"""

from datetime import timedelta

from psycopg import sql
from psycopg.types.json import Jsonb

__all__ = ["enqueue", "enqueue_many", "aenqueue", "aenqueue_many", "pause", "resume"]

_OPTIONS = {            # name -> SQL type of enqueue()'s argument
    "queue": "text",
    "run_at": "timestamptz",
    "priority": "taskguard.priority",
    "tenant": "text",
    "customer_tier": "text",
    "service": "text",
    "idempotency_key": "text",
    "max_attempts": "int",
    "flow_key": "text",
    "debounce_key": "text",
    "debounce": "interval",
    "debounce_max": "interval",
}
_MANY = ("queue", "run_at", "priority", "tenant", "customer_tier", "service", "flow_key")


def _named(opts, allowed):
    """SQL fragments ``name => %s::type`` and their values, for the options given."""
    parts, values = [], []
    for name, value in opts.items():
        if name not in allowed:
            raise TypeError(f"enqueue() got an unexpected option {name!r}")
        if value is None:
            continue
        if name == "run_at" and isinstance(value, timedelta):
            parts.append(sql.SQL("run_at => now() + {}::interval").format(sql.Placeholder()))
        else:
            parts.append(sql.SQL("{} => {}::{}").format(
                sql.Identifier(name), sql.Placeholder(), sql.SQL(_OPTIONS[name])))
        values.append(value)
    return parts, values


def _check_name(task_name):
    if not isinstance(task_name, str) or not task_name:
        raise TypeError("task_name must be a non-empty string")


def _enqueue_query(task_name, args, opts):
    _check_name(task_name)
    parts, values = _named(opts, _OPTIONS)
    query = sql.SQL("SELECT taskguard.enqueue(task_name => %s, args => %s{})").format(
        sql.SQL("").join(sql.SQL(", ") + p for p in parts))
    return query, [task_name, Jsonb(args if args is not None else {})] + values


def _enqueue_many_query(task_name, args_list, opts):
    _check_name(task_name)
    parts, values = _named(opts, _MANY)
    query = sql.SQL("SELECT id FROM taskguard.enqueue_many(task_name => %s, args => %s::jsonb[]{}) AS id"
                    ).format(sql.SQL("").join(sql.SQL(", ") + p for p in parts))
    return query, [task_name, [Jsonb(a if a is not None else {}) for a in args_list]] + values


def enqueue(conn, task_name, args=None, **opts):
    """Enqueue one task; its id."""
    query, params = _enqueue_query(task_name, args, opts)
    return conn.execute(query, params).fetchone()[0]


def enqueue_many(conn, task_name, args_list, **opts):
    """Enqueue many tasks of one name in one statement; their ids in order."""
    query, params = _enqueue_many_query(task_name, list(args_list), opts)
    return [row[0] for row in conn.execute(query, params).fetchall()]


async def aenqueue(aconn, task_name, args=None, **opts):
    """enqueue() on a psycopg AsyncConnection (or AsyncCursor)."""
    query, params = _enqueue_query(task_name, args, opts)
    cur = await aconn.execute(query, params)
    return (await cur.fetchone())[0]


async def aenqueue_many(aconn, task_name, args_list, **opts):
    """enqueue_many() on a psycopg AsyncConnection (or AsyncCursor)."""
    query, params = _enqueue_many_query(task_name, list(args_list), opts)
    cur = await aconn.execute(query, params)
    return [row[0] for row in await cur.fetchall()]


def pause(conn, queue, task_name=None):
    """Pause a queue (or one task type in it): claim() hands none of it out
    until resume(); nothing is lost.  True if it was not paused yet."""
    return conn.execute("SELECT taskguard.pause(%s, %s)", [queue, task_name]).fetchone()[0]


def resume(conn, queue, task_name=None):
    """Resume what pause(queue, task_name) paused; True if it was paused."""
    return conn.execute("SELECT taskguard.resume(%s, %s)", [queue, task_name]).fetchone()[0]
