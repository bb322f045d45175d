"""CPU-bound work kept off the event loop: in worker processes where the machine has cores to
spare, else in a thread.

The daemon's cycle is CPU-bound in one process (parsing feeds, scoring, storing, judging) and
Python runs one thread at a time, so a thread only keeps the event loop answering; a process
uses another core.  The daemon starts the workers (``start``) and stops them (``stop``); code
that parses or scores calls ``run``, which works the same whether or not workers were started
(a command that polls once, a test, a one-core machine).  Workers are spawned, not forked: the
daemon has threads and open connections by the time it starts them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)
_pool: ProcessPoolExecutor | None = None
_size = 0


def start(count: int) -> None:
    """Run ``run``'s work in ``count`` worker processes from now on (none if ``count`` < 1)."""
    global _pool, _size
    stop()
    _size = count
    if count < 1:
        return
    _pool = _new_pool(count)


def _new_pool(count: int) -> ProcessPoolExecutor | None:
    return new_pool(count, _ignore_signals, doing="feeds are parsed")


def new_pool(
    count: int,
    initializer: Callable[..., None],
    *initargs: Any,
    method: str | None = "spawn",
    doing: str,
) -> ProcessPoolExecutor | None:
    """``count`` worker processes, started by ``method`` (None: the platform's default), that
    each run ``initializer(*initargs)`` first and end with the process that started them; or
    None, with a warning that what they were for (``doing``) is done in this process, where
    processes cannot be started (no POSIX semaphores: a sandbox without /dev/shm).

    They start now, not when first given work as a pool's would: they get ready (a new
    interpreter, imports, the initializer) while their caller does."""
    pool = None
    try:
        pool = ProcessPoolExecutor(
            count,
            mp_context=multiprocessing.get_context(method),
            initializer=_started,
            initargs=(initializer, *initargs),
        )
        for _ in range(count):  # a pool starts a process for each task it has no idle one for
            pool.submit(int)
    except OSError as exc:  # no semaphores, or no process could be forked
        log.warning("no worker processes (%s); %s in this process", exc, doing)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        return None
    return pool


def _started(initializer: Callable[..., None], *initargs: Any) -> None:
    _exit_with_parent()
    initializer(*initargs)


def stop() -> None:
    """Stop the workers, if any; ``run`` works in a thread again."""
    global _pool
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None


def _ignore_signals() -> None:
    """Ctrl-C reaches the whole process group: the daemon, not its workers, decides when to stop
    (it lets the polls in flight finish, and they may be waiting for a worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


PARENT_CHECK = 1.0
"""Seconds between a worker's checks that the process that started it is still there."""


def _exit_with_parent() -> None:
    """End this worker process when the process that started it is gone (killed with
    ``kill -9``, say): a pool's worker holds both ends of its task queue, so it would wait
    for tasks forever, an orphan outside any service manager's reach."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


async def run(function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` in a worker process if there are workers, else in a thread.

    With workers, ``function`` must be a module-level function, and its arguments and result
    must pickle."""
    global _pool
    call = partial(function, *args, **kwargs)
    pool = _pool
    if pool is None:
        return await asyncio.to_thread(call)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, call)
    except BrokenProcessPool:
        # a worker died (killed for memory, say): new workers for what comes next, and this
        # call, which may have been the cause, in a thread
        if _pool is pool:
            log.warning("a worker process died; starting new ones")
            pool.shutdown(wait=False)
            _pool = _new_pool(_size)
        return await asyncio.to_thread(call)
