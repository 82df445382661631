"""How a search stops on a signal: Ctrl-C (SIGINT) held across storage calls, SIGTERM as Ctrl-C.

A KeyboardInterrupt raised inside a database call leaves the driver half-way: SQLAlchemy
then invalidates the connection and logs a traceback on the user's terminal, and a write
may be left undone. autolr's own storage calls during a search therefore run with Ctrl-C
held; it takes effect right after the call, where the search marks its trials interrupted.
SIGTERM (``kill PID``, a batch scheduler's stop) takes that same path.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold SIGINT inside the block and deliver it, to the handler it had, right after.

    Blocks may nest (the signal reaches the outermost one's end). Outside the main thread
    Python cannot set a signal handler, and none is needed there (signals reach the main
    thread only), so the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        signal.raise_signal(signal.SIGINT)


@contextmanager
def termination_as_ctrl_c() -> Iterator[list[int]]:
    """Inside the block SIGTERM (``kill PID``, a batch scheduler's stop or preemption) acts as
    Ctrl-C: it raises SIGINT, so the search stops the same clean way. Yields the list of
    SIGTERMs received, which picks the exit status (143 rather than 130). Main thread only.
    """
    received: list[int] = []

    def on_terminate(signum: int, _frame: object) -> None:
        received.append(signum)
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_on_first_ctrl_c() -> None:
    """From now on, the first SIGINT raises KeyboardInterrupt and later ones are ignored.

    For a worker process: a Ctrl-C in the terminal reaches it, and the main process forwards
    its own stop too; the second must not cut short the marking of the first's trials.
    """
    stopped: list[int] = []

    def on_interrupt(signum: int, _frame: object) -> None:
        if not stopped:
            stopped.append(signum)
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
