"""Time `compare_replies` against DeepDiff alone on JSON reply pairs of 0.7, 7 and 70 KB.

Run: .venv/bin/python bench/compare_speed.py [--repeat 5]

Cases, per size:
    identical   byte-identical bodies (the fast path)
    reordered   equal documents, every object's keys in reverse order
    differing   one leaf changed in the middle of the document
    deepdiff    DeepDiff on the parsed reordered pair (what diffing every reply would cost)
Prints microseconds per call (best of `--repeat` runs).
"""

from __future__ import annotations

import argparse
import json
import random
import timeit

import orjson
from deepdiff import DeepDiff

from shadow.compare import ReplyRules, compare_replies
from shadow.verdict import Reply

HEADERS = (("Content-Type", "application/json"), ("Date", "Wed, 04 Feb 2026 15:47:20 GMT"))


def entries(count: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    return {
        "user": {"id": 42, "name": "Ada", "tz": "Europe/Berlin"},
        "total": count,
        "entries": [
            {
                "id": n,
                "mood": rng.randint(1, 5),
                "score": round(rng.uniform(0, 10), 2),
                "note": rng.choice(["calm", "tired", "ok", "great day", "rainy"]),
                "tags": rng.sample(["work", "sleep", "sport", "family", "food"], 2),
                "done": rng.random() < 0.5,
                "created_at": f"2026-02-{1 + n % 28:02d} 15:47:{n % 60:02d}",
            }
            for n in range(count)
        ],
    }


def reordered(value):
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


def reply(body: bytes) -> Reply:
    return Reply(200, HEADERS, body, 0.01)


def per_call(stmt, repeat: int) -> float:
    timer = timeit.Timer(stmt)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rules = ReplyRules()
    print(f"{'size':>8} {'identical':>12} {'reordered':>12} {'differing':>12} {'deepdiff':>12}   (µs per call)")
    for count in (6, 60, 600):
        doc = entries(count)
        body = orjson.dumps(doc)
        other = json.dumps(reordered(doc), separators=(",", ":")).encode()
        changed = entries(count)
        changed["entries"][count // 2]["score"] += 1
        primary, copy = reply(body), reply(bytes(body))
        equal, differing = reply(other), reply(orjson.dumps(changed))
        assert compare_replies(primary, equal, rules).matched
        assert not compare_replies(primary, differing, rules).matched
        parsed_a, parsed_b = orjson.loads(body), orjson.loads(other)
        times = [
            per_call(lambda: compare_replies(primary, copy, rules), args.repeat),
            per_call(lambda: compare_replies(primary, equal, rules), args.repeat),
            per_call(lambda: compare_replies(primary, differing, rules), args.repeat),
            per_call(lambda: DeepDiff(parsed_a, parsed_b), args.repeat),
        ]
        size = f"{len(body) / 1024:.1f} KB"
        print(f"{size:>8} " + " ".join(f"{t:>12.1f}" for t in times))


if __name__ == "__main__":
    main()
