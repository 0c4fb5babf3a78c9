"""Config: the documented files validate; a bad file lists every problem with its location."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from shadow.cli import main
from shadow.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {"backends": {"legacy": {"url": "http://127.0.0.1:5101"},
                        "candidate": {"url": "http://127.0.0.1:5102"}}}


def test_minimal_and_example_configs_are_complete_and_valid():
    minimal = load_config(ROOT / "config" / "minimal.toml")
    assert minimal.mode == "shadow" and minimal.proxy.max_body_bytes == 1 << 20
    example = load_config(ROOT / "config" / "shadow.example.toml")
    assert example.label("candidate") == "postgres"


def test_example_documents_every_key():
    """Every settings field appears in the example file (so none is undocumented)."""
    from shadow.config import Config

    text = (ROOT / "config" / "shadow.example.toml").read_text()
    missing = []

    def walk(model, prefix=""):
        for name, field in model.model_fields.items():
            if name not in text:
                missing.append(prefix + name)
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, prefix + name + ".")

    walk(Config)
    assert missing == []


def test_every_problem_is_reported_at_once_with_its_location():
    bad = {
        "listen": "8080",
        "mode": "sideways",
        "backends": {"legacy": {"url": "localhost:5101"}, "candidat": {"url": "http://x"}},
        "mirror": {"queue_size": 0, "timout": 3},
        "routes": [{"template": "api/x"}, {"template": "/a/{id", "policy": "maybe"}],
        "compare": {"ignore_paths": ["$..[[["], "scrubbers": [{"pattern": "("}]},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    text = str(info.value)
    for expected in [
        "listen: not HOST:PORT: '8080'",
        "mode:",
        "backends.legacy.url: not an http(s) URL: 'localhost:5101'",
        "mirror.queue_size:",
        "mirror.timout: unknown key",
        "routes[0].template:",
        "routes[1].template:",
        "routes[1].policy:",
        "compare.scrubbers[0].pattern:",
    ]:
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert "backends" in text and "candidat" in text


def test_bad_json_paths_are_reported_after_the_schema_passes():
    data = {**MINIMAL, "compare": {"ignore_paths": ["$.ok", "no-dollar["]},
            "routes": [{"template": "/a", "unordered_paths": ["$.[["]}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert "compare:" in str(info.value) and "routes[0]:" in str(info.value)


def test_check_config_command_exit_codes(tmp_path):
    runner = CliRunner()
    good = runner.invoke(main, ["check-config", str(ROOT / "config" / "minimal.toml")])
    assert good.exit_code == 0 and "ok" in good.output
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text('listen = "nope"\n[backends.legacy]\nurl = "ftp://x"\n')
    bad = runner.invoke(main, ["check-config", str(bad_file)])
    assert bad.exit_code == 2
    assert "listen: not HOST:PORT" in bad.output and "backends.legacy.url" in bad.output
    assert "missing backend(s) ['candidate']" in bad.output
    syntax = tmp_path / "syntax.toml"
    syntax.write_text("listen = \n")
    assert runner.invoke(main, ["check-config", str(syntax)]).exit_code == 2
    assert runner.invoke(main, ["check-config", str(tmp_path / "absent.toml")]).exit_code == 2

