from shadow.routes import OTHER, RoutePolicy, RouteTable, fold_path


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


def test_unknown_paths_fold_id_like_segments():
    assert fold_path("/api/mood/123") == "/api/mood/{id}"
    assert fold_path("/u/550e8400-e29b-41d4-a716-446655440000/x") == "/u/{id}/x"
    assert fold_path("/blob/deadbeef42") == "/blob/{id}"
    assert fold_path("/t/aB3dE5fG7hJ9kL1mN") == "/t/{id}"
    assert fold_path("/api/settings/profile") == "/api/settings/profile"


def test_folded_templates_are_capped_so_labels_stay_bounded():
    routes = table(max_folded=3)
    names = {routes.match("GET", f"/page/word{chr(97 + i)}x").template for i in range(20)}
    assert len(names) == 4 and OTHER in names


def test_writes_default_to_unsafe_methods():
    policy = RoutePolicy(template="/x")
    assert policy.may_write("POST") and policy.may_write("DELETE")
    assert not policy.may_write("GET")
    assert RoutePolicy(template="/x", writes=True).may_write("GET")
