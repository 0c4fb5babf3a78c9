"""Ids translated through the key map (pure: no I/O)."""

import orjson

from shadow.rows.ids import IdTranslator, Translated, collection_of, group_pairs
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


def test_names_find_their_table_through_plurals_and_prefixes():
    keymap = KeyMap()
    ids = IdTranslator(keymap, {"journal_entries", "mood_logs", "users", "categories"})
    assert [ids.table_for(n) for n in ("entry_id", "mood", "user_id", "category_id", "x_id")] \
        == ["journal_entries", "mood_logs", "users", "categories", None]


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


def test_a_reply_is_read_through_its_groups_pairs_first_and_each_id_read_is_noted():
    ids = translator()  # key map: journal_entries legacy 3 = candidate 4
    group = group_pairs([("journal_entries", (9,), (3,)), ("moods", (6,), (6,))])
    reply = orjson.dumps({"id": 3, "user_id": 8, "items": [{"user_id": 8}], "mood_id": 6})
    body, notes = ids.read_reply(reply, "journal", False, group)
    assert orjson.loads(body) == {"id": 9, "user_id": 7, "items": [{"user_id": 7}],
                                  "mood_id": 6}
    assert notes == (Translated("$.id", "journal_entries", 3, 9, "group"),
                     Translated("$.user_id", "users", 8, 7, "key map"),
                     Translated("$.items[0].user_id", "users", 8, 7, "key map"))


def test_a_group_pair_that_keeps_the_id_wins_over_the_key_map():
    ids = translator()
    reply = orjson.dumps({"id": 4})
    body, notes = ids.read_reply(reply, "journal", False, group_pairs(
        [("journal_entries", (4,), (4,))]))
    assert body is reply and notes == ()
    assert ids.read_reply(reply, "journal", False)[0] == orjson.dumps({"id": 3})


def test_group_pairs_are_read_in_a_table_not_yet_shifted_and_in_both_modes():
    keymap = KeyMap()
    ids = IdTranslator(keymap, {"items"})
    assert not ids.active
    group = group_pairs([("Items", (1,), (2,)), ("items", (2,), (1,)), ("items", (1, 2), (3, 4))])
    assert group == {"items": {2: 1, 1: 2}}
    for to_candidate in (False, True):  # the group speaks shadow -> primary in any mode
        body, notes = ids.read_reply(b'[{"id": 2}, {"id": "1"}]', "items", to_candidate, group)
        assert orjson.loads(body) == [{"id": 1}, {"id": "2"}]
        assert [n.path for n in notes] == ["$[0].id", "$[1].id"]
