"""Route templates learned from traffic: values fold, words stay, everything bounded."""

from shadow.route_learning import MAX_LITERAL_CHARS, OTHER, RouteLearner


def feed(learner, paths, times=1):
    return [learner.name(p) for p in paths for _ in range(times)]


def test_a_constant_segment_becomes_a_literal_only_after_min_hits():
    learner = RouteLearner(min_hits=5, max_literals=10)
    names = feed(learner, ["/api/status"] * 6)
    assert names[:5] == [OTHER] * 5   # "api" promoted at the 5th, "status" counted from it
    for _ in range(10):
        last = learner.name("/api/status")
    assert last == "/api/status"


def test_usernames_emails_tokens_and_slugs_fold_like_numeric_ids():
    learner = RouteLearner(min_hits=3, max_literals=5)
    values = ["jane", "someone@example.com", "tok_9f8e7d6c5b4a", "my-first-post",
              "JaneDoe", "bob", "17", "alice.smith"]
    for _ in range(4):
        feed(learner, [f"/api/users/{v}/records" for v in values])
    assert {learner.name(f"/api/users/{v}/records") for v in values} \
        == {"/api/users/{param}/records"}
    assert all("jane" not in r.template for r in learner.learned())


def test_a_segment_that_reads_as_a_value_never_becomes_a_literal():
    learner = RouteLearner(min_hits=3, max_literals=4)
    for value in ("jane@example.com", "jane%40example.com", "4421", "tok_9f8e7d6c5b4a3f"):
        names = set(feed(learner, [f"/api/{value}/records"], times=30))
        assert all(value not in name for name in names), names
        assert all(value not in key for key in learner._root.literal["api"].seen)
    assert learner.name("/api/jane@example.com/records") == "/api/{param}/records"


def test_a_value_learned_as_a_literal_is_forgotten_when_its_position_turns_variable():
    retired = []
    learner = RouteLearner(min_hits=3, max_literals=4, on_retired=retired.append)
    feed(learner, ["/api/users/alice/records"], times=12)
    assert learner.name("/api/users/alice/records") == "/api/users/alice/records"
    feed(learner, [f"/api/users/u{i}/records" for i in range(6)], times=2)
    assert learner.name("/api/users/alice/records") == "/api/users/{param}/records"
    assert retired == ["/api/users/alice/records"]
    assert [r.template for r in learner.learned()] == ["/api/users/{param}/records"]


def test_configured_literals_are_pinned():
    learner = RouteLearner(min_hits=2, max_literals=3, pinned=["/api/users/me"])
    feed(learner, [f"/api/users/u{i}/x" for i in range(10)], times=2)
    feed(learner, ["/api/users/me/x"], times=3)
    assert learner.name("/api/users/me/x") == "/api/users/me/x"
    assert learner.name("/api/users/u3/x") == "/api/users/{param}/x"


def test_a_template_is_learned_only_after_it_repeats():
    learner = RouteLearner(min_hits=1, max_literals=10, repeats=3)
    assert feed(learner, ["/a"] * 4) == [OTHER, OTHER, "/a", "/a"]


def test_long_segments_are_never_literals_nor_kept():
    learner = RouteLearner(min_hits=1, max_literals=3)
    long = "x" * (MAX_LITERAL_CHARS + 1)
    names = feed(learner, [f"/{long}{i}" for i in range(10)], times=2)
    assert names[-1] == "/{param}"
    assert all(long not in key for key in learner._root.seen)


def test_flood_of_distinct_segments_stays_bounded():
    learner = RouteLearner(max_templates=50)
    names = set()
    for i in range(2000):
        names.add(learner.name(f"/p{i}/q{i % 97}/r{i}"))
    assert len(names) <= 51
    assert learner._positions < 100
    assert all(len(p) <= 256 for p in learner._cache)


def test_learned_lists_templates_most_used_first():
    learner = RouteLearner(min_hits=1, max_literals=10)
    feed(learner, ["/a"] * 3 + ["/b"] * 6)
    assert [(r.template, r.hits) for r in learner.learned()] == [("/b", 5), ("/a", 2)]
