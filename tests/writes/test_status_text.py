"""`shadow status` says how writes' rows were attributed (pure: the text from a status)."""

from shadow.cutover_cli import show_attribution


def test_the_exact_share_and_outside_writes_are_shown(capsys):
    show_attribution({"writes_exact": 9, "writes_grouped": 1, "exact_share": 0.9,
                      "outside": {"total": 3, "by_backend": {"legacy": {"items": 2, "audit": 1}}}})
    assert capsys.readouterr().out.splitlines() == [
        "          rows of 10 write(s) compared: 9 exactly, 1 in groups (90% exact)",
        "          3 outside write(s), charged to no route (legacy: items 2, audit 1)"]


def test_nothing_is_shown_without_row_capture(capsys):
    show_attribution({"ordered": True, "shadow_pending": 0})
    assert capsys.readouterr().out == ""
