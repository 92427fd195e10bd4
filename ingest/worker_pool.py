"""The parser workers: a fixed number of processes that parse uploads, so a hostile or
pathological file can be stopped.

Each job gets a whole worker; on timeout its worker is killed and replaced, and the
caller gets DocumentTooComplexError. Arguments (a document's bytes) travel through the
pool's pipe, never a temp file. A job of several stages (parse, OCR page by page, chunk)
gives each stage its own time limit with ``time_limit`` and reports progress with
``report``; both reach the caller while the job runs.

Workers start from a 'forkserver' and, as with any 'forkserver' or 'spawn' process,
re-import the program's ``__main__`` module: scripts that load documents must keep their
work under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import psutil

from core.errors import DocumentTooComplexError
from core.memory import release_freed_memory

log = logging.getLogger(__name__)

T = TypeVar("T")

WORKER_START_TIMEOUT_S = 60.0
OWNER_CHECK_INTERVAL_S = 1.0
# Address space a worker may add on top of what it holds after start-up: a last line of
# defence behind pypdf's own decompression limits (which stay at their defaults).
WORKER_MEMORY_HEADROOM_BYTES = 3 * 1024**3
# What a worker imports before it forks: every parser, so no job pays for the imports.
PRELOADED_MODULES = ["ingest.loader"]

OnEvent = Callable[[object], None]


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """How long a job's current stage may take, and what the stage is called in the error."""

    seconds: float
    what: str = "Parsing"


@dataclass(frozen=True, slots=True)
class _JobDone:
    """Sent by the caller's side down a worker's event pipe when the job's result is in."""


# In a worker: the write end of its event pipe (set at start-up); None elsewhere.
_events: Connection | None = None


def time_limit(seconds: float, what: str = "Parsing") -> None:
    """In a job: the stage starting now may take ``seconds``; past that the pool kills the
    worker and the caller gets "<what> '<file>' took longer than the <seconds> s limit".
    Does nothing outside a worker."""
    report(TimeLimit(seconds, what))


def report(event: object) -> None:
    """In a job: hand ``event`` (small and picklable) to the caller's ``on_event`` while the
    job runs. Does nothing outside a worker."""
    if _events is not None:
        _events.send(event)


def _init_worker(owner_pid: int, owner_started: float, events: Connection) -> None:
    """Runs in each worker at start-up: cap its memory, make it die with the API, keep the
    pipe its jobs report on."""
    global _events
    _events = events
    _limit_worker_memory()
    threading.Thread(
        target=_exit_when_gone, args=(owner_pid, owner_started), name="owner-watch", daemon=True
    ).start()


def _exit_when_gone(owner_pid: int, owner_started: float) -> None:
    """A worker's parent is the forkserver, not the API, and it holds the write end of its
    own job queue: without this, a SIGKILLed API leaves its workers (and with them the
    forkserver and resource tracker) running forever."""
    while True:
        time.sleep(OWNER_CHECK_INTERVAL_S)
        try:
            alive = psutil.Process(owner_pid).create_time() == owner_started
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            os._exit(0)


def _limit_worker_memory() -> None:
    """The worker's address-space cap.

    The cap is relative: a worker re-imports the parent's ``__main__`` module (how
    'forkserver' and 'spawn' work), which may already have mapped gigabytes (torch).
    """
    try:
        import resource

        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + WORKER_MEMORY_HEADROOM_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        log.debug("no address-space limit for parser workers; pypdf's own limits remain")


_main_swap_lock = threading.Lock()


@contextlib.contextmanager
def _bare_main_module() -> Iterator[None]:
    """Start worker processes as if from a bare interpreter.

    'forkserver' and 'spawn' children re-run the parent's ``__main__`` file; that may be
    a Streamlit page or a script without a main guard, which must not run again inside a
    parser. The process is started synchronously by ``submit``, so the swap is brief.
    """
    with _main_swap_lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class _Overrun(Exception):
    """A job's stage went past its time limit."""

    def __init__(self, limit: TimeLimit) -> None:
        super().__init__(limit)
        self.limit = limit


