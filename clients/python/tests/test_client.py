"""The Python client as a package: version, producers, the missing-handler
failure, graceful shutdown of both workers (release of unstarted tasks), the
asyncio worker, the Celery bridge's import."""

import asyncio
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

import taskguard
from taskguard import Worker, enqueue, enqueue_many, pause, resume
from taskguard.aio import AsyncWorker

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")


def control_version():
    text = open(os.path.join(ROOT, "taskguard.control")).read()
    return re.search(r"default_version\s*=\s*'([^']+)'", text).group(1)


def test_versions_match_the_extension():
    pyproject = open(os.path.join(ROOT, "clients", "python", "pyproject.toml")).read()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1) == control_version()
    assert taskguard.__version__ == control_version()


def test_typed_marker_is_shipped():
    assert os.path.isfile(os.path.join(os.path.dirname(taskguard.__file__), "py.typed"))


def rows(conn, queue, cols="task_name, status, attempts"):
    return conn.execute(f"SELECT {cols} FROM taskguard.task WHERE queue = %s ORDER BY id",
                        (queue,)).fetchall()


# -- producers --------------------------------------------------------------------

def test_enqueue_with_options(conn, queue):
    at = datetime.now(timezone.utc) + timedelta(hours=1)
    tid = enqueue(conn, "send_email", {"to": "ana@example.com"}, queue=queue, priority="HIGH",
                  tenant="acme", service="mailer", max_attempts=2, run_at=at)
    got = conn.execute("SELECT task_name, args, priority::text, tenant, service, max_attempts, run_at "
                       "FROM taskguard.task WHERE id = %s", (tid,)).fetchone()
    assert got == ("send_email", {"to": "ana@example.com"}, "HIGH", "acme", "mailer", 2, at)


def test_enqueue_idempotency_key_gives_the_first_id(conn, queue):
    key = "welcome:" + queue
    first = enqueue(conn, "welcome", {"user": 1}, queue=queue, idempotency_key=key)
    again = enqueue(conn, "welcome", {"user": 1}, queue=queue, idempotency_key=key)
    assert first == again
    assert len(rows(conn, queue)) == 1


def test_enqueue_run_at_timedelta_is_from_now(conn, queue):
    tid = enqueue(conn, "later", queue=queue, run_at=timedelta(minutes=10))
    delay = conn.execute("SELECT extract(epoch FROM run_at - now()) FROM taskguard.task WHERE id = %s",
                         (tid,)).fetchone()[0]
    assert 590 < delay <= 600


def test_enqueue_in_a_rolled_back_transaction_enqueues_nothing(dsn, conn, queue):
    import psycopg
    with psycopg.connect(dsn) as tx:          # not autocommit
        enqueue(tx, "ghost", queue=queue)
        tx.rollback()
    assert rows(conn, queue) == []


def test_enqueue_refuses_unknown_options_and_names(conn, queue):
    with pytest.raises(TypeError, match="unexpected option 'prio'"):
        enqueue(conn, "x", queue=queue, prio="HIGH")
    with pytest.raises(TypeError, match="task_name"):
        enqueue(conn, "", queue=queue)
    with pytest.raises(TypeError, match="unexpected option 'idempotency_key'"):
        enqueue_many(conn, "x", [{}], queue=queue, idempotency_key="k")


def test_enqueue_many_keeps_the_order(conn, queue):
    ids = enqueue_many(conn, "resize", [{"img": i} for i in range(5)], queue=queue, priority="LOW")
    assert len(ids) == 5
    got = conn.execute("SELECT id, (args->>'img')::int FROM taskguard.task WHERE id = ANY(%s)",
                       (ids,)).fetchall()
    assert [dict(got)[i] for i in ids] == [0, 1, 2, 3, 4]


