"""Holding Ctrl-C (SIGINT) across a block that must not be cut short, such as a storage call.

A KeyboardInterrupt raised inside a database call leaves the driver half-way: SQLAlchemy
then invalidates the connection and logs a traceback on the user's terminal, and a write
may be left undone. autolr's own storage calls during a search therefore run with Ctrl-C
held; it takes effect right after the call, where the search marks its trials interrupted.
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
