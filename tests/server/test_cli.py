"""The command line and OS__* configuration, run as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_objectstore.server import KeyConfig, ServerConfig
from django_objectstore.server.__main__ import main
from django_objectstore.server.config import ConfigError, config_from_env, parse_env_value
from tests.server.helpers import PUBLIC_PEM, bearer, call, cli_server, mint

KEYS_ENV = (
    f'{{test_kid={{key_files=["{PUBLIC_PEM}"],'
    'max_permissions=["object.read","object.write","object.delete"]}}'
)


def test_parse_env_values() -> None:
    assert parse_env_value("true") is True
    assert parse_env_value("false") is False
    assert parse_env_value("42") == 42
    assert parse_env_value("0.5") == 0.5
    assert parse_env_value("[1.5, nan-ish]") == [1.5, "nan-ish"]
    assert parse_env_value("plain string") == "plain string"
    assert parse_env_value('"quoted \\" string"') == 'quoted " string'
    assert parse_env_value('[a, "b", 3]') == ["a", "b", 3]
    assert parse_env_value(KEYS_ENV) == {
        "test_kid": {
            "key_files": [str(PUBLIC_PEM)],
            "max_permissions": ["object.read", "object.write", "object.delete"],
        }
    }
    with pytest.raises(ConfigError):
        parse_env_value("{a=1")


def test_defaults_and_unknown_vars() -> None:
    config = config_from_env({"OS__SOMETHING__ELSE": "x", "OS__METRICS__TAGS": "{a=1}"})
    assert config == ServerConfig()
    assert (config.host, config.port, config.storage, config.path) == (
        "127.0.0.1",
        8888,
        "filesystem",
        "data",
    )
    assert config.auth_enforce is False


def test_full_env() -> None:
    config = config_from_env(
        {
            "OS__HTTP_ADDR": "[::1]:9000",
            "OS__STORAGE__TYPE": "memory",
            "OS__STORAGE__PATH": "/srv/data",
            "OS__STORAGE__FSYNC": "false",
            "OS__AUTH__ENFORCE": "true",
            "OS__AUTH__KEYS": KEYS_ENV,
            "OS__USECASES": '{attachments={expiration={manual={allowed=false},ttl={max="90d"}}}}',
        }
    )
    assert (config.host, config.port, config.storage) == ("::1", 9000, "memory")
    assert config.fsync is False
    assert config.auth_keys == {
        "test_kid": KeyConfig([str(PUBLIC_PEM)], ["object.read", "object.write", "object.delete"])
    }
    assert config.usecases["attachments"].manual.allowed is False


def test_nested_key_variables() -> None:
    config = config_from_env(
        {
            "OS__AUTH__KEYS__My_Kid__KEY_FILES": f'["{PUBLIC_PEM}"]',
            "OS__AUTH__KEYS__My_Kid__MAX_PERMISSIONS": '["object.read"]',
        }
    )
    assert config.auth_keys == {"my_kid": KeyConfig([str(PUBLIC_PEM)], ["object.read"])}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OS__HTTP_ADDR": "localhost:8888"}, "not an IP address"),
        ({"OS__HTTP_ADDR": "127.0.0.1"}, "is not 'IP:port'"),
        ({"OS__STORAGE__TYPE": "gcs"}, "not supported"),
        ({"OS__AUTH__ENFORCE": "maybe"}, "must be true or false"),
        ({"OS__AUTH__KEYS": "[1]"}, "must be a dictionary"),
        ({"OS__AUTH__KEYS": "{k={key_files=[]}}"}, "has no key_files"),
        (
            {"OS__AUTH__KEYS": '{k={key_files=["/x"],max_permissions=["root"]}}'},
            "unknown permission",
        ),
    ],
)
def test_bad_env(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_env(env)


def run_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("OS__")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "django_objectstore.server", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OS__AUTH__ENFORCE": "true"}, "no keys are configured"),
        ({"OS__HTTP_ADDR": "nope"}, "OS__HTTP_ADDR"),
        (
            {"OS__AUTH__ENFORCE": "true", "OS__AUTH__KEYS": '{k={key_files=["/no/such.pem"]}}'},
            "cannot read key file",
        ),
    ],
)
def test_cli_bad_config_exits(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = run_cli(env, "run", cwd=tmp_path)
    assert result.returncode != 0
    assert not (tmp_path / "data").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]


def test_cli_version(tmp_path: Path) -> None:
    result = run_cli({}, "version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("objectstore-server 0.1.0")


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert "objectstore-server" in capsys.readouterr().out


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    env = {
        "OS__AUTH__ENFORCE": "true",
        "OS__AUTH__KEYS": KEYS_ENV,
        "OS__UNKNOWN__THING": "ignored",
    }
    with cli_server(tmp_path, env) as (proc, url):
        yield proc, url, tmp_path


def test_cli_run_serves_and_stops(running: tuple[subprocess.Popen[str], str, Path]) -> None:
    proc, url, cwd = running
    assert call(url, "PUT", "/v1/objects/test/org=1/k", b"x").status == 400  # enforced
    assert call(url, "PUT", "/v1/objects/test/org=1/k", b"x", bearer(mint())).status == 200
    assert call(url, "GET", "/v1/objects/test/org=1/k", headers=bearer(mint())).body == b"x"
    assert (cwd / "data" / "objects").is_dir()  # default: filesystem storage under ./data
    port = url.rsplit(":", 1)[1]
    health = run_cli({"OS__HTTP_ADDR": f"127.0.0.1:{port}"}, "healthcheck", cwd=cwd)
    assert (health.returncode, health.stdout.strip()) == (0, "OK")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_healthcheck_fails_without_server(tmp_path: Path) -> None:
    result = run_cli({"OS__HTTP_ADDR": "127.0.0.1:1"}, "healthcheck", cwd=tmp_path)
    assert result.returncode != 0
    assert "health check" in result.stderr
