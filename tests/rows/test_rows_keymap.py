"""KeyMap: one-to-one pairs per table, bounded by LRU, persisted through pairs()/load()."""

import pytest

from shadow.rows.keymap import KeyMap


def test_learnt_pair_is_found_both_ways_and_tables_are_case_insensitive():
    keys = KeyMap()
    keys.learn("Entries", (2,), (3,))
    assert keys.shadow_key("entries", (2,)) == (3,)
    assert keys.primary_key("ENTRIES", (3,)) == (2,)
    assert keys.shadow_key("other", (2,)) is None
    assert keys.anchor("entries") == ((2,), (3,))


def test_learning_replaces_pairs_that_share_a_key():
    keys = KeyMap()
    keys.learn("t", (1,), (10,))
    keys.learn("t", (1,), (11,))
    assert keys.primary_key("t", (10,)) is None
    keys.learn("t", (2,), (11,))
    assert keys.shadow_key("t", (1,)) is None
    assert keys.shadow_key("t", (2,)) == (11,)
    assert len(keys) == 1


def test_least_recently_used_pair_is_evicted():
    keys = KeyMap(max_pairs=2)
    keys.learn("t", (1,), (1,))
    keys.learn("t", (2,), (3,))
    assert keys.shadow_key("t", (1,)) == (1,)  # now more recent than (2,)
    keys.learn("t", (3,), (4,))
    assert keys.shadow_key("t", (2,)) is None
    assert keys.primary_key("t", (3,)) is None
    assert keys.shadow_key("t", (1,)) == (1,)
    assert keys.shadow_key("t", (3,)) == (4,)
    assert len(keys) == 2


def test_pairs_and_load_rebuild_the_map_and_its_anchors():
    keys = KeyMap()
    keys.learn("t", (1,), (1,))
    keys.learn("t", (2,), (3,))
    keys.learn("u", ("a", 1), ("a", 1))
    keys.shadow_key("t", (2,))  # touching a pair must not move the anchor
    keys.learn("t", (5,), (7,))
    keys.shadow_key("t", (1,))
    copy = KeyMap()
    copy.load(keys.pairs())
    assert sorted(copy.pairs()) == sorted(keys.pairs())
    assert copy.anchor("t") == ((5,), (7,))
    assert copy.anchor("u") == (("a", 1), ("a", 1))


def test_unhashable_key_parts_are_frozen():
    keys = KeyMap()
    keys.learn("t", ([1, 2],), ({"a": 1},))
    assert keys.shadow_key("t", ((1, 2),)) == ((("a", 1),),)


def test_size_must_be_positive():
    with pytest.raises(ValueError):
        KeyMap(max_pairs=0)