def test_flow_key_debounce_pause_resume(conn, queue):
    ids = enqueue_many(conn, "sync", [{}, {}], queue=queue, flow_key="acct-1")
    assert conn.execute("SELECT array_agg(DISTINCT flow_key) FROM taskguard.task WHERE id = ANY(%s)",
                        (ids,)).fetchone()[0] == ["acct-1"]
    first = enqueue(conn, "reindex", {"rev": 1}, queue=queue, debounce_key="doc:7",
                    debounce=timedelta(seconds=30), debounce_max=timedelta(minutes=5))
    again = enqueue(conn, "reindex", {"rev": 2}, queue=queue, debounce_key="doc:7",
                    debounce=timedelta(seconds=30))
    assert again == first
    assert conn.execute("SELECT args->>'rev' FROM taskguard.task WHERE id = %s",
                        (first,)).fetchone()[0] == "2"
    assert pause(conn, queue) is True
    assert pause(conn, queue) is False
    assert conn.execute("SELECT count(*) FROM taskguard.claim(%s, 'py', 10)", (queue,)).fetchone()[0] == 0
    assert resume(conn, queue) is True
    assert conn.execute("SELECT count(*) FROM taskguard.claim(%s, 'py', 10)", (queue,)).fetchone()[0] == 2


def test_aenqueue(dsn, conn, queue):
    import psycopg

    async def go():
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            one = await taskguard.aenqueue(aconn, "a", {"n": 1}, queue=queue)
            many = await taskguard.aenqueue_many(aconn, "b", [{"n": 2}, {"n": 3}], queue=queue)
            return [one] + many
    ids = asyncio.run(go())
    assert [r[0] for r in rows(conn, queue, "id")] == ids


# -- the missing-handler failure ----------------------------------------------------

def assert_no_handler_recorded(conn, queue):
    got = conn.execute(
        "SELECT t.status, d.error_type, d.failure_type::text, d.status::text, d.retry_count, d.message "
        "FROM taskguard.task t JOIN taskguard.dead_letter d ON d.task_id = t.id WHERE t.queue = %s",
        (queue,)).fetchall()
    assert len(got) == 1
    status, error_type, failure_type, dlq_status, retries, message = got[0]
    assert (status, error_type, failure_type, dlq_status, retries) == \
        ("failed", "taskguard.NoHandler", "CONFIGURATION_MISSING_ENV", "ABANDONED", 0)
    assert message.startswith("no handler for task 'nobody_handles_me' on worker ")
    assert message.endswith(": the task is not configured on this worker")


def test_no_handler_threaded(dsn, conn, queue):
    enqueue(conn, "nobody_handles_me", queue=queue)
    worker = Worker(dsn, queue=queue, name="pytest-nohandler")
    worker._connect()
    try:
        assert worker.run_batch() == 1
    finally:
        worker._conn.close()
    assert_no_handler_recorded(conn, queue)


def test_no_handler_async(dsn, conn, queue):
    enqueue(conn, "nobody_handles_me", queue=queue)
    worker = AsyncWorker(dsn, queue=queue, name="pytest-nohandler", poll_interval=0.1)

    async def go():
        run = asyncio.create_task(worker.run(install_signals=False))
        while worker.stats["failed"] < 1:
            await asyncio.sleep(0.02)
        worker.stop()
        await run
    asyncio.run(asyncio.wait_for(go(), 20))
    assert_no_handler_recorded(conn, queue)


# -- graceful shutdown ---------------------------------------------------------------

def test_threaded_worker_stop_releases_unstarted_tasks(dsn, conn, queue):
    enqueue_many(conn, "nap", [{"n": i} for i in range(6)], queue=queue)
    worker = Worker(dsn, queue=queue, name="pytest-stop", batch=6, poll_interval=0.1)
    started = threading.Event()

    @worker.task("nap")
    def nap(task):
        started.set()
        time.sleep(1.0)
        return {"n": task.args["n"]}

    t = threading.Thread(target=worker.run, kwargs={"install_signals": False})
    t.start()
    assert started.wait(20)
    t0 = time.monotonic()
    worker.stop()
    t.join(20)
    took = time.monotonic() - t0
    assert not t.is_alive()
    print(f"threaded worker: stop() to return {took:.2f} s with a 1 s task running and 5 held")
    assert took < 1.5, "it waited for more than the running task"
    got = rows(conn, queue, "status, attempts, worker IS NULL, lease_expires_at IS NULL")
    assert got.count(("succeeded", 1, False, True)) == 1
    assert got.count(("ready", 0, True, True)) == 5, got
    assert worker.stats["released"] == 5


