"""Compatibility module: the Celery bridge is now ``taskguard.celery`` in the
installable package clients/python (``pip install clients/python``, then
``from taskguard.celery import TaskguardTask``).  This file keeps 0.1.0's
import working from a checkout of the repository."""

import os
import sys

try:
    import taskguard.celery  # noqa: F401
except ImportError:   # not installed: the checkout's clients/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from taskguard.celery import *  # noqa: E402,F401,F403
from taskguard.celery import configure, connection, report_failure, report_success  # noqa: E402,F401