class _Worker:
    """One worker process in its own executor, so a hung parse can be killed alone.

    Its jobs' events (time limits, progress) come back on a pipe of its own; the caller's
    side writes a _JobDone to the same pipe when the result is in, so one blocking read
    sees every event of the job, in order, then its end.
    """

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        owner = psutil.Process()
        self._events, self._events_in = context.Pipe(duplex=False)
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=context,
            initializer=_init_worker,
            initargs=(owner.pid, owner.create_time(), self._events_in),
        )
        self.busy = False  # a job of it is still running after ``run`` returned or raised
        # Starting the process (and learning its pid) here keeps start-up cost out of
        # the parse timeout.
        try:
            with _bare_main_module():
                started = self._executor.submit(os.getpid)
            self.pid: int = started.result(timeout=WORKER_START_TIMEOUT_S)
        except BaseException:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._close_pipe()
            raise

    def run(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        limit: TimeLimit,
        on_event: OnEvent | None,
    ) -> T:
        """``fn`` in the worker; raises _Overrun when a stage outlasts its limit."""
        future = self._executor.submit(fn, *args, **kwargs)
        future.add_done_callback(self._job_done)
        try:
            return self._wait(future, limit, on_event)
        finally:
            self.busy = not future.done()
            if not self.busy:
                self._drop_last_arguments()

    def _wait(self, future: Future[T], limit: TimeLimit, on_event: OnEvent | None) -> T:
        deadline = time.monotonic() + limit.seconds
        while self._events.poll(max(0.0, deadline - time.monotonic())):
            event = self._events.recv()
            if isinstance(event, _JobDone):
                return future.result()
            if isinstance(event, TimeLimit):
                limit, deadline = event, time.monotonic() + event.seconds
            elif on_event is not None:
                on_event(event)
        raise _Overrun(limit)

    def _job_done(self, _: object) -> None:
        # Every event the job sent is in the pipe before its result left the worker.
        with contextlib.suppress(OSError):  # a killed worker's pipe may be closed
            self._events_in.send(_JobDone())

    def _drop_last_arguments(self) -> None:
        """The call queue's feeder thread holds the last job's pickled arguments (the
        document's bytes) until the next job is sent: send a small one so they go now."""
        with contextlib.suppress(Exception):  # a broken pool has nothing left to drop
            self._executor.submit(release_freed_memory).result(timeout=WORKER_START_TIMEOUT_S)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._close_pipe()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._close_pipe()

    def _close_pipe(self) -> None:
        self._events.close()
        self._events_in.close()


