"""What the demo pair varies by itself and A/A calibration cannot learn in a test's run.

Both builds draw a fresh CSRF token for every `GET /api/csrf` and a random `error_id` for
every error reply: correct behaviour, not a difference between the builds. Calibration
(shadow/calibrate.py) learns a place only from a read sent twice to the primary's build
while no write ran on it, and never sends twice a read that writes rows. In the demo every
error reply writes an audit row and error replies of writes are never safe to repeat, so
`$.error_id` is never learnt; a token fetched right before a log-in has a write after it
before its comparison ends, so `$.csrf_token` is learnt only in long, quiet runs. The
tests that check where differences are leave these places out, by name, here only.
"""

RANDOM_PATHS = frozenset({"$.error_id", "$.csrf_token"})
