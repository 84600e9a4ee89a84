"""taskguard — Python client for the taskguard PostgreSQL extension.

* ``Worker`` (taskguard.worker): a worker loop on psycopg 3.
* ``AsyncWorker`` (taskguard.aio): the same on asyncio (psycopg.AsyncConnection).
* ``enqueue``/``enqueue_many`` (and ``aenqueue``/``aenqueue_many``): producers;
  ``pause``/``resume``: flow control (docs/flow.md).
* ``taskguard.celery``: the bridge for tasks Celery runs (imports Celery, so
  it is not imported here).
"""

from .producer import aenqueue, aenqueue_many, enqueue, enqueue_many, pause, resume
from .worker import NoHandler, Task, Worker, describe_exception, error_type_name

__version__ = "0.2.0"

__all__ = ["Worker", "Task", "NoHandler", "describe_exception", "error_type_name",
           "enqueue", "enqueue_many", "aenqueue", "aenqueue_many", "pause", "resume", "AsyncWorker",
           "__version__"]


def __getattr__(name):
    # the asyncio worker on first use: `import taskguard` stays light
    if name == "AsyncWorker":
        from .aio import AsyncWorker
        return AsyncWorker
    raise AttributeError(f"module 'taskguard' has no attribute {name!r}")
