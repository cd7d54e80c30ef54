"""Pacing a send: a messages-per-second limit, backoff with jitter, and sleeps a stop request interrupts."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most ``per_second`` messages per second on average (0: no limit).

    Each `wait` reserves its messages' share of time and sleeps until the reservation starts, so a batch
    of 1,000 at 100/s makes the next batch wait 10 s; short bursts never exceed the average.
    """

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.clock = clock
        self._next = 0.0

    def wait(self, n: int, stop: threading.Event | None = None) -> bool:
        """Sleep until ``n`` messages may go. Returns False if a stop was requested meanwhile."""
        if self.per_second <= 0 or n <= 0:
            return not (stop and stop.is_set())
        now = self.clock()
        start = max(now, self._next)
        self._next = start + n / self.per_second
        return sleep_until(start, stop, clock=self.clock)


def backoff_delay(retry: int, base: float, *, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Delay before retry number ``retry`` (1-based): base·2^(retry-1), capped, with "equal jitter".

    Half the delay is fixed and half random, so many senders retrying at once spread out without any of
    them retrying almost immediately.
    """
    full = min(cap, base * (2 ** max(0, retry - 1)))
    return full / 2 + (rng or random).uniform(0, full / 2)


def sleep_until(deadline: float, stop: threading.Event | None = None, *,
                clock: Callable[[], float] = time.monotonic) -> bool:
    """Sleep until ``clock() >= deadline``; returns False early if ``stop`` is set."""
    while True:
        remaining = deadline - clock()
        if stop is not None and stop.is_set():
            return False
        if remaining <= 0:
            return True
        if stop is not None:
            stop.wait(min(remaining, 0.5))
        else:
            time.sleep(min(remaining, 0.5))