class ParserPool:
    """A fixed number of lazily started worker processes; each job gets a whole worker.

    A job waits for a free worker before its clock starts, so the timeout measures
    parsing, not queueing behind other uploads.
    """

    def __init__(self, workers: int = 0, start_method: str = "forkserver") -> None:
        """``workers``: how many processes at most; 0 means one per available CPU core."""
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # Workers fork from a server that has already imported the parsers.
            self._context.set_forkserver_preload(PRELOADED_MODULES)  # type: ignore[attr-defined]
        self._workers = workers or available_cores()
        self._slots: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(self._workers):
            self._slots.put(None)  # None: a free slot whose worker is not started yet
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeout_s: float,
        filename: str,
        what: str = "Parsing",
        on_event: OnEvent | None = None,
        **kwargs: Any,
    ) -> T:
        """``fn(*args, **kwargs)`` in a worker; DocumentTooComplexError after ``timeout_s``
        (or, once the job calls ``time_limit``, after the limit of its current stage).
        ``on_event`` gets what the job ``report``s, in this thread, as it arrives."""
        worker = self._slots.get()
        refilling = False  # True once a background thread owns refilling this slot
        try:
            if self._closed:
                raise RuntimeError("the parser pool has been shut down")
            if worker is None:
                worker = self._start_worker()
            try:
                return worker.run(fn, args, kwargs, TimeLimit(timeout_s, what), on_event)
            except _Overrun as overrun:
                self._discard(worker, kill=True)
                refilling = self._refill_slot_in_background()
                limit = overrun.limit
                raise DocumentTooComplexError(
                    f"{limit.what} '{filename}' took longer than the {limit.seconds:g} s "
                    "limit; the file may be very large or malformed. Split it into smaller "
                    "files, or raise PGPT_PARSE_TIMEOUT_S (per file) or "
                    "PGPT_PARSE_TIMEOUT_PER_PAGE_S.",
                    filename=filename,
                ) from None
            except BrokenProcessPool:
                # The worker died mid-parse: most likely it hit the memory cap. Its pid
                # may already belong to another process, so it is not signalled.
                self._discard(worker, kill=False)
                refilling = self._refill_slot_in_background()
                raise DocumentTooComplexError(
                    f"The parser stopped unexpectedly while reading '{filename}'; the file may "
                    "need more memory than allowed or be malformed. Split it into smaller "
                    "files or re-export it, and upload again.",
                    filename=filename,
                ) from None
            except BaseException:
                if worker.busy:  # the caller's side failed mid-job (``on_event`` raised)
                    self._discard(worker, kill=True)
                    refilling = self._refill_slot_in_background()
                raise
        finally:
            if not refilling:
                self._slots.put(worker)

    def warm_up(self) -> None:
        """Start every worker now, so the first uploads do not wait for process start-up."""
        taken = [self._slots.get() for _ in range(self._workers)]
        try:
            for index, worker in enumerate(taken):
                if worker is None and not self._closed:
                    taken[index] = self._start_worker()
        finally:
            for worker in taken:
                self._slots.put(worker)

    def close(self) -> None:
        """Stop every worker, killing any that is still busy."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
        for worker in workers:
            worker.kill()

    @property
    def size(self) -> int:
        """How many workers the pool runs at most (how many jobs run side by side)."""
        return self._workers

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in self._live]

    def _start_worker(self) -> _Worker:
        worker = _Worker(self._context)
        with self._lock:
            self._live.add(worker)
        return worker

    def _refill_slot_in_background(self) -> bool:
        """Start a lost worker's successor in a thread that then frees the slot, so the
        next upload finds a ready worker instead of paying for process start-up."""

        def refill() -> None:
            worker: _Worker | None = None
            try:
                if not self._closed:
                    worker = self._start_worker()
            except Exception:
                log.exception("could not start a parser worker; the next upload will retry")
            finally:
                self._slots.put(worker)

        threading.Thread(target=refill, name="parser-worker-start", daemon=True).start()
        return True

    def _discard(self, worker: _Worker, *, kill: bool) -> None:
        with self._lock:
            self._live.discard(worker)
        if kill:
            worker.kill()
        else:
            worker.close()


_pool: ParserPool | None = None
_pool_lock = threading.Lock()


def available_cores() -> int:
    """CPU cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def get_parser_pool(workers: int = 0) -> ParserPool:
    """The process-wide parser pool, created on first use and closed at exit.

    ``workers`` sizes it when this call creates it (0: one per core); later calls get the
    existing pool whatever they ask for.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ParserPool(workers)
        elif workers and workers != _pool.size:
            log.warning(
                "the parser pool already runs %d workers; %d requested", _pool.size, workers
            )
        return _pool


def shutdown_parser_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def _register_exit_hook() -> None:
    # concurrent.futures joins its pools in a threading-shutdown hook that runs before
    # atexit handlers and would wait for a hung parse; ours must run first and kill it.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(shutdown_parser_pool)
    else:
        import atexit

        atexit.register(shutdown_parser_pool)


_register_exit_hook()
