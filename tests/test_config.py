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


def test_the_gate_reads_min_compared_and_its_former_name():
    assert parse_config({**MINIMAL, "gate": {"min_compared": 7}}).gate.min_compared == 7
    assert parse_config({**MINIMAL, "gate": {"min_samples": 9}}).gate.min_compared == 9
    assert parse_config(MINIMAL).gate.min_compared == 1000


def test_every_problem_is_reported_at_once_with_its_location():
    bad = {
        "listen": "8080",
        "mode": "sideways",
        "backends": {"legacy": {"url": "localhost:5101"}, "candidat": {"url": "http://x"}},
        "mirror": {"queue_size": 0, "timout": 3},
        "proxy": {"exchange_header": "X Exchange: id"},
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
        "proxy.exchange_header: not a header name: 'X Exchange: id'",
        "routes[0].template:",
        "routes[1].template:",
        "routes[1].policy:",
        "compare.scrubbers[0].pattern:",
    ]:
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert "backends" in text and "candidat" in text


def test_bad_json_paths_are_reported_each_at_its_place():
    data = {**MINIMAL, "compare": {"ignore_paths": ["$.ok", "no-dollar["]},
            "routes": [{"template": "/a", "unordered_paths": ["$.[["]}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "compare.ignore_paths[1]", "routes[0].unordered_paths[0]"]


def test_one_pass_reports_every_kind_of_mistake_with_value_and_suggestion():
    """Schema errors, unknown keys, compile errors and cross-field checks of one file
    all come out of one run (they used to take four)."""
    bad = {
        "listen": "127.0.0.1:9000", "admin_listen": "127.0.0.1:9000",
        "mode": "shaddow",
        "fold_idz": True,
        "backends": {"legacy": {"url": "http://127.0.0.1:5101", "database": "sqlite:////x.db"},
                     "candidate": {"url": "http://127.0.0.1:5101/"}},
        "mirror": {"timout": 3},
        "routes": [{"template": "/a/{id", "methods": ["GTE"]},
                   {"template": "/b", "methods": ["GET", "PSOT"], "ignore_paths": ["meta.id"]},
                   {"template": "/b", "methods": ["GET"]}],
        "compare": {"ignore_paths": ["$.meta["]},
        "rows": {"columns": {"users": {"ignore": True}}},
        "gate": {"expected_routes": ["GTE /a"]},
        "log": {"level": "verbose"},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    text = str(info.value)
    for expected in [
        "admin_listen: the same address as listen: '127.0.0.1:9000'",
        "mode: Input should be 'legacy-only', 'shadow', 'cutover' or 'candidate-only' "
        "(got 'shaddow'; did you mean 'shadow'?)",
        "fold_idz: unknown key (did you mean 'fold_ids'?)",
        "mirror.timout: unknown key (did you mean 'timeout'?)",
        "backends.candidate.url: the same URL as backends.legacy.url: 'http://127.0.0.1:5101'",
        "backends.candidate.database: not set while backends.legacy.database is",
        "routes[0].template: a placeholder is a whole segment like {id}: '/a/{id'",
        "routes[0].methods[0]: not an HTTP method: 'GTE' (did you mean 'GET'?)",
        "routes[1].methods[1]: not an HTTP method: 'PSOT' (did you mean 'POST'?)",
        "routes[1].ignore_paths[0]:",
        "routes: duplicate template '/b' for the same methods",
        "compare.ignore_paths[0]:",
        "rows.columns.'users': not 'table.column' or '*.column': 'users'",
        "gate.expected_routes[0]: not an HTTP method: 'GTE'",
        "log.level: Input should be 'debug', 'info', 'warning' or 'error' (got 'verbose')",
    ]:
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert len(info.value.problems) == 15, text


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



def test_the_readme_example_of_check_config_is_what_it_prints(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('mode = "shaddow"\n[backends.legacy]\nurl = "http://127.0.0.1:5101"\n'
                   '[backends.candidat]\nurl = "http://127.0.0.1:5102"\n'
                   '[mirror]\ntimout = 3\n[compare]\nignore_paths = ["$.ok", "meta.id"]\n'
                   '[[routes]]\ntemplate = "/a"\nmethods = ["GTE"]\n')
    result = CliRunner().invoke(main, ["check-config", str(bad)])
    readme = (ROOT / "README.md").read_text()
    block = readme.split("$ shadow check-config bad.toml\n", 1)[1].split("```", 1)[0]
    assert result.exit_code == 2
    assert sorted(result.output.replace(str(bad), "bad.toml").splitlines()) \
        == sorted(block.splitlines())


def test_the_readmes_typical_app_needs_its_backends_and_databases_only(tmp_path, monkeypatch):
    """The README's example for a typical app parses, and holds no comparison rule: what
    such rules did is learnt (noise, routes) or derived (time by meaning, password hashes)."""
    import tomllib

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A typical app:", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    data = tomllib.loads(block)
    assert set(data) <= {"listen", "admin_listen", "backends", "store"}
    for backend in data["backends"].values():
        assert set(backend) <= {"url", "database", "log_files"}
    monkeypatch.setenv("SHADOW_PG_PASSWORD", "example")
    path = tmp_path / "shadow.toml"
    path.write_text(block)
    config = load_config(path)
    assert config.backends["candidate"].database.endswith("@127.0.0.1:5432/app")
    assert config.routes == [] and config.rows.columns == {}
    assert not config.compare.ignore_paths and not config.compare.time_tolerance
