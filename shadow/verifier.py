"""From two observations to a published Comparison.

A `Pair` (shadow.pair) joins the primary's and the shadow's replies of one exchange,
whichever arrives last. When both are in, the pair is concluded on the next loop turn
(never inside the client's request handler): the verdict is decided, the replies compared,
and the result published to metrics, to the state store (a sample built by shadow.privacy)
and to listeners such as the cutover gate's statistics, unless it is held first (values
still being learnt: shadow.holding; a read that raced writes: shadow.rechecker). Any
failure here is the verifier's own: it goes to `raised`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import replace
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shadow.compare import compare_replies
from shadow.backend_logs import LogFollower
from shadow.compare.fresh import request_key
from shadow.compare.noise import NoiseModel
from shadow.compare.offload import Offload
from shadow.compare.replies import ReplyDiff
from shadow.compare.rules import ReplyRules
from shadow.events import BackendStates
from shadow.holding import Holding
from shadow.metrics import Metrics
from shadow.pair import Pair
from shadow.privacy import SampleBuilder
from shadow.privacy.sample import light
from shadow.replay_lag import ReplayLag
from shadow.routes import RoutePolicy
from shadow.rows.crossed import CROSSED
from shadow.rows.ids import Translated, collection_of, group_pairs
from shadow.rows.live import RowState
from shadow.store import Store
from shadow.verdict import (
    ROW_KINDS, Comparison, Difference, Exchange, Observation, Reply, Role, Verdict,
    row_parts, row_path, signature, signature_path,
)

if TYPE_CHECKING:
    from shadow.rechecker import Rechecker
    from shadow.writes.groups import GroupRows

__all__ = ["Pair", "Verifier"]
RACED = str(Verdict.RACED)
"""The `kind` of the store's signatures of raced exchanges (unverified, not mismatches)."""
log = logging.getLogger("shadow.verifier")
_NO_DIFFERENCE = ReplyDiff(())


