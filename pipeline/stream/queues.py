"""Bounded queues between pipeline stages, with the two buffer policies the pipeline needs.

- ``block``: a full queue makes the producer wait (backpressure). Files and folders use it, so no
  frame is ever lost and a slow model simply slows the reader.
- ``drop_oldest``: a full queue discards its oldest item to take the new one, and counts the drop.
  Live sources (cameras, RTSP) use it: a model slower than the camera then sees the newest frames
  with a bounded delay instead of an ever-growing backlog (the "RTSP lag that grows" other tools have).

Ending: each producer calls ``close()`` when it is done; once all ``producers`` have, a consumer gets
:data:`END` after the queued items are drained (several sources' chains can feed one results queue).
``abort()`` ends the queue at once from either side: queued items are discarded and a producer's
``put`` returns False instead of blocking forever, which is how a failing stage stops the stages
upstream of it without deadlock.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Policy = Literal["block", "drop_oldest"]


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()  # what get() returns once the queue is closed and empty


class StageQueue(Generic[T]):
    def __init__(self, maxsize: int, policy: Policy = "block", producers: int = 1):
        if maxsize < 1:
            raise ValueError(f"queue size must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self.policy = policy
        self.dropped = 0
        self._items: deque[T] = deque()
        self._open_producers = producers
        self._closed = False
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def put(self, item: T) -> bool:
        """Add ``item``; False when the queue was closed (the item is discarded)."""
        with self._lock:
            if self.policy == "block":
                while len(self._items) >= self.maxsize and not self._closed:
                    self._not_full.wait()
            elif len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            if self._closed:
                return False
            self._items.append(item)
            self._not_empty.notify()
            return True

    def get(self) -> T | _End:
        """The next item, waiting for one; :data:`END` once closed and drained."""
        with self._lock:
            while not self._items and not self._closed:
                self._not_empty.wait()
            if not self._items:
                return END
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def close(self) -> None:
        """One producer is done; the last one to say so ends the queue (after its items are read)."""
        with self._lock:
            self._open_producers -= 1
            if self._open_producers <= 0:
                self._end()

    def abort(self) -> None:
        """End the queue now and drop what it holds: its consumer is gone or the pipeline is failing."""
        with self._lock:
            self._items.clear()
            self._end()

    def _end(self) -> None:
        self._closed = True
        self._not_empty.notify_all()
        self._not_full.notify_all()

    def __len__(self) -> int:
        return len(self._items)
