from shadow.route_learning import RouteLearner
from shadow.routes import OTHER, RoutePolicy, RouteTable


def table(*templates, **kw):
    return RouteTable([RoutePolicy(template=t) for t in templates], **kw)


def test_configured_templates_match_segments():
    routes = table("/api/mood/{id}", "/api/mood", "/api/users/{uid}/moods/{id}")
    assert routes.match("GET", "/api/mood/17").template == "/api/mood/{id}"
    assert routes.match("GET", "/api/mood").template == "/api/mood"
    assert routes.match("GET", "/api/users/5/moods/9").template == "/api/users/{uid}/moods/{id}"


def test_literal_segment_wins_over_placeholder():
    routes = table("/api/mood/{id}", "/api/mood/stats")
    assert routes.match("GET", "/api/mood/stats").template == "/api/mood/stats"
    assert routes.match("GET", "/api/mood/12").template == "/api/mood/{id}"


def test_methods_select_between_policies_of_one_template():
    routes = RouteTable([
        RoutePolicy(template="/api/mail", methods=frozenset({"POST"}), mirror=False),
        RoutePolicy(template="/api/mail", methods=frozenset({"GET"})),
    ])
    assert routes.match("POST", "/api/mail").mirror is False
    assert routes.match("GET", "/api/mail").mirror is True


def test_unknown_paths_are_other_until_learned_then_folded():
    routes = table("/api/mood", learner=RouteLearner(min_hits=3, max_literals=4))
    names = [routes.match("GET", f"/api/users/user{i}/records").template for i in range(12)]
    assert names[0] == OTHER
    assert names[-1] == "/api/users/{param}/records"
    assert routes.match("GET", "/api/users/someone@example.com/records").template \
        == "/api/users/{param}/records"


def test_learned_templates_are_capped_so_labels_stay_bounded():
    routes = table(learner=RouteLearner(min_hits=1, max_literals=100, max_templates=3))
    names = {routes.match("GET", f"/page{i}").template for i in range(20) for _ in range(2)}
    assert names == {"/page0", "/page1", "/page2", OTHER}


def test_fold_ids_off_names_every_unknown_path_other():
    routes = table("/api/mood", fold_ids=False)
    assert {routes.match("GET", "/api/x").template for _ in range(50)} == {OTHER}
    assert routes.learned() == []


def test_writes_default_to_unsafe_methods():
    policy = RoutePolicy(template="/x")
    assert policy.may_write("POST") and policy.may_write("DELETE")
    assert not policy.may_write("GET")
    assert RoutePolicy(template="/x", writes=True).may_write("GET")