class Verifier:
    """Decides verdicts, compares replies and publishes comparisons. `listeners` hear of
    each exchange's verdict once, when it is recorded (a held one late); `probes` of each
    compared exchange as it concludes, bodies and all, before it may be held (A/A
    calibration); `holding` keeps the fresh-value learner's cold start (shadow.holding),
    `recheck` the mismatched reads that raced writes (shadow.rechecker)."""

    def __init__(self, *, metrics: Metrics, store: Store | None, privacy: SampleBuilder,
                 rules: ReplyRules, labels: dict[str, str],
                 raised: Callable[[str, BaseException], None],
                 rows: RowState | None = None, noise: NoiseModel | None = None,
                 logs: dict[str, LogFollower] | None = None, hold_seconds: float = 0.0,
                 max_held: int = 1000) -> None:
        self.metrics = metrics
        self.noise = noise
        self.logs = logs or {}
        self.rows = rows
        self.store = store
        self.privacy = privacy
        self._rules = rules
        self._route_rules: dict[str, ReplyRules] = {}
        self.labels = labels
        self.raised = raised
        self.listeners: list[Callable[[Comparison], None]] = []
        self.probes: list[Callable[[Comparison], None]] = []
        self.backends: BackendStates | None = None
        self.offload: Offload | None = None
        self.concluded = 0
        self.lag = ReplayLag()
        self.holding = Holding(
            noise=noise, wait=hold_seconds, most=max_held, metrics=metrics, privacy=privacy,
            publish=self.publish_held, raised=raised,
            signatures=lambda c: self.signatures(c.exchange, c.differences),
        ) if noise is not None and noise.fresh is not None and hold_seconds > 0 else None
        self._held_sample: dict[str, Any] | None = None
        self.recheck: Rechecker | None = None

    def pair(self, exchange: Exchange, policy: RoutePolicy, primary_backend: str,
             shadow_backend: str) -> Pair:
        return Pair(self, exchange, policy, primary_backend, shadow_backend)

    def rules_at_lag(self, policy: RoutePolicy) -> ReplyRules:
        """The route's rules, granting "now" timestamps the shadow's recent replay lag."""
        return self.rules_for(policy).at_lag(self.lag.allowance)

    def rules_for(self, policy: RoutePolicy) -> ReplyRules:
        rules = self._route_rules.get(policy.template)
        if rules is None:
            rules = self._rules
            if policy.ignore_paths or policy.unordered_paths:
                rules = rules.with_overrides(ignore_paths=policy.ignore_paths,
                                             unordered_paths=policy.unordered_paths)
            self._route_rules[policy.template] = rules
        return rules

    def skipped(self, route: str, method: str, reason: str) -> None:
        """Count an exchange that is not compared at all (policy, sampling, size, mode)."""
        self.metrics.child(self.metrics.requests, route, method, Verdict.SKIPPED).inc()
        self.metrics.skipped.labels(route, reason).inc()

    def observe_primary(self, backend: str, route: str, reply: Reply) -> None:
        label = self.labels.get(backend, backend)
        if self.backends is not None:
            self.backends.seen(backend, Role.PRIMARY, reply)
        if reply.ok:
            self.metrics.child(self.metrics.upstream_duration, label, Role.PRIMARY,
                               route).observe(reply.elapsed)
        else:
            self.metrics.upstream_errors.labels(label, Role.PRIMARY, reply.error).inc()

    def conclude(self, pair: Pair, reply_diff: ReplyDiff | None = None) -> Comparison | None:
        """Compare and publish one pair. A failure to compare still publishes the exchange
        (verdict skipped, reason internal_error), so the gate and the rollback ledger
        hear of every exchange. A heavy pair is compared off the loop first (see
        shadow.compare.offload) and concluded when its `reply_diff` is back."""
        if reply_diff is None and self._offload_pair(pair):
            return None
        try:
            try:
                comparison = self.compare(pair, reply_diff)
            except Exception as exc:
                self.raised("compare", exc)
                comparison = self._uncompared(pair)
            if not self._held(comparison, pair):
                self.publish(comparison, pair)
            if self.holding is not None:
                self.holding.settle()
            return comparison
        except Exception as exc:
            self.raised("conclude", exc)
            return None
        finally:
            self.concluded += 1

    def _held(self, c: Comparison, pair: Pair) -> bool:
        """Whether `c` was held for the evidence of the places it differs at (after the
        probes heard of it); a failure to hold it publishes it at once."""
        for probe in self.probes:
            try:
                probe(c)
            except Exception as exc:
                self.raised("listener", exc)
        try:
            if self.holding is not None and self.holding.hold(c, lambda: self._sample(c, pair)):
                return True
        except Exception as exc:
            self.raised("held", exc)
            return False
        try:
            return self.recheck is not None and self.recheck.offer(
                c, pair, lambda: self._sample(c, pair))
        except Exception as exc:
            self.raised("recheck", exc)
            return False

    def _offload_pair(self, pair: Pair) -> bool:
        """Send a heavy pair to the process pool; True when it went."""
        offload, primary, shadow = self.offload, pair.primary, pair.shadow
        if (offload is None or pair.skip_reason or not primary.ok or not shadow.ok
                or pair.rows_expected or (self.rows is not None and self.rows.ids.active)
                or not offload.wants(primary, shadow)):
            return False
        rules = self.rules_at_lag(pair.policy)

        def done(reply_diff: ReplyDiff | None, reason: str) -> None:
            if reply_diff is None:
                pair.skip_reason = pair.skip_reason or reason
            self.conclude(pair, reply_diff or _NO_DIFFERENCE)

        offload.submit(primary, shadow, rules, done)
        return True

    def _uncompared(self, pair: Pair) -> Comparison:
        rows = pair.rows
        p_obs = Observation(pair.primary_backend, Role.PRIMARY, pair.primary, rows.primary if rows else ())
        s_obs = Observation(pair.shadow_backend, Role.SHADOW, pair.shadow, rows.shadow if rows else ())
        return Comparison(pair.exchange, p_obs, s_obs, (), Verdict.SKIPPED, reason="internal_error")

    def primary_failed(self, backend: str, route: str, status: int, error: str) -> None:
        """A client got `status` (502/504) because the primary gave no usable reply."""
        if self.backends is not None:
            self.backends.primary_failed(backend, route, status, error)

    def compare(self, pair: Pair, reply_diff: ReplyDiff | None = None) -> Comparison:
        """The Comparison of a pair whose two replies are in (`reply_diff`: the replies'
        comparison when it was made elsewhere). Pure but for the clock."""
        primary, shadow = pair.primary, pair.shadow
        assert primary is not None and shadow is not None
        ex = pair.exchange
        rows = pair.rows
        p_obs = Observation(pair.primary_backend, Role.PRIMARY, primary, rows.primary if rows else ())
        s_obs = Observation(pair.shadow_backend, Role.SHADOW, shadow, rows.shadow if rows else ())
        if pair.skip_reason or shadow.error == "too_large" or primary.error == "too_large":
            reason = pair.skip_reason or "body_too_large"
            return Comparison(ex, p_obs, s_obs, (), Verdict.SKIPPED, reason=reason)
        if not primary.ok:
            return Comparison(ex, p_obs, s_obs, (), Verdict.PRIMARY_ERROR, reason=primary.error or "")
        if not shadow.ok:
            return Comparison(ex, p_obs, s_obs, (), Verdict.SHADOW_ERROR, reason=shadow.error or "")
        started = time.perf_counter()
        differences: tuple[Difference, ...] = ()
        normalised = 0
        if rows is not None and not rows.skipped:
            differences, normalised = rows.differences, rows.normalised
        shadow, translated = self._read_ids(ex, pair.shadow_backend, rows, shadow)
        rules = self.rules_at_lag(pair.policy)
        result = reply_diff if reply_diff is not None else compare_replies(primary, shadow, rules)
        moved = self._uncross(ex, pair.primary_backend, primary, shadow, result.differences)
        if moved is not None:
            shadow, notes = moved
            result, translated = compare_replies(primary, shadow, rules), translated + notes
        replied, noise = result.differences, 0
        if self.noise is not None:
            key = f"{ex.method} {ex.route}"
            self.noise.observe_compared(key, primary.status, replied, lambda: request_key(
                ex.method, ex.target, ex.body, ex.headers))
            replied, noise = self.noise.split(key, replied, primary.status)
            if noise:
                self.metrics.noise.labels(ex.route, ex.method).inc(noise)
        differences = replied + differences
        normalised += result.normalised + noise + (len(moved[1]) if moved else 0)
        self.metrics.compare_duration.observe(time.perf_counter() - started)
        verdict = Verdict.MISMATCH if differences else Verdict.MATCH
        reason = CROSSED if moved and not differences else ""
        return Comparison(ex, p_obs, s_obs, differences, verdict, normalised=normalised,
                          reason=f"rows: {rows.skipped}" if rows and rows.skipped else reason,
                          signatures=self.signatures(ex, differences), translated=translated,
                          overlapped=pair.watch.writes if pair.watch is not None else 0)

    def signatures(self, ex: Exchange, differences: tuple[Difference, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(
            signature(ex.method, ex.route, d.kind, self._path(d)) for d in differences))

    def _read_ids(self, ex: Exchange, shadow_backend: str, rows: GroupRows | None,
                  shadow: Reply) -> tuple[Reply, tuple[Translated, ...]]:
        """The shadow's reply with its ids read as the primary's: through the pairs its
        group's `rows` taught (overlapping writes may take their ids in another order on
        each side), then through the key map; and the ids so read."""
        state = self.rows
        local = group_pairs(rows.pairs) if rows is not None else {}
        if state is None or shadow.header("content-encoding") is not None or not (
                state.ids.active or any(p != s for t in local.values() for s, p in t.items())):
            return shadow, ()
        body, translated = state.ids.read_reply(
            shadow.body, collection_of(ex.route), shadow_backend == "legacy", local)
        return (shadow if body is shadow.body else replace(shadow, body=body)), translated

    def _uncross(self, ex: Exchange, primary_backend: str, primary: Reply, shadow: Reply,
                 differences: tuple[Difference, ...], counted: bool = True
                 ) -> tuple[Reply, tuple[Translated, ...]] | None:
        """The shadow's reply with the array elements that stand for rows overlapping
        writes numbered in another order on each side put back at the primary's places
        (shadow.rows.crossed), and each element moved (counted in the metrics unless
        `counted` is False); None when the replies did not differ or nothing moved."""
        if self.rows is None or not differences or not len(self.rows.crossings) or (
                shadow.header("content-encoding") or primary.header("content-encoding")):
            return None
        body, moves = self.rows.crossings.read(primary.body, shadow.body, primary_backend)
        if not moves:
            return None
        for table, count in Counter(m.table for m in moves).items() if counted else ():
            self.metrics.crossed.labels(ex.route, ex.method, table).inc(count)
        return replace(shadow, body=body), tuple(
            Translated(f"{m.path}[{m.primary}]", m.table, m.shadow, m.primary, CROSSED)
            for m in moves)

    def fresh_differences(self, ex: Exchange, policy: RoutePolicy, shadow_backend: str,
                          primary: Reply, shadow: Reply, lag: float) -> tuple[Difference, ...]:
        """How two fresh replies to `ex` differ under its pair's rules (ids read as the
        primary's, known noise hidden, "now" stamps granted `lag` seconds or the replay
        lag): a recheck's (shadow.rechecker). Nothing is learnt from them."""
        shadow, _ = self._read_ids(ex, shadow_backend, None, shadow)
        rules = self.rules_for(policy).at_lag(max(self.lag.allowance, lag))
        replied = compare_replies(primary, shadow, rules).differences
        if replied and self.rows is not None:
            moved = self._uncross(ex, next(b for b in self.rows.captures if b != shadow_backend),
                                  primary, shadow, replied, counted=False)
            if moved is not None:
                replied = compare_replies(primary, moved[0], rules).differences
        if self.noise is not None:
            replied, _ = self.noise.split(f"{ex.method} {ex.route}", replied, primary.status)
        return replied

    def publish_held(self, c: Comparison, sample: dict[str, Any]) -> None:
        """Publish a comparison that was held, with the sample built when it was held."""
        self._held_sample = sample
        try:
            self.publish(c, None)
        finally:
            self._held_sample = None

    def publish(self, c: Comparison, pair: Pair | None) -> None:
        ex, m = c.exchange, self.metrics
        route, method = ex.route, ex.method
        if c.shadow is not None and c.shadow.reply.error != "dropped":
            label = self.labels.get(c.shadow.backend, c.shadow.backend)
            if self.backends is not None:
                self.backends.seen(c.shadow.backend, Role.SHADOW, c.shadow.reply)
            if c.shadow.reply.ok:
                m.child(m.upstream_duration, label, Role.SHADOW, route).observe(
                    c.shadow.reply.elapsed)
            else:
                m.upstream_errors.labels(label, Role.SHADOW, c.shadow.reply.error).inc()
        m.child(m.requests, route, method, c.verdict).inc()
        m.replay_lag.set(self.lag.current)
        if c.verdict is Verdict.SKIPPED:
            m.skipped.labels(route, c.reason).inc()
        if c.normalised:
            m.normalised.labels(route, method).inc(c.normalised)
        if c.verdict is Verdict.RACED:
            m.reads_raced.labels(route, method, c.reason).inc()
        elif c.differences:
            for kind in dict.fromkeys(d.kind for d in c.differences):
                m.mismatches.labels(route, method, kind).inc()
            rows = Counter((table, kind) for table, _key, kind in dict.fromkeys(
                (*row_parts(d.path)[:2], d.kind) for d in c.differences if d.kind in ROW_KINDS))
            if pair is None or pair.rows is None or pair.rows.counts_rows:  # rows: once
                for (table, kind), n in rows.items():  # rows, not exchanges: one per row
                    m.row_mismatches.labels(table, kind).inc(n)
        # The gate and the rollback ledger first: nothing after them may hide an exchange.
        for listener in self.listeners:
            try:
                listener(c)
            except Exception as exc:
                self.raised("listener", exc)
        if c.differences:
            try:
                self._store(c, pair)
            except Exception as exc:
                self.raised("store", exc)

    def _logs(self, c: Comparison, pair: Pair) -> dict[str, list[str]]:
        """What each side's followed logs gained while it served the exchange."""
        ex, found = c.exchange, {}
        windows = {c.primary.backend: (ex.received_at,
                                       ex.received_at + c.primary.reply.elapsed)}
        if c.shadow is not None:
            windows[c.shadow.backend] = pair.shadow_window
        for backend, (start, end) in windows.items():
            follower = self.logs.get(backend)
            if follower is not None:
                follower.poll()  # what was written while it answered, read now
                found[self.labels.get(backend, backend)] = follower.during(start, end, ex.id)
        return found

    def _store(self, c: Comparison, pair: Pair | None) -> None:
        if self.store is None:
            return
        ex = c.exchange
        seen: dict[str, tuple[str, str, str, str, str]] = {}
        raced = c.verdict is Verdict.RACED
        for d in c.differences:
            path = self._path(d)
            kind = RACED if raced else str(d.kind)  # raced: apart from the mismatches
            sig = signature(ex.method, ex.route, kind, path)
            seen.setdefault(sig, (sig, ex.method, ex.route, kind, signature_path(path)))
        sigs = list(seen.values())
        sample = None
        if self.store.wants_sample(sigs[0][0]):
            sample = self._held_sample if self._held_sample is not None else self._sample(c, pair)
        self.store.record(signatures=sigs, exchange_id=ex.id, method=ex.method,
                          route=ex.route, sample=sample)
        self.metrics.samples_stored.inc(1 if sample is not None else 0)

    def _sample(self, c: Comparison, pair: Pair | None) -> dict[str, Any]:
        """The sample of `c` with the lines the followed logs gained during it."""
        sample = self.sample(light(c))
        if self.logs and pair is not None:
            sample["logs"] = self.privacy.logs(self._logs(c, pair))
        return sample

    def _path(self, d: Difference) -> str:
        """Where a difference is, as signatures and the store hold it: value-like keys
        fingerprinted, row keys folded."""
        return row_path(replace(d, path=self.privacy.path(d)))

    def sample(self, c: Comparison) -> dict[str, Any]:
        """The stored record of one comparison (shadow.privacy decides what it holds);
        of a held one, the record made when it was held."""
        if c.held and self._held_sample is not None:
            return self._held_sample
        return self.privacy.sample(c, self.labels)

