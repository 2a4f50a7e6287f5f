"""The command line and OS__* configuration, run as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from django_objectstore.server import KeyConfig, ServerConfig
from django_objectstore.server.__main__ import main
from django_objectstore.server.config import ConfigError
from django_objectstore.server.config_loader import config_from_env, load_config, read_yaml
from django_objectstore.server.config_syntax import parse_env_value
from tests.server.helpers import PUBLIC_PEM, bearer, call, cli_environ, cli_server, mint, run_cli

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


def test_defaults_are_upstreams() -> None:
    config = config_from_env({})
    assert config == ServerConfig()
    assert (config.host, config.port, config.storage, config.path) == (
        "127.0.0.1",
        8888,
        "filesystem",
        "data",
    )
    assert config.auth_enforce is True  # as the real server: enforced unless turned off
    assert (config.max_requests, config.max_concurrency) == (10_000, 500)
    assert (config.concurrency_queue, config.concurrency_timeout) == (0, 1.0)
    assert config.bulk_concurrency_pct == 60


def test_one_warning_per_unknown_variable() -> None:
    config, warnings = load_config(
        {
            "OS__SOMETHING__ELSE": "x",
            "OS__AUTH__ENFORC": "false",
            "OS__RATE_LIMITS__THROUGHPUT__GLOBAL_RPZ": "1",
            "OS__METRICS__TAGS": "{a=1}",  # upstream's, not used here: no warning
            "OS__SENTRY__DSN": "https://example.invalid/1",
            "OS__AUTH__KEYS": '{k={key_files=["/k.pem"],bogus=1}}',
            "OTHER": "not ours",
        }
    )
    assert config.auth_enforce is True
    assert config.auth_keys == {"k": KeyConfig(["/k.pem"], [])}  # applied; "bogus" is not
    assert sorted(warnings) == [
        "OS__AUTH__ENFORC names no setting of the local server; ignored",
        "OS__AUTH__KEYS: unknown setting 'k.bogus' in its value ignored",
        "OS__RATE_LIMITS__THROUGHPUT__GLOBAL_RPZ names no setting of the local server; ignored",
        "OS__SOMETHING__ELSE names no setting of the local server; ignored",
    ]


def test_nested_variables_merge_with_dictionary_forms() -> None:
    config = config_from_env(
        {
            "OS__RATE_LIMITS": "{throughput={global_rps=100,burst=3},bandwidth={global_bps=5}}",
            "OS__RATE_LIMITS__THROUGHPUT__GLOBAL_RPS": "1",
            "OS__USECASES": "{other={expiration={tti={allowed=false}}}}",
            "OS__USECASES__ATTACHMENTS__EXPIRATION__TTL__MAX": "90d",
            "OS__USECASES__ATTACHMENTS__EXPIRATION__MANUAL__ALLOWED": "false",
            "OS__SERVICE__MAX_CONCURRENCY": "0",
            "OS__SERVICE__CONCURRENCY_QUEUE": "4",
            "OS__SERVICE__CONCURRENCY_TIMEOUT": "250ms",
        }
    )
    assert config.rate_limits == {
        "throughput": {"global_rps": 1, "burst": 3},
        "bandwidth": {"global_bps": 5},
    }
    attachments = config.usecases["attachments"]
    assert attachments.manual.allowed is False
    assert attachments.ttl.max == timedelta(days=90)
    assert config.usecases["other"].tti.allowed is False
    assert (config.max_concurrency, config.concurrency_queue) == (0, 4)
    assert config.concurrency_timeout == 0.25


def test_yaml_layer_and_precedence(tmp_path: Path) -> None:
    path = tmp_path / "objectstore.yml"
    path.write_text(
        "http_addr: 127.0.0.1:9001\n"
        "storage: {type: filesystem, path: /from/yaml}\n"
        "auth:\n"
        "  enforce: true\n"
        "  keys:\n"
        "    test_kid:\n"
        f"      key_files: [{PUBLIC_PEM}]\n"
        "      max_permissions: [object.read]\n"
        "rate_limits: {throughput: {global_rps: 7, burst: 2}}\n"
        "colour: blue\n"
    )
    config, warnings = load_config(
        {"OS__STORAGE__PATH": "/from/env", "OS__RATE_LIMITS__THROUGHPUT__BURST": "9"},
        read_yaml(path),
    )
    assert (config.host, config.port, config.path) == ("127.0.0.1", 9001, "/from/env")
    assert config.auth_keys == {"test_kid": KeyConfig([str(PUBLIC_PEM)], ["object.read"])}
    assert config.rate_limits == {"throughput": {"global_rps": 7, "burst": 9}}
    assert warnings == ["config file: unknown setting 'colour' ignored"]
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        read_yaml(path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_yaml(tmp_path / "missing.yml")


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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OS__AUTH__ENFORCE": "true"}, "no keys are configured"),
        ({}, "OS__AUTH__ENFORCE=false"),
        ({"OS__SERVICE__MAX_CONCURRENCY": "-1"}, "non-negative integer"),
        ({"OS__SERVICE__BULK_CONCURRENCY_PCT": "101"}, "at most 100"),
        ({"OS__RATE_LIMITS": "{throughput={global_rps=1"}, "OS__RATE_LIMITS"),
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


def test_cli_without_auth_settings_refuses_with_both_ways_out(tmp_path: Path) -> None:
    result = run_cli({}, "run", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "auth is enforced" in line
    assert "OS__AUTH__KEYS=" in line
    assert "OS__AUTH__ENFORCE=false" in line
    assert not (tmp_path / "data").exists()


def test_cli_keys_without_enforce_mean_enforced(tmp_path: Path) -> None:
    # Not cli_server: it turns auth off unless told, and here nothing says.
    env = cli_environ(
        {"OS__HTTP_ADDR": "127.0.0.1:0", "OS__AUTH__KEYS": KEYS_ENV, "OS__LOGGING__LEVEL": "WARN"}
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "django_objectstore.server", "run"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        while " listening on " not in line and line:
            line = proc.stderr.readline()
        assert "auth enforced" in line
        url = line.split(" listening on ")[1].split()[0]
        assert call(url, "PUT", "/v1/objects/test/org=1/k", b"x").status == 400
        assert call(url, "PUT", "/v1/objects/test/org=1/k", b"x", bearer(mint())).status == 200
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def test_cli_yaml_config_file(tmp_path: Path) -> None:
    config = tmp_path / "objectstore.yml"
    config.write_text(
        "storage: {type: memory}\n"
        "auth:\n"
        "  keys:\n"
        "    test_kid:\n"
        f"      key_files: [{PUBLIC_PEM}]\n"
        "      max_permissions: [object.read, object.write, object.delete]\n"
        "usecases: {test: {expiration: {manual: {allowed: false}}}}\n"
    )
    env = {"OS__AUTH__ENFORCE": "true", "OS__UNKNOWN__THING": "1"}
    before: list[str] = []
    with cli_server(tmp_path, env, ["-c", str(config), "run"], before) as (proc, url):
        assert call(url, "PUT", "/v1/objects/test/org=1/k", b"x").status == 400  # no token
        put = call(url, "PUT", "/v1/objects/test/org=1/k", b"x", bearer(mint()))
        assert put.status == 400  # manual expiration refused by the YAML usecase rule
        assert "not allowed for use case 'test'" in put.json()["detail"]
        headers = {"x-sn-expiration": "ttl:1h", **bearer(mint())}
        assert call(url, "PUT", "/v1/objects/test/org=1/k", b"x", headers).status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not (tmp_path / "data").exists()  # memory storage, from the file
    assert len(before) == 1
    assert "OS__UNKNOWN__THING names no setting" in before[0]


def test_cli_nested_limits_take_effect(tmp_path: Path) -> None:
    env = {
        "OS__STORAGE__TYPE": "memory",
        "OS__RATE_LIMITS__THROUGHPUT__GLOBAL_RPS": "1",
        "OS__USECASES__STRICT__EXPIRATION__MANUAL__ALLOWED": "false",
    }
    with cli_server(tmp_path, env) as (_, url):
        first = call(url, "PUT", "/v1/objects/strict/org=1/k", b"x")
        assert first.status == 400  # the usecase rule from nested variables
        assert call(url, "PUT", "/v1/objects/other/org=1/k", b"x").status == 429
        assert call(url, "GET", "/health").status == 200  # never rate limited


def test_cli_max_concurrency_zero_answers_429(tmp_path: Path) -> None:
    before: list[str] = []
    env = {"OS__STORAGE__TYPE": "memory", "OS__SERVICE__MAX_CONCURRENCY": "0"}
    with cli_server(tmp_path, env, before=before) as (_, url):
        r = call(url, "PUT", "/v1/objects/test/org=1/k", b"x")
        assert (r.status, r.json()["detail"]) == (429, "service error: concurrency limit reached")
        assert call(url, "GET", "/health").status == 200
        assert b"objectstore_tasks_limit 0\n" in call(url, "GET", "/keda").body
    assert any("MAX_CONCURRENCY=0" in line for line in before)


def test_cli_sleep(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_cli({}, "sleep", "1", cwd=tmp_path)
    assert result.returncode == 0
    assert time.monotonic() - started >= 1
    assert run_cli({}, "sleep", "soon", cwd=tmp_path).returncode == 2


def test_cli_down_marks_the_server_not_ready(tmp_path: Path) -> None:
    env = {"OS__STORAGE__TYPE": "memory", "TMPDIR": str(tmp_path)}
    with cli_server(tmp_path, env) as (_, url):
        assert call(url, "GET", "/ready").status == 200
        full = {k: v for k, v in os.environ.items() if not k.startswith("OS__")}
        full["TMPDIR"] = str(tmp_path)
        result = subprocess.run(
            [sys.executable, "-m", "django_objectstore.server", "down"],
            env=full,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "objectstore.down").exists()
        r = call(url, "GET", "/ready")
        assert (r.status, r.body) == (503, b"Shutting down")
        assert call(url, "GET", "/health").status == 200
