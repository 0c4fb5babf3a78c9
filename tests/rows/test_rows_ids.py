"""Ids translated through the key map (pure: no I/O)."""

import orjson

from shadow.rows.ids import IdTranslator, collection_of
from shadow.rows.keymap import KeyMap


def translator() -> IdTranslator:
    keymap = KeyMap()
    pairs = [("users", (7,), (8,)), ("journal_entries", (3,), (4,)), ("moods", (5,), (5,))]
    for table, legacy, candidate in pairs:
        keymap.learn(table, legacy, candidate)
    ids = IdTranslator(keymap, {"users", "journal_entries", "moods"})
    ids.learn(pairs)
    return ids


def test_only_tables_whose_pairs_differ_are_translated():
    ids = translator()
    assert ids.shifted == {"users", "journal_entries"}
    assert ids.target("/api/moods/{id}", "/api/moods/5", True) == "/api/moods/5"


def test_path_ids_follow_their_collection_and_query_strings_are_kept():
    ids = translator()
    assert ids.target("/api/journal/{id}", "/api/journal/3?x=3", True) == "/api/journal/4?x=3"
    assert ids.target("/api/users/{user_id}/x", "/api/users/7/x", True) == "/api/users/8/x"
    assert ids.target("/api/journal/{id}", "/api/journal/99", True) == "/api/journal/99"


def test_request_bodies_map_star_id_fields_only():
    ids = translator()
    body = orjson.dumps({"user_id": 7, "id": 3, "score": 7, "nested": {"user_id": 7}})
    assert orjson.loads(ids.body(body, True)) == {
        "user_id": 8, "id": 3, "score": 7, "nested": {"user_id": 8}}
    assert ids.body(b"not json", True) == b"not json"
    unchanged = orjson.dumps({"user_id": 1})
    assert ids.body(unchanged, True) is unchanged


def test_replies_map_ids_back_by_the_collection_they_belong_to():
    ids = translator()
    reply = orjson.dumps({"id": 4, "user_id": 8, "users": [{"id": 8}], "flag": True})
    back = orjson.loads(ids.reply(reply, collection_of("/api/journal/{id}"), False))
    assert back == {"id": 3, "user_id": 7, "users": [{"id": 7}], "flag": True}


def test_collection_is_the_literal_before_the_id():
    assert collection_of("/api/journal/{id}") == "journal"
    assert collection_of("/api/moods") == "moods"
    assert collection_of("/{id}") is None
