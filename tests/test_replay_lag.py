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


async def test_every_browser_page_says_when_the_shadow_replays_far_behind(aiohttp_server,
                                                                         tmp_path):
    """Past the alert's bound (30 s) the browser shows the lag on every page; below it,
    nothing. The lag is observed directly: making a real shadow 30 s late would cost the
    suite 30 s for a line of HTML."""
    from aiohttp import web

    from tests.support import admin_url, make_config, reader, running

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/", ok)
    legacy, candidate = await aiohttp_server(app), await aiohttp_server(app)
    config = make_config(tmp_path, str(legacy.make_url("")), str(candidate.make_url("")))
    async with running(config) as runtime, reader() as client:
        async def page(path: str) -> str:
            async with client.get(admin_url(runtime, path)) as reply:
                return await reply.text()

        runtime.verifier.lag.observe(12.0)
        assert 'id="banner-replay-lag"' not in await page("/")
        runtime.verifier.lag.observe(45.0)
        for path in ("/", "/signatures"):
            text = await page(path)
            assert 'id="banner-replay-lag"' in text and "replays 45 s behind" in text


def test_the_allowance_covers_the_shadows_whole_reply_not_only_its_start():
    # a "now" the shadow stamps at the end of a slow reply is that much later
    lag = ReplayLag(clock=Clock())
    lag.observe(0.2, span=3.4)
    assert lag.current == 0.2
    assert lag.allowance == 4.0
