"""System checks: one test per id, registration, unique ids."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_objectstore import checks, factory
from django_objectstore.client import TimeToLive
from django_objectstore.conf import objectstore_settings

KEYS = Path(__file__).parent / "keys"
PRIVATE = KEYS / "test_kid.private.pem"
GOOD = {
    "URL": "http://127.0.0.1:8888",
    "TOKEN": {"KID": "test_kid", "SECRET_KEY_FILE": str(PRIVATE)},
    "USECASES": {
        "attachments": {"EXPIRATION": "tti:30d"},
        "plain": {"EXPIRATION": "ttl:1d"},
        "images": {"EXPIRATION": "manual"},
        "notes": {"EXPIRATION": "manual", "SCOPE": {"org": "org_id"}},
    },
}


def ids(conf: Any) -> list[str]:
    with override_settings(OBJECTSTORE=conf):
        found = checks.check_settings() + checks.check_fields() + checks.check_site_storages()
        return [m.id for m in found]


def with_(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def with_usecase(**options: Any) -> dict[str, Any]:
    return with_(USECASES={**GOOD["USECASES"], "extra": {"EXPIRATION": "manual", **options}})


def test_good_settings_pass() -> None:
    assert ids(GOOD) == []


def test_e001_missing_or_not_a_dict() -> None:
    assert ids(None) == ["django_objectstore.E001"]
    assert ids(["URL"]) == ["django_objectstore.E001"]


@pytest.mark.parametrize(
    "url", [None, "", "127.0.0.1:8888", "ftp://x", "http://h:99999", "http://h/?q"]
)
def test_e002_bad_url(url: object) -> None:
    conf = with_(URL=url) if url is not None else {k: v for k, v in GOOD.items() if k != "URL"}
    assert "django_objectstore.E002" in ids(conf)


def test_e003_bad_public_url() -> None:
    assert ids(with_(PUBLIC_URL="files.example.com")) == ["django_objectstore.E003"]
    assert ids(with_(PUBLIC_URL="https://files.example.com")) == []


def test_e004_unknown_key() -> None:
    assert ids(with_(URLS="x")) == ["django_objectstore.E004"]


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        42,
        {"KID": "k"},
        {"KID": "", "SECRET_KEY_FILE": str(PRIVATE)},
        {"KID": "k", "SECRET_KEY_FILE": str(PRIVATE), "SECRET_KEY": "x"},
        {"KID": "k", "SECRET_KEY_FILE": str(PRIVATE), "BOGUS": 1},
        {"KID": "k", "SECRET_KEY_FILE": str(PRIVATE), "EXPIRY_SECONDS": 0},
        {"KID": "k", "SECRET_KEY_FILE": str(PRIVATE), "PERMISSIONS": ["object.all"]},
    ],
)
def test_e005_bad_token(token: object) -> None:
    assert ids(with_(TOKEN=token)) == ["django_objectstore.E005"]


def test_e006_unreadable_or_wrong_key(tmp_path: Path) -> None:
    missing = {"KID": "k", "SECRET_KEY_FILE": str(tmp_path / "nope.pem")}
    assert ids(with_(TOKEN=missing)) == ["django_objectstore.E006"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    assert ids(with_(TOKEN={"KID": "k", "SECRET_KEY_FILE": str(garbage)})) == [
        "django_objectstore.E006"
    ]
    public = {"KID": "k", "SECRET_KEY": (KEYS / "test_kid.public.pem").read_text()}
    assert ids(with_(TOKEN=public)) == ["django_objectstore.E006"]


def test_error_messages_never_contain_key_material() -> None:
    pem = (KEYS / "test_kid.public.pem").read_text()
    with override_settings(OBJECTSTORE=with_(TOKEN={"KID": "k", "SECRET_KEY": pem})):
        messages = checks.check_settings()
    body = pem.splitlines()[1]
    assert messages
    assert all(body not in str(m) for m in messages)


@pytest.mark.parametrize(
    "changes",
    [
        {"RETRIES": -1},
        {"RETRIES": "3"},
        {"TIMEOUT_MS": 0},
        {"CONNECTION_KWARGS": []},
        {"URL_EXPIRY_SECONDS": 10**7},
        {"MULTIPART_THRESHOLD": 0},
        {"MULTIPART_PART_SIZE": "8MB"},
        {"MULTIPART_PART_SIZE": 2 << 20},
    ],
)
def test_e007_bad_numbers(changes: dict[str, Any]) -> None:
    assert ids(with_(**changes)) == ["django_objectstore.E007"]


def test_e008_unimportable_hooks() -> None:
    assert ids(with_(METRICS_BACKEND="no.such.Backend")) == ["django_objectstore.E008"]
    assert ids(with_(DOWNLOAD_PERMISSION=3)) == ["django_objectstore.E008"]
    ok = "django_objectstore.client.NoOpMetricsBackend"
    assert ids(with_(METRICS_BACKEND=ok)) == []


def test_e009_bad_usecases() -> None:
    assert "django_objectstore.E009" in ids(with_(USECASES=["attachments"]))
    assert "django_objectstore.E009" in ids(with_usecase(BOGUS=1))
    bad_name = with_(USECASES={**GOOD["USECASES"], "a/b": {"EXPIRATION": "manual"}})
    assert ids(bad_name) == ["django_objectstore.E009"]
    not_dict = with_(USECASES={**GOOD["USECASES"], "extra": "zstd"})
    assert ids(not_dict) == ["django_objectstore.E009"]


def test_e010_bad_compression() -> None:
    assert ids(with_usecase(COMPRESSION="gzip")) == ["django_objectstore.E010"]


@pytest.mark.parametrize("expiration", ["ttl:", "ttl:0", "forever", "tti:3 fortnights", 30])
def test_e011_bad_expiration(expiration: object) -> None:
    assert ids(with_usecase(EXPIRATION=expiration)) == ["django_objectstore.E011"]


def test_expiration_policy_objects_are_accepted() -> None:
    from datetime import timedelta

    assert ids(with_usecase(EXPIRATION=TimeToLive(timedelta(hours=1)))) == []


def test_e012_bad_scope() -> None:
    assert ids(with_usecase(SCOPE=["org"])) == ["django_objectstore.E012"]
    assert ids(with_usecase(SCOPE={"or.g": "org_id"})) == ["django_objectstore.E012"]


def test_e013_field_with_unconfigured_usecase() -> None:
    usecases = {k: v for k, v in GOOD["USECASES"].items() if k != "images"}
    assert ids(with_(USECASES=usecases)) == ["django_objectstore.E013"]


def test_e013_storages_entry_with_unconfigured_usecase() -> None:
    from django.conf import settings

    backend = "django_objectstore.storage.ObjectstoreStorage"
    for options, expected in (({"usecase": "nope"}, 1), ({}, 1), ({"usecase": "plain"}, 0)):
        storages = {**settings.STORAGES, "objects": {"BACKEND": backend, "OPTIONS": options}}
        with override_settings(STORAGES=storages):
            assert ids(GOOD).count("django_objectstore.E013") == expected, options


def test_e013_storage_without_usecase_is_fine_with_default_usecase() -> None:
    from django.conf import settings

    entry = {"BACKEND": "django_objectstore.storage.ObjectstoreStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "objects": entry}):
        assert ids(GOOD) == ["django_objectstore.E013"]
        assert ids(with_(DEFAULT_USECASE="images")) == []


@pytest.mark.parametrize("default", ["nope", 42, ""])
def test_e014_default_usecase_not_configured(default: object) -> None:
    assert ids(with_(DEFAULT_USECASE=default)) == ["django_objectstore.E014"]


SITE = "django_objectstore.storage.ObjectstoreStorage"


@pytest.mark.parametrize("alias", ["default", "staticfiles"])
def test_w005_site_storage_in_an_expiring_usecase(alias: str) -> None:
    from django.conf import settings

    for usecase, expected in (("attachments", 1), ("plain", 1), ("images", 0)):
        entry = {"BACKEND": SITE, "OPTIONS": {"usecase": usecase}}
        with override_settings(STORAGES={**settings.STORAGES, alias: entry}):
            found = ids(GOOD)
            assert found.count("django_objectstore.W005") == expected, usecase
            assert set(found) <= {"django_objectstore.W005"}
    other = {"BACKEND": SITE, "OPTIONS": {"usecase": "attachments"}}
    with override_settings(STORAGES={**settings.STORAGES, "uploads": other}):
        assert ids(GOOD) == []
    by_default = {"BACKEND": SITE}
    with override_settings(STORAGES={**settings.STORAGES, alias: by_default}):
        assert ids(with_(DEFAULT_USECASE="attachments")) == ["django_objectstore.W005"]


def test_w005_message_says_what_vanishes() -> None:
    from django.conf import settings

    entry = {"BACKEND": SITE, "OPTIONS": {"usecase": "attachments"}}
    with override_settings(STORAGES={**settings.STORAGES, "default": entry}, OBJECTSTORE=GOOD):
        (warning,) = checks.check_site_storages()
    assert "'tti:30d'" in warning.msg
    assert "vanish" in warning.msg
    assert warning.hint is not None
    assert "'manual'" in warning.hint


@pytest.mark.parametrize(
    "options", [{"server_chosen_keys": True}, {"key_from_name": False}], ids=["option", "legacy"]
)
def test_w006_server_chosen_keys_for_site_storages(options: dict[str, Any]) -> None:
    from django.conf import settings

    entry = {"BACKEND": SITE, "OPTIONS": {"usecase": "images", **options}}
    for alias, expected in (("default", 1), ("staticfiles", 1), ("private", 0)):
        with override_settings(STORAGES={**settings.STORAGES, alias: entry}):
            assert ids(GOOD).count("django_objectstore.W006") == expected, alias
    keyed = {"BACKEND": SITE, "OPTIONS": {"usecase": "images"}}
    with override_settings(STORAGES={**settings.STORAGES, "default": keyed}):
        assert ids(GOOD) == []


def test_w001_usecase_without_expiration() -> None:
    conf = with_(USECASES={**GOOD["USECASES"], "extra": {}})
    assert ids(conf) == ["django_objectstore.W001"]


def test_w002_fixed_jwt_string() -> None:
    assert ids(with_(TOKEN="aaa.bbb.ccc")) == ["django_objectstore.W002"]


def test_w003_no_token_for_remote_server() -> None:
    assert ids(with_(TOKEN=None, URL="https://objectstore.example.com")) == [
        "django_objectstore.W003"
    ]
    assert ids(with_(TOKEN=None)) == []


def test_w004_long_token_expiry() -> None:
    token = {"KID": "k", "SECRET_KEY_FILE": str(PRIVATE), "EXPIRY_SECONDS": 86400}
    assert ids(with_(TOKEN=token)) == ["django_objectstore.W004"]


def test_checks_are_registered() -> None:
    assert checks.check_settings in _registered()
    assert checks.check_fields in _registered()
    assert checks.check_site_storages in _registered()
    with override_settings(OBJECTSTORE=with_(URL="nope")), pytest.raises(SystemCheckError) as info:
        call_command("check")
    assert "django_objectstore.E002" in str(info.value)
    with override_settings(OBJECTSTORE=GOOD):
        assert not [m for m in run_checks() if m.id.startswith("django_objectstore")]


def _registered() -> set[Any]:
    from django.core.checks.registry import registry

    return set(registry.registered_checks)


def test_ids_are_unique_and_documented() -> None:
    assert len(set(checks.CHECK_IDS)) == len(checks.CHECK_IDS)
    source = Path(checks.__file__).read_text()
    numbers = re.findall(r"_([ew])\(\s*(\d+)", source)
    used = {f"django_objectstore.{kind.upper()}{int(n):03d}" for kind, n in numbers}
    assert used == set(checks.CHECK_IDS)
    for check_id in checks.CHECK_IDS:
        assert check_id.rsplit(".", 1)[1] in checks.__doc__  # type: ignore[operator]


SECRET_PEM = PRIVATE.read_text()
SECRET_JWT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.eyJyZXMiOnsib3M6dXNlY2FzZSI6ImEifX0."
    "c2lnbmF0dXJlc2lnbmF0dXJl"
)


def _secret_fragments(secret: str) -> list[str]:
    """Pieces whose presence in a message would leak the secret."""
    if secret.startswith("-----"):
        return [line for line in secret.splitlines() if not line.startswith("-----")]
    return secret.split(".")


PLACES = [
    "TOKEN",
    "TOKEN.KID",
    "TOKEN.SECRET_KEY",
    "TOKEN.SECRET_KEY_FILE",
    "TOKEN.EXPIRY_SECONDS",
    "TOKEN.PERMISSIONS",
    "TOKEN.<key name>",
    "URL",
    "PUBLIC_URL",
    "METRICS_BACKEND",
    "DOWNLOAD_PERMISSION",
    "RETRIES",
    "<key name>",
    "USECASES.<name>",
    "USECASES.EXPIRATION",
]


@pytest.mark.parametrize(
    ("secret", "place"),
    [pytest.param(SECRET_PEM, place, id=f"pem-{place}") for place in PLACES]
    # A JWT is what TOKEN may legitimately hold.
    + [pytest.param(SECRET_JWT, place, id=f"jwt-{place}") for place in PLACES if place != "TOKEN"],
)
def test_no_key_material_in_any_message(secret: str, place: str, capsys: Any) -> None:
    """A key (or token) pasted into any setting never appears in ``manage.py
    check`` output nor in the exception building the token raises."""
    conf: dict[str, Any] = with_()
    token = dict(GOOD["TOKEN"])
    top, _, sub = place.partition(".")
    if top == "TOKEN" and sub:
        if sub == "SECRET_KEY":
            token.pop("SECRET_KEY_FILE")
            # The public half is no private key: refused, and not printed.
            secret = (KEYS / "test_kid.public.pem").read_text() if secret is SECRET_PEM else secret
        token[secret if sub == "<key name>" else sub] = secret
        conf["TOKEN"] = token
    elif top == "TOKEN":
        conf["TOKEN"] = secret
    elif top == "<key name>":
        conf[secret] = 1
    elif top == "USECASES":
        usecases = dict(GOOD["USECASES"])
        if sub == "<name>":
            usecases[secret] = {"EXPIRATION": "manual"}
        else:
            usecases["attachments"] = {"EXPIRATION": secret}
        conf["USECASES"] = usecases
    else:
        conf[top] = secret
    with override_settings(OBJECTSTORE=conf):
        messages = checks.check_settings()
        with pytest.raises(SystemCheckError) as raised:
            call_command("check")
    out = capsys.readouterr()
    assert messages, "the bad setting must be reported"
    texts = [str(m) for m in messages] + [str(raised.value), out.out, out.err]
    if top == "TOKEN":
        with pytest.raises(ImproperlyConfigured) as built:
            factory.build_token(conf["TOKEN"])
        texts += [str(built.value), repr(built.value)]
    for fragment in _secret_fragments(secret):
        assert all(fragment not in text for text in texts), (place, texts)


@pytest.mark.parametrize("key", ["URL", "PUBLIC_URL"])
def test_no_key_material_when_settings_are_read_at_run_time(key: str) -> None:
    """Outside manage.py check: the error a storage raises on first use."""
    with (
        override_settings(OBJECTSTORE=with_(**{key: SECRET_PEM})),
        pytest.raises(ImproperlyConfigured) as raised,
    ):
        getattr(objectstore_settings, key.lower())
    assert all(line not in str(raised.value) for line in _secret_fragments(SECRET_PEM))
    assert "looks like key material" in str(raised.value)
