"""The replay lag: latest value and the windowed allowance granted to reply timestamps."""

from shadow.replay_lag import ReplayLag


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_allowance_is_the_largest_lag_of_the_window_rounded_up():
    clock = Clock()
    lag = ReplayLag(window=60, clock=clock)
    assert lag.allowance == 0.0
    lag.observe(0.3)
    lag.observe(4.2)
    clock.now += 1
    lag.observe(0.1)
    assert lag.current == 0.1
    assert lag.allowance == 5.0
    clock.now += 59.5
    assert lag.allowance == 5.0
    clock.now += 1
    assert lag.allowance == 1.0  # only the 0.1 s second is left
    clock.now += 120
    assert lag.allowance == 0.0


def test_a_negative_lag_counts_as_none():
    lag = ReplayLag(clock=Clock())
    lag.observe(-0.002)
    assert lag.current == 0.0 and lag.allowance == 0.0
