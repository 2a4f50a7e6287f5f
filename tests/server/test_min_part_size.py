"""The opt-in minimum part size (``min_part_size`` /
``OS__MULTIPART__MIN_PART_SIZE``, a local-server extension): completions whose
listed parts, except the last, are smaller fail like on GCS/S3."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_objectstore.server import LocalServer
from django_objectstore.server.config import ConfigError
from django_objectstore.server.config_loader import config_from_env
from tests.server.helpers import call, cli_server, complete, initiate, upload

OBJ = "/v1/objects/test/org=1"
MINIMUM = 1024


@pytest.fixture(params=["memory", "filesystem"])
def strict_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalServer]:
    """Both backends with a 1 KiB minimum part size."""
    path = tmp_path if request.param == "filesystem" else None
    with LocalServer(
        storage=request.param, path=path, min_part_size=MINIMUM, sweep_interval=None
    ) as server:
        yield server


def put_parts(url: str, sizes: list[int]) -> tuple[str, str, list[tuple[int, str]], bytes]:
    key = f"mps-{uuid.uuid4().hex[:10]}"
    uid = initiate(url, key)
    data = [os.urandom(size) for size in sizes]
    etags = [upload(url, key, uid, n, part) for n, part in enumerate(data, 1)]
    return key, uid, list(enumerate(etags, 1)), b"".join(data)


def error_of(answer: object) -> tuple[str, str]:
    assert isinstance(answer, dict)
    assert set(answer) == {"error"}
    return str(answer["error"]["code"]), str(answer["error"]["message"])


def test_small_middle_part_rejected(strict_server: LocalServer) -> None:
    url = strict_server.url
    key, uid, listing, _ = put_parts(url, [2048, 100, 2048])
    code, message = error_of(complete(url, key, uid, listing))
    assert code == "EntityTooSmall"
    assert "part 2 is 100 bytes" in message
    assert f"minimum part size of {MINIMUM} bytes" in message
    assert "every part but the last" in message
    assert call(url, "GET", f"{OBJ}/{key}").status == 404  # nothing stored
    # The upload is still there: fix the part and complete.
    fixed = os.urandom(MINIMUM)
    listing[1] = (2, upload(url, key, uid, 2, fixed))
    assert complete(url, key, uid, listing) == {"key": key}
    assert len(call(url, "GET", f"{OBJ}/{key}").body) == 2048 + MINIMUM + 2048


def test_exactly_the_minimum_is_enough(strict_server: LocalServer) -> None:
    url = strict_server.url
    key, uid, listing, data = put_parts(url, [MINIMUM, MINIMUM, 1])
    assert complete(url, key, uid, listing) == {"key": key}
    assert call(url, "GET", f"{OBJ}/{key}").body == data


def test_only_last_part_small_accepted(strict_server: LocalServer) -> None:
    url = strict_server.url
    key, uid, listing, data = put_parts(url, [2048, 2048, 10])
    assert complete(url, key, uid, listing) == {"key": key}
    assert call(url, "GET", f"{OBJ}/{key}").body == data


def test_single_small_part_accepted(strict_server: LocalServer) -> None:
    url = strict_server.url
    key, uid, listing, data = put_parts(url, [5])
    assert complete(url, key, uid, listing) == {"key": key}
    assert call(url, "GET", f"{OBJ}/{key}").body == data


def test_listing_order_decides_which_is_last(strict_server: LocalServer) -> None:
    url = strict_server.url
    key, uid, listing, _ = put_parts(url, [2048, 10])
    code, message = error_of(complete(url, key, uid, [listing[1], listing[0]]))
    assert code == "EntityTooSmall"
    assert "part 2 is 10 bytes" in message


def test_etag_checked_first(strict_server: LocalServer) -> None:
    url = strict_server.url
    key, uid, listing, _ = put_parts(url, [10, 10])
    code, _ = error_of(complete(url, key, uid, [listing[0], (2, "wrong")]))
    assert code == "InvalidPart"


def test_off_by_default(any_server: LocalServer) -> None:
    url = any_server.url
    key, uid, listing, data = put_parts(url, [3, 4, 5])
    assert complete(url, key, uid, listing) == {"key": key}
    assert call(url, "GET", f"{OBJ}/{key}").body == data


def test_zero_accepts_any_size() -> None:
    with LocalServer(min_part_size=0) as server:
        key, uid, listing, data = put_parts(server.url, [0, 1, 2])
        assert complete(server.url, key, uid, listing) == {"key": key}
        assert call(server.url, "GET", f"{OBJ}/{key}").body == data


@pytest.mark.parametrize("value", [-1, 1.5, "5", True])
def test_local_server_rejects_bad_values(value: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="min_part_size=") as info:
        LocalServer(storage="filesystem", path=tmp_path / "data", min_part_size=value)  # type: ignore[arg-type]
    assert "non-negative" in str(info.value)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("text", "expected"), [("5242880", 5242880), ("0", 0), (" 1024 ", 1024)])
def test_env_var(text: str, expected: int) -> None:
    assert config_from_env({"OS__MULTIPART__MIN_PART_SIZE": text}).min_part_size == expected


def test_env_var_default() -> None:
    assert config_from_env({}).min_part_size is None


@pytest.mark.parametrize("text", ["-1", "5MiB", "1.5", "true", "", "[1]"])
def test_env_var_bad(text: str) -> None:
    with pytest.raises(ConfigError, match="OS__MULTIPART__MIN_PART_SIZE=") as info:
        config_from_env({"OS__MULTIPART__MIN_PART_SIZE": text})
    assert "non-negative integer" in str(info.value)


def test_cli_passes_env_var(tmp_path: Path) -> None:
    env = {"OS__STORAGE__TYPE": "memory", "OS__MULTIPART__MIN_PART_SIZE": str(MINIMUM)}
    with cli_server(tmp_path, env) as (proc, url):
        key, uid, listing, _ = put_parts(url, [10, 10])
        assert error_of(complete(url, key, uid, listing))[0] == "EntityTooSmall"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
