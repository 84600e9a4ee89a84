"""Compatibility module: the worker is now the package ``taskguard``
(``from taskguard import Worker``); this name stays for code that imported
the single file of 0.1.0."""

from taskguard.worker import *  # noqa: F401,F403
from taskguard.worker import UnknownTask, NoHandler  # noqa: F401
