"""What the rechecker remembers of recorded mismatches, and what it never sends again.

A Rechecker over real parts (clocks, metrics, a mirror lane that is never started: no
read here qualifies for a recheck, so nothing is sent), fed comparisons the way the
verifier feeds it: `offer` first, and `heard` once a comparison it did not take is
recorded."""

from __future__ import annotations

from shadow.marker import Marker
from shadow.metrics import Metrics
from shadow.mirror import MirrorLane
from shadow.overlap import Clocks
from shadow.pair import Pair
from shadow.recheck import SAFE
from shadow.rechecker import Rechecker
from shadow.routes import RoutePolicy
from shadow.settings_compare import RecheckSettings
from shadow.verdict import (Comparison, Difference, Exchange, Kind, Observation, Reply, Role,
                            RowChange, Verdict)

OK = Reply(200, (), b'{"n": 1}', 0.01)
BODY = Difference(Kind.BODY, "$.n", 1, 2)
ROW = Difference(Kind.ROW_EXTRA, "audit[9]", None, {"id": 9})
AUDIT = (RowChange("audit", (1,), "insert", None, {"id": 1}),)


def _rechecker(recorded: list[Comparison]) -> Rechecker:
    def fail(where: str, exc: BaseException) -> None:
        raise exc

    return Rechecker(
        settings=RecheckSettings(), clocks=Clocks(), quiet=lambda: False,
        lane=MirrorLane(name="recheck", queue_size=4, workers=1, timeout=1.0, raised=fail),
        upstreams={}, marker=Marker("X-Shadow", "1"), exchange_header="", timeout=1.0,
        max_bytes=1 << 20, methods=SAFE, allowed=lambda exchange, backend: True,
        writes_rows=lambda backend, route: route == "/audited", ids=lambda: None,
        compare=lambda *args: (), shown=lambda d: {"path": d.path},
        publish=lambda c, sample: recorded.append(c), metrics=Metrics(), raised=fail,
        roles=lambda: ("legacy", "candidate"))


def _offered(rechecker: Rechecker, recorded: list[Comparison], n: int, route: str,
             *differences: Difference, writes: int, rows: tuple = AUDIT) -> Comparison | None:
    """Offer one read of `route` (a mismatch when it has `differences`) that `writes`
    writes overlapped on the primary; returns it as recorded, None when it is held."""
    ex = Exchange(f"x-{n}", "GET", route, route, (), b"", 0.0)
    pair = Pair(None, ex, RoutePolicy(template=route), "legacy", "candidate")  # type: ignore[arg-type]
    pair.watch = rechecker.clocks.watch(n)
    ends = [rechecker.clocks.primary.start(n + 1) for _ in range(writes)]
    pair.watch.primary_replied()
    for end in ends:
        end()
    c = Comparison(ex, Observation("legacy", Role.PRIMARY, OK, rows),
                   Observation("candidate", Role.SHADOW, OK, rows), differences,
                   Verdict.MISMATCH if differences else Verdict.MATCH,
                   signatures=tuple(f"GET {route} {d.kind} {d.path}" for d in differences),
                   overlapped=pair.watch.writes)
    before = len(recorded)
    if not rechecker.offer(c, pair, lambda: {}):
        recorded.append(c)           # recorded at once, as the verifier does
        rechecker.heard(c)
    return recorded[-1] if len(recorded) > before else None


def test_a_mismatch_kept_by_its_rows_beside_writes_does_not_make_later_races_mismatches():
    recorded: list[Comparison] = []
    rechecker = _rechecker(recorded)
    first = _offered(rechecker, recorded, 1, "/audited", BODY, ROW, writes=1)
    assert first is not None and first.verdict is Verdict.MISMATCH   # its audit row differs
    later = _offered(rechecker, recorded, 2, "/audited", BODY, writes=1)
    assert later is not None and (later.verdict, later.reason) == (Verdict.RACED,
                                                                   "resend_writes")
    alone = _offered(rechecker, recorded, 3, "/audited", BODY, writes=0)
    assert alone is not None and alone.verdict is Verdict.MISMATCH   # no race explains it
    again = _offered(rechecker, recorded, 4, "/audited", BODY, writes=1)
    assert again is not None and again.verdict is Verdict.MISMATCH   # known to differ there


async def test_a_read_is_sent_again_only_once_its_route_was_seen_reading_without_writing():
    recorded: list[Comparison] = []
    rechecker = _rechecker(recorded)
    beside = _offered(rechecker, recorded, 1, "/count", BODY, writes=1, rows=())
    assert beside is not None and (beside.verdict, beside.reason) == (Verdict.RACED,
                                                                      "resend_writes")
    for n in range(2, 5):            # beside writes, its rows prove nothing
        _offered(rechecker, recorded, n, "/count", writes=1, rows=())
    assert not rechecker.proof.proven("GET", "/count") and len(rechecker) == 0
    for n in range(5, 8):            # alone, and no row written on either side
        _offered(rechecker, recorded, n, "/count", writes=0, rows=())
    assert rechecker.proof.proven("GET", "/count")
    assert _offered(rechecker, recorded, 8, "/count", BODY, writes=1, rows=()) is None
    assert len(rechecker) == 1       # held for its recheck
    rechecker.flush()
    assert recorded[-1].exchange.id == "x-8" and not rechecker.proof.proven("GET", "/other")
