"""Configuration errors: each is one line naming the file, the key and the fix; exit 2;
nothing contacted."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from crosspost_orchestrator.config import load_config, read_dotenv
from crosspost_orchestrator.errors import ConfigError

WORKFLOW = 'folder = "photos"\n'

# (id, workflow text, publisher tables, extra text, expected fragments of the message)
CASES: list[tuple[str, str | None, dict[str, dict[str, Any]] | None, str, list[str]]] = [
    (
        "toml-syntax-error",
        'folder = "photos\n',
        None,
        "",
        ["not valid TOML", "line 2", "fix the syntax"],
    ),
    (
        "unknown-key-in-workflow",
        WORKFLOW + 'foldr = "photos"\n',
        None,
        "",
        ["workflow.foldr: unknown setting", "remove it"],
    ),
    (
        "wrong-type-in-workflow",
        WORKFLOW + 'timeout_s = "soon"\n',
        None,
        "",
        ["workflow.timeout_s: expected a positive number", "'soon'"],
    ),
    (
        "wrong-type-in-publisher",
        WORKFLOW,
        {"fakea": {"delay_s": "slow"}},
        "",
        ["publishers.fakea.delay_s: expected a number", "'slow'"],
    ),
    (
        "unknown-key-in-publisher",
        WORKFLOW,
        {"fakea": {"colour": "red"}},
        "",
        ["publishers.fakea.colour: unknown setting", "known settings"],
    ),
    (
        "secret-in-toml",
        WORKFLOW,
        {"fakeb": {"password": "hunter2-in-the-file"}},
        "",
        [
            "publishers.fakeb.password is a secret, never read from the config file",
            "CROSSPOST_FAKEB_PASSWORD",
        ],
    ),
    (
        "missing-required-setting",
        WORKFLOW,
        None,
        "[publishers.fakec]\nfail = false\n",
        ["publishers.fakec.outbox_dir: required setting is missing"],
    ),
    (
        "missing-secret-for-enabled-platform",
        WORKFLOW,
        {"fakeb": {}},
        "",
        ["publishers.fakeb", "CROSSPOST_FAKEB_PASSWORD is not set", "export it"],
    ),
    (
        "plugin-not-installed",
        WORKFLOW,
        {"nosuchplatform": {}},
        "",
        ["no publisher 'nosuchplatform': install crosspost-publisher-nosuchplatform"],
    ),
    (
        "enabled-not-a-boolean",
        WORKFLOW,
        {"fakea": {"enabled": "yes"}},
        "",
        ["publishers.fakea.enabled: expected true or false"],
    ),
    (
        "unknown-top-level-table",
        WORKFLOW,
        {"fakea": {}},
        "[publisher.fakec]\nx = 1\n",
        ["publisher: unknown table or key"],
    ),
    (
        "every-publisher-disabled",
        WORKFLOW,
        {"fakea": {"enabled": False}},
        "",
        ["every publisher has enabled = false"],
    ),
]


@pytest.mark.parametrize(
    ("workflow", "publishers", "extra", "fragments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_config_error_is_one_line_naming_file_key_and_fix_with_exit_2(
    operator: Any,
    workflow: str | None,
    publishers: dict[str, dict[str, Any]] | None,
    extra: str,
    fragments: list[str],
) -> None:
    operator.write_config(publishers if publishers is not None else {"fakea": {}}, workflow, extra)
    operator.add_image("a.jpg", "caption")
    status, out, err = operator.main("publish")
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(operator.config) in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in err
    assert "hunter2" not in err + out
    assert operator.posts("fakea") == []
    assert not operator.ledger.exists()


def test_missing_config_file_says_how_to_fix(operator: Any) -> None:
    status, _out, err = operator.main("publish")
    assert status == 2
    assert f"{operator.config}: no such file" in err
    assert "--config PATH" in err


@pytest.mark.parametrize(
    ("workflow", "publishers", "extra", "fragments"),
    [CASES[0][1:], CASES[5][1:]],
    ids=[CASES[0][0], CASES[5][0]],
)
def test_config_error_through_the_real_process(
    operator: Any,
    workflow: str,
    publishers: dict[str, dict[str, Any]] | None,
    extra: str,
    fragments: list[str],
) -> None:
    operator.write_config(publishers, workflow, extra)
    done = operator.process("publish")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_disabled_table_needs_neither_plugin_nor_secret(operator: Any) -> None:
    operator.write_config(
        {"fakea": {}, "fakeb": {"enabled": False}, "notinstalled": {"enabled": False}}
    )
    operator.add_image("a.jpg")
    status, _out, err = operator.main("publish")
    assert status == 0, err
    assert len(operator.posts("fakea")) == 1
    assert operator.posts("fakeb") == []


def test_secret_comes_from_dotenv_beside_the_config_and_environment_wins(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator.write_config({"fakeb": {}})
    (operator.root / ".env").write_text(
        "# secrets\nexport CROSSPOST_FAKEB_PASSWORD='from-dotenv'\n", encoding="utf-8"
    )
    config = load_config(operator.config, environ={})
    assert config.publishers["fakeb"].settings["password"] == "from-dotenv"
    config = load_config(operator.config, environ={"CROSSPOST_FAKEB_PASSWORD": "from-env"})
    assert config.publishers["fakeb"].settings["password"] == "from-env"
    operator.add_image("a.jpg")
    status, _out, err = operator.main("publish")
    assert status == 0, err
    assert len(operator.posts("fakeb")) == 1


def test_secret_from_environment_is_redacted_from_logs(
    operator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    operator.write_config({"fakeb": {}})
    config = load_config(operator.config, environ={"CROSSPOST_FAKEB_PASSWORD": "s3cr3t-value-42"})
    assert config.publishers["fakeb"].secrets_from_env == {"password": "CROSSPOST_FAKEB_PASSWORD"}
    from crosspost_logs import sanitize

    assert "s3cr3t-value-42" not in sanitize("login with s3cr3t-value-42 failed")
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("password s3cr3t-value-42")
    assert "s3cr3t-value-42" not in repr(config)


def test_dotenv_bad_line_names_the_line_and_never_echoes_it(tmp_path: Any) -> None:
    env = tmp_path / ".env"
    env.write_text("GOOD=1\nthis is not a secret-looking pair\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_dotenv(env)
    assert f"{env}:2: expected KEY=VALUE" in str(info.value)
    assert "secret-looking" not in str(info.value)


def test_relative_paths_are_relative_to_the_config_file(operator: Any) -> None:
    operator.write_config({"fakea": {"session_file": "sess/ig.json"}})
    config = load_config(operator.config, environ={})
    assert config.workflow.folder == operator.photos
    assert config.workflow.archive == operator.archive
    assert config.workflow.ledger == operator.ledger
    assert config.publishers["fakea"].settings["outbox_dir"] == str(operator.outbox)
    assert config.publishers["fakea"].settings["session_file"] == str(
        operator.root / "sess/ig.json"
    )


def test_defaults_archive_inside_folder_and_ledger_beside_config(operator: Any) -> None:
    operator.write_config({"fakea": {}}, workflow='folder = "photos"\n')
    config = load_config(operator.config, environ={})
    assert config.workflow.archive == operator.photos / "archive"
    assert config.workflow.ledger == operator.root / "crosspost.sqlite3"
    assert config.workflow.timeout_s == 120.0


def test_secret_set_for_a_platform_that_takes_none_says_to_unset_it(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator.write_config({"fakea": {}})
    operator.add_image("a.jpg")
    monkeypatch.setenv("CROSSPOST_FAKEA_TOKEN", "tok-123456")
    status, _out, err = operator.main("publish")
    assert status == 2
    assert "CROSSPOST_FAKEA_TOKEN is set but publisher 'fakea' takes no token: unset it" in err
    assert "tok-123456" not in err
