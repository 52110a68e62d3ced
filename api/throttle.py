"""Login throttling: failed attempts counted per username and per client address in a sliding
window; past the limit the login is refused (429 with ``Retry-After``) before any password is
hashed, so guessing is slow and a flood costs the server almost nothing.

Counts live in the process (a dict, pruned as it goes): with ``linli serve --workers N`` each
process counts on its own, so an attacker spread over the processes gets up to N times the
limit. That keeps a failed login free of database writes; a shared store would be needed to
make the limit exact across processes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` events per key in any ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.max_keys, self.clock = limit, window_s, max_keys, clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if not events:
            del self._events[key]
        return events

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            if len(events) < self.limit:
                return 0
            return max(1, math.ceil(events[-self.limit] + self.window_s - now))

    def add(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            if key not in self._events and len(self._events) >= self.max_keys:
                self._prune(now)
            self._events.setdefault(key, deque()).append(now)

    def discard_one(self, key: str) -> None:
        """Take back the newest event of ``key`` (an attempt that turned out to succeed)."""
        with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()
                if not events:
                    del self._events[key]

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)

    def _prune(self, now: float) -> None:
        """Forget keys whose events left the window; if a spray of distinct keys still fills the
        table, forget the oldest half (memory stays bounded; those keys start afresh)."""
        for key in list(self._events):
            self._recent(key, now)
        if len(self._events) >= self.max_keys:
            by_age = sorted(self._events, key=lambda k: self._events[k][-1])
            for key in by_age[: len(by_age) // 2]:
                del self._events[key]


class LoginGuard:
    """Throttles logins per username and per client address.

    Each attempt counts as a failure from the start (so concurrent guesses cannot all slip
    past the check) and is taken back if the password was right; a success also forgets the
    username's failures, but not the address's (an attacker with an account of their own
    could otherwise reset their address by logging in).
    """

    def __init__(self, per_user: int, per_address: int, window_s: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.users = SlidingWindow(per_user, window_s, clock=clock)
        self.addresses = SlidingWindow(per_address, window_s, clock=clock)

    def attempt(self, username: str, address: str) -> int:
        """Count an attempt and return 0, or return the seconds to wait (nothing counted)."""
        wait = max(self.users.retry_after(username), self.addresses.retry_after(address))
        if wait:
            return wait
        self.users.add(username)
        self.addresses.add(address)
        return 0

    def succeeded(self, username: str, address: str) -> None:
        self.users.clear(username)
        self.addresses.discard_one(address)
