"""Pacing a send: backoff with jitter, and sleeps a stop request interrupts (the shared limits: `pace`)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


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