def test_async_worker_stop_releases_unstarted_tasks(dsn, conn, queue):
    enqueue_many(conn, "nap", [{"n": i} for i in range(8)], queue=queue)
    worker = AsyncWorker(dsn, queue=queue, name="pytest-astop", batch=8, concurrency=2,
                         poll_interval=0.1)

    @worker.task("nap")
    async def nap(task):
        await asyncio.sleep(1.0)
        return {"n": task.args["n"]}

    async def go():
        run = asyncio.create_task(worker.run(install_signals=False))
        while len(worker._running) < 2:
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        worker.stop()
        await run
        return time.monotonic() - t0
    took = asyncio.run(asyncio.wait_for(go(), 20))
    print(f"asyncio worker: stop() to return {took:.2f} s with 2 tasks of 1 s running and 6 held")
    assert took < 1.5
    got = rows(conn, queue, "status, attempts")
    assert got.count(("succeeded", 1)) == 2
    assert got.count(("ready", 0)) == 6, got
    assert worker.stats["released"] == 6


# -- the asyncio worker at work ------------------------------------------------------

def test_async_worker_runs_async_and_plain_handlers(dsn, conn, queue):
    enqueue_many(conn, "double", [{"n": i} for i in range(20)], queue=queue)
    enqueue(conn, "plain", {"n": 7}, queue=queue)
    enqueue(conn, "boom", queue=queue, max_attempts=1)
    worker = AsyncWorker(dsn, queue=queue, batch=5, concurrency=4, poll_interval=0.1)

    @worker.task("double")
    async def double(task):
        await asyncio.sleep(0.01)
        return {"n": task.args["n"] * 2}

    @worker.task("plain")
    def plain(task):
        return {"thread": threading.current_thread() is not threading.main_thread()}

    @worker.task("boom")
    async def boom(task):
        raise ValueError("bad row 7")

    async def go():
        run = asyncio.create_task(worker.run(install_signals=False))
        while worker.stats["completed"] + worker.stats["failed"] < 22:
            await asyncio.sleep(0.02)
        worker.stop()
        await run
    asyncio.run(asyncio.wait_for(go(), 30))
    assert conn.execute("SELECT count(*) FROM taskguard.task WHERE queue = %s AND task_name = 'double' "
                        "AND status = 'succeeded' AND (result->>'n')::int = 2 * (args->>'n')::int",
                        (queue,)).fetchone()[0] == 20
    assert conn.execute("SELECT result FROM taskguard.task WHERE queue = %s AND task_name = 'plain'",
                        (queue,)).fetchone()[0] == {"thread": True}
    assert conn.execute("SELECT d.error_type, d.failure_type::text FROM taskguard.dead_letter d "
                        "WHERE d.queue = %s", (queue,)).fetchone() == \
        ("ValueError", "PERMANENT_INVALID_INPUT")


def test_async_worker_wakes_on_notify(dsn, conn, queue):
    worker = AsyncWorker(dsn, queue=queue, poll_interval=60)

    @worker.task("ping")
    async def ping(task):
        return "pong"

    async def go():
        run = asyncio.create_task(worker.run(install_signals=False))
        await asyncio.sleep(0.5)             # idle, LISTENing (the poll is a minute away)
        t0 = time.monotonic()
        enqueue(conn, "ping", queue=queue)
        while worker.stats["completed"] < 1:
            await asyncio.sleep(0.01)
        took = time.monotonic() - t0
        worker.stop()
        await run
        return took
    took = asyncio.run(asyncio.wait_for(go(), 20))
    assert took < 5


# -- the Celery bridge ----------------------------------------------------------------

def test_celery_bridge_is_part_of_the_package():
    pytest.importorskip("celery")
    from taskguard.celery import Dispatcher, TaskguardTask, connect_signals  # noqa: F401
    from taskguard.worker import describe_exception
    import taskguard.celery as bridge
    assert bridge.describe_exception is describe_exception
