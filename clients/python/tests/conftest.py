"""pytest fixtures: a database with the taskguard extension, from the PG*
variables (test/t/client_packages.sh runs this against the harness cluster).
Every test uses a queue of its own and deletes what it made."""

import os
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))     # the checkout's taskguard package

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="session")
def dsn():
    dsn = os.environ.get("TASKGUARD_TEST_DSN", "")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT 'taskguard.enqueue'::regproc")
    except psycopg.Error as exc:
        pytest.skip(f"no database with taskguard (set PG* or TASKGUARD_TEST_DSN): {exc}")
    return dsn


@pytest.fixture
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def queue(conn):
    name = "pytest_" + uuid.uuid4().hex[:10]
    yield name
    conn.execute("DELETE FROM taskguard.failure_event WHERE task_id IN "
                 "(SELECT id FROM taskguard.task WHERE queue = %s)", (name,))
    conn.execute("DELETE FROM taskguard.dead_letter WHERE queue = %s", (name,))
    conn.execute("DELETE FROM taskguard.task WHERE queue = %s", (name,))
