"""The login throttle's sliding windows, on a hand-driven clock."""

from __future__ import annotations

from api.throttle import LoginGuard, SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_waits_until_its_oldest_counted_event_leaves_the_window() -> None:
    clock = Clock()
    window = SlidingWindow(3, 300, clock=clock)
    for step in range(3):
        assert window.retry_after("wang") == 0
        window.add("wang")
        clock.now += 10 * (step + 1)  # events at 1000, 1010, 1030; now 1060
    assert window.retry_after("wang") == 240  # the event at 1000 leaves at 1300
    assert window.retry_after("li") == 0
    clock.now = 1300
    assert window.retry_after("wang") == 0
    window.add("wang")
    assert window.retry_after("wang") == 10  # now 1010, 1030, 1300: 1010 leaves at 1310
    window.discard_one("wang")
    assert window.retry_after("wang") == 0


def test_the_table_of_keys_stays_bounded() -> None:
    clock = Clock()
    window = SlidingWindow(2, 300, max_keys=100, clock=clock)
    for n in range(1000):
        window.add(f"user{n}")
        clock.now += 0.01
    assert len(window._events) <= 100
    clock.now += 301
    window.add("late")
    assert len(window._events) <= 100


def test_the_guard_counts_per_username_and_per_address() -> None:
    clock = Clock()
    guard = LoginGuard(per_user=2, per_address=3, window_s=60, clock=clock)
    assert guard.attempt("wang", "10.0.0.1") == 0
    assert guard.attempt("wang", "10.0.0.2") == 0
    assert guard.attempt("wang", "10.0.0.3") == 60  # the username, from any address
    assert guard.attempt("li", "10.0.0.1") == 0
    assert guard.attempt("zhao", "10.0.0.1") == 0
    assert guard.attempt("qian", "10.0.0.1") == 60  # the address, for any username
    guard.succeeded("zhao", "10.0.0.1")  # forgets zhao, takes back one of the address's
    assert guard.attempt("qian", "10.0.0.1") == 0
    assert guard.attempt("sun", "10.0.0.1") == 60
    clock.now += 60
    assert guard.attempt("wang", "10.0.0.1") == 0
