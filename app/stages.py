"""A pipeline stage: work on a thread of its own, joined to the caller by a small bounded queue.

    >>> from app.stages import Stage
    >>> with Stage.source(decode(), maxsize=2) as frames, Stage.sink(write, maxsize=8) as out:
    ...     for frame in frames:                 # decoded on the source's thread, at most 2 ahead
    ...         out.put(segment(frame))          # written on the sink's thread, at most 8 behind

The bound keeps memory flat however long the clip, and lets the stages overlap on every core. An error on a stage's
thread is raised, as the original exception, in the caller (at its next item, or when it closes the stage).
Leaving the `with` block, normally or on an error, stops the thread and waits for it, and a source's iterator is
closed on its own thread (a generator reading ffmpeg stops its ffmpeg): nothing is left running. Blocked puts and
gets wake as soon as either side stops: no polling.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator

_END = object()     # what a get returns once the queue is closed and empty


class _Queue:
    """A bounded FIFO that either side can close; a put or get blocked on it then returns at once."""

    def __init__(self, maxsize: int) -> None:
        self._items: collections.deque = collections.deque()
        self._maxsize = max(1, maxsize)
        self._changed = threading.Condition()
        self._closed = False

    def put(self, item) -> bool:
        """Wait for room and add `item`; False (and nothing added) once the queue is closed."""
        with self._changed:
            while len(self._items) >= self._maxsize and not self._closed:
                self._changed.wait()
            if self._closed:
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self):
        """The oldest item, waiting for one; _END once the queue is closed and empty."""
        with self._changed:
            while not self._items and not self._closed:
                self._changed.wait()
            if not self._items:
                return _END
            self._changed.notify_all()
            return self._items.popleft()

    def close(self, drop: bool = False) -> None:
        """No more puts; `drop`: forget the items not yet taken, too."""
        with self._changed:
            self._closed = True
            if drop:
                self._items.clear()
            self._changed.notify_all()


class Stage:
    """A thread and the bounded queue between it and the caller. Made by `source` (the thread produces, the caller
    iterates) or `sink` (the caller `put`s, the thread consumes); use it as a context manager."""

    def __init__(self, work: Callable[[_Queue], None], maxsize: int, *, source: bool, name: str) -> None:
        self._queue = _Queue(maxsize)
        self._source = source
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    @classmethod
    def source(cls, items: Iterable, maxsize: int, name: str = "stage-source") -> "Stage":
        """Iterate `items` on a thread, up to `maxsize` items ahead of the caller, who iterates the stage."""
        def work(queue: _Queue) -> None:
            it = iter(items)
            try:
                for item in it:
                    if not queue.put(item):     # the caller stopped
                        return
            finally:
                _close(it)
        return cls(work, maxsize, source=True, name=name)

    @classmethod
    def sink(cls, fn: Callable[[object], None], maxsize: int, name: str = "stage-sink") -> "Stage":
        """Call `fn(item)` on a thread for each item the caller `put`s, in order, up to `maxsize` items behind."""
        def work(queue: _Queue) -> None:
            while (item := queue.get()) is not _END:
                fn(item)
        return cls(work, maxsize, source=False, name=name)

    def _run(self, work: Callable[[_Queue], None]) -> None:
        try:
            work(self._queue)
        except BaseException as exc:    # handed to the caller, which raises it
            self._error = exc
        finally:    # wakes the caller: the end of a source's items (then its error), or a sink's error
            self._queue.close(drop=self._error is not None and not self._source)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item) -> None:
        """Hand `item` to a sink's thread, waiting while `maxsize` items are queued; raises the thread's error."""
        if not self._queue.put(item):
            self._raise()
            raise RuntimeError(f"{self._thread.name} is closed")

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        """A source's next item; raises the thread's error once the items made before it are taken."""
        item = self._queue.get()
        if item is _END:
            self._raise()
            raise StopIteration
        return item

    def close(self) -> None:
        """The caller is done: a sink handles every item put and a source stops (what it made ahead is dropped);
        waits for the thread, then raises its error if it had one."""
        self._queue.close(drop=self._source)
        self._thread.join()
        self._raise()

    def cancel(self) -> None:
        """Stop now, dropping what is queued, and wait for the thread (which finishes the item in hand)."""
        self._queue.close(drop=True)
        self._thread.join()

    def __enter__(self) -> "Stage":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.cancel()   # the caller's exception goes on; the thread's, if any, is secondary


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of `size` items (the last may be shorter); closing it closes `items` (a reader's ffmpeg) at once."""
    it = iter(items)
    try:
        batch: list = []
        for item in it:
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        _close(it)


def _close(it: Iterator) -> None:
    """Close an iterator that can be closed (a generator: its `finally` runs now, e.g. a reader stops its ffmpeg)."""
    close = getattr(it, "close", None)
    if close is not None:
        close()
