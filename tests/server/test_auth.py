"""Conformance: JWT auth, pre-signed URLs and usecase policy (protocol
section 19, items 52-88)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from django_objectstore._protocol import encode_path, presign_canonical_string
from django_objectstore.server import (
    ConfigError,
    ExpirationRule,
    KeyConfig,
    LocalServer,
    UsecasePolicy,
)
from tests.server.helpers import (
    ALL_PERMISSIONS,
    PUBLIC_PEM,
    KeyPair,
    bearer,
    call,
    mint,
    presign,
    private_key,
)
from tests.server.test_objects import SPECIAL_KEYS

BASE = "/v1/objects/test/org=1"


@pytest.fixture
def key(auth_server: LocalServer) -> str:
    """A fresh key holding b'secret' in test/org=1."""
    name = f"auth-{uuid.uuid4().hex[:10]}"
    r = call(auth_server.url, "PUT", f"{BASE}/{name}", b"secret", bearer(mint()))
    assert r.status == 200
    return name


def test_no_token_is_400(auth_server: LocalServer) -> None:
    r = call(auth_server.url, "PUT", f"{BASE}/k", b"x")
    assert r.status == 400
    assert r.json()["detail"].endswith("No authorization token provided")


def test_token_transports(auth_server: LocalServer, key: str) -> None:
    url = auth_server.url
    token = mint()
    assert call(url, "PUT", f"{BASE}/k", b"x", {"Authorization": f"Bearer {token}"}).status == 200
    assert call(url, "GET", f"{BASE}/{key}", headers={"x-os-auth": f"bearer {token}"}).status == 200
    r = call(url, "GET", f"{BASE}/{key}?os_auth={mint(permissions=['object.read'])}")
    assert (r.status, r.body) == (200, b"secret")
    # x-os-auth present without the prefix: Authorization is not consulted.
    r = call(
        url,
        "GET",
        f"{BASE}/{key}",
        headers={"x-os-auth": token, "Authorization": f"Bearer {token}"},
    )
    assert r.status == 400
    # A header token wins over a broken os_auth.
    r = call(url, "GET", f"{BASE}/{key}?os_auth=not-a-valid-jwt", headers=bearer(token))
    assert r.status == 200


def test_tampered_query_token_is_401(auth_server: LocalServer, key: str) -> None:
    token = mint()
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert call(auth_server.url, "GET", f"{BASE}/{key}?os_auth={flipped}").status == 401
    # also a character carrying only significant bits
    changed = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    assert call(auth_server.url, "GET", f"{BASE}/{key}?os_auth={changed}").status == 401


def test_invalid_tokens(auth_server: LocalServer, key: str) -> None:
    url = auth_server.url
    path = f"{BASE}/{key}"
    stranger = Ed25519PrivateKey.generate()
    assert call(url, "GET", path, headers=bearer("abcdef")).status == 401
    assert call(url, "GET", path, headers=bearer(mint(key=stranger))).status == 401
    r = call(url, "GET", path, headers=bearer(mint(kid="nope")))
    assert (r.status, r.json()["detail"]) == (401, "auth error: unknown key")
    r = call(url, "GET", path, headers=bearer(mint(kid=None)))
    assert r.status == 400
    assert "kid" in r.json()["detail"]


def test_expiry_leeway(auth_server: LocalServer, key: str) -> None:
    path = f"{BASE}/{key}"
    assert call(auth_server.url, "GET", path, headers=bearer(mint(exp_offset=-100))).status == 401
    assert call(auth_server.url, "GET", path, headers=bearer(mint(exp_offset=-30))).status == 200


def test_wrong_algorithm(auth_server: LocalServer, key: str) -> None:
    claims = {"res": {"os:usecase": "test", "org": "1"}, "permissions": ALL_PERMISSIONS}
    claims["exp"] = int(time.time()) + 60  # type: ignore[assignment]
    token = jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": "test_kid"})
    assert call(auth_server.url, "GET", f"{BASE}/{key}", headers=bearer(token)).status == 401


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"aud": "objectstore"}, 200),
        ({"aud": "other"}, 401),
        ({"iss": "sentry"}, 200),
        ({"iss": "relay"}, 200),
        ({"iss": "evil"}, 401),
        ({"permissions": ["object.read", "object.admin"]}, 401),
    ],
)
def test_aud_iss_claims(
    auth_server: LocalServer, key: str, extra: dict[str, object], status: int
) -> None:
    token = mint(extra=extra)
    assert call(auth_server.url, "GET", f"{BASE}/{key}", headers=bearer(token)).status == status


def test_permissions(auth_server: LocalServer, key: str) -> None:
    url = auth_server.url
    r = call(url, "PUT", f"{BASE}/{key}", b"x", bearer(mint(permissions=[])))
    assert r.status == 403
    assert r.json()["detail"] == "auth error: operation not allowed"
    ro = bearer(mint(permissions=["object.read"]))
    assert call(url, "GET", f"{BASE}/{key}", headers=ro).status == 200
    assert call(url, "HEAD", f"{BASE}/{key}", headers=ro).status == 200
    assert call(url, "PUT", f"{BASE}/{key}", b"x", ro).status == 403
    assert call(url, "DELETE", f"{BASE}/{key}", headers=ro).status == 403
    other = bearer(mint(usecase="other"))
    assert call(url, "GET", f"{BASE}/{key}", headers=other).status == 403


@pytest.mark.parametrize(
    ("grant", "scopes", "status"),
    [
        ({"org": "123", "project": "456"}, "org=123;project=456", 200),
        ({"org": "123", "project": "456"}, "project=456;org=123", 200),
        ({"org": "123", "project": "456"}, "org=123", 200),
        ({"org": "123", "project": "456"}, "_", 200),
        ({"org": "123", "project": "456"}, "org=123;project=999", 403),
        ({"org": "123", "project": "456"}, "org=999;project=456", 403),
        ({"org": "123", "project": "*"}, "org=123;project=456", 200),
        ({"org": "1"}, "org=1;project=2", 403),
        ({"org": 1}, "org=1", 401),
    ],
)
def test_scope_matching(
    auth_server: LocalServer, grant: dict[str, object], scopes: str, status: int
) -> None:
    token = mint(scopes=grant)
    r = call(auth_server.url, "PUT", f"/v1/objects/test/{scopes}/k", b"x", bearer(token))
    assert r.status == status


def test_max_permissions_cap(auth_server: LocalServer, read_only_key: KeyPair, key: str) -> None:
    token = mint(kid="ro_kid", key=read_only_key[0])
    assert call(auth_server.url, "PUT", f"{BASE}/{key}", b"x", bearer(token)).status == 403
    assert call(auth_server.url, "GET", f"{BASE}/{key}", headers=bearer(token)).status == 200


def test_order_metadata_before_permission(auth_server: LocalServer) -> None:
    ro = bearer(mint(permissions=["object.read"]))
    r = call(auth_server.url, "PUT", f"{BASE}/k", b"x", {**ro, "Content-Type": "bad type!"})
    assert r.status == 400


def test_order_auth_before_path(auth_server: LocalServer) -> None:
    r = call(auth_server.url, "GET", "/v1/objects/test/bad-scopes/k", headers=bearer("abc"))
    assert r.status == 401


def test_not_enforced_ignores_bad_tokens(auth_keys: dict[str, KeyConfig]) -> None:
    with LocalServer(auth_keys=auth_keys, auth_enforce=False) as server:
        r = call(server.url, "PUT", f"{BASE}/k", b"x", bearer("garbage"))
        assert r.status == 200
        assert call(server.url, "GET", f"{BASE}/k").status == 200


def test_enforce_without_keys_refuses() -> None:
    with pytest.raises(ConfigError, match="no keys"):
        LocalServer(auth_enforce=True)


def test_unreadable_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read key file"):
        LocalServer(auth_enforce=True, auth_keys={"k": KeyConfig([tmp_path / "missing.pem"])})
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        LocalServer(auth_enforce=True, auth_keys={"k": KeyConfig([bad])})


def test_key_rotation_versions(tmp_path: Path) -> None:
    old = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    old_pem = tmp_path / "old.pem"
    old_pem.write_bytes(
        old.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    keys = {"test_kid": KeyConfig([old_pem, PUBLIC_PEM], ALL_PERMISSIONS)}
    with LocalServer(auth_enforce=True, auth_keys=keys) as server:
        for signer in (old, private_key()):
            assert (
                call(server.url, "PUT", f"{BASE}/k", b"x", bearer(mint(key=signer))).status == 200
            )


def test_no_key_configured_authorizes_nothing(tmp_path: Path) -> None:
    keys = {"test_kid": KeyConfig([PUBLIC_PEM])}
    with LocalServer(auth_enforce=True, auth_keys=keys) as server:
        assert call(server.url, "GET", f"{BASE}/k", headers=bearer(mint())).status == 403


def test_health_never_needs_auth(auth_server: LocalServer) -> None:
    assert call(auth_server.url, "GET", "/health").status == 200
    assert call(auth_server.url, "GET", "/ready").status == 200
    assert call(auth_server.url, "GET", "/keda").status == 200


# -- pre-signed URLs -----------------------------------------------------------


def test_presigned_get_and_head(auth_server: LocalServer, key: str) -> None:
    path = f"{BASE}/{key}"
    r = call(auth_server.url, "GET", presign("GET", path))
    assert (r.status, r.body) == (200, b"secret")
    assert call(auth_server.url, "HEAD", presign("HEAD", path)).status == 200
    assert call(auth_server.url, "HEAD", presign("GET", path)).status == 200
    assert call(auth_server.url, "GET", presign("HEAD", path)).status == 200


@pytest.mark.parametrize("method", ["DELETE", "PUT"])
def test_presigned_writes_forbidden(auth_server: LocalServer, key: str, method: str) -> None:
    r = call(auth_server.url, method, presign(method, f"{BASE}/{key}"), b"")
    assert r.status == 403
    assert "presigned" in r.json()["detail"]


def test_presigned_bad_signatures(
    auth_server: LocalServer,
    key: str,
    read_only_key: KeyPair,
) -> None:
    url = auth_server.url
    path = f"{BASE}/{key}"
    good = presign("GET", path)
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert call(url, "GET", flipped).status == 401
    changed = good[:-5] + ("A" if good[-5] != "A" else "B") + good[-4:]
    assert call(url, "GET", changed).status == 401
    other = presign("GET", path, key=Ed25519PrivateKey.generate())
    assert call(url, "GET", other).status == 401
    assert call(url, "GET", good + "==").status == 401
    assert call(url, "GET", good + "&extra=1").status == 401
    # Reordering the parameters keeps the canonical form.
    base, query = good.split("?")
    reordered = "&".join(reversed(query.split("&")))
    assert call(url, "GET", f"{base}?{reordered}").status == 200


@pytest.mark.parametrize(
    ("offset", "duration", "status"),
    [
        (timedelta(hours=-2), 3600, 401),
        (timedelta(seconds=30), 3600, 200),
        (timedelta(seconds=120), 3600, 401),
        (timedelta(0), 691200, 400),
        (timedelta(0), 604800, 200),
    ],
)
def test_presigned_window(
    auth_server: LocalServer, key: str, offset: timedelta, duration: int, status: int
) -> None:
    signed = presign(
        "GET", f"{BASE}/{key}", signed_at=datetime.now(UTC) + offset, duration=duration
    )
    assert call(auth_server.url, "GET", signed).status == status


def test_presigned_bad_params(auth_server: LocalServer, key: str) -> None:
    url = auth_server.url
    path = f"{BASE}/{key}"
    assert call(url, "GET", f"{path}?os_kid=test_kid&os_duration=60&os_sig=abc").status == 400
    assert call(url, "GET", presign("GET", path, kid="unknown")).status == 401
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    bad = f"{path}?os_kid=test_kid&os_timestamp={ts}&os_duration=-5&os_sig=x"
    assert call(url, "GET", bad).status == 400


def test_presigned_special_keys(auth_server: LocalServer) -> None:
    token = bearer(mint())
    for name in SPECIAL_KEYS:
        path = encode_path(f"{BASE}/{name}")
        assert call(auth_server.url, "PUT", path, name.encode(), token).status == 200
        r = call(auth_server.url, "GET", presign("GET", path))
        assert (r.status, r.body) == (200, name.encode())


def test_presign_test_vector() -> None:
    path = "/v1/objects/test-usecase/org=42;project=1337/dir/with%20space%25"
    query = "os_kid=test_kid&os_timestamp=2026-01-01T00:00:00Z&os_duration=3600"
    signature = private_key().sign(presign_canonical_string("GET", path, query).encode())
    import base64

    assert base64.urlsafe_b64encode(signature).rstrip(b"=").decode() == (
        "CIxi3KrAnxVMB-t6u-_EwVtaAchKyHUc3AWv_juJmRODV5-HMgELQNRYLSZ9OWCm8qaaph1gdfq9N3m57asUAQ"
    )


def test_presign_key_without_read(
    auth_server: LocalServer,
    key: str,
    write_only_key: KeyPair,
) -> None:
    signed = presign("GET", f"{BASE}/{key}", kid="wo_kid", key=write_only_key[0])
    assert call(auth_server.url, "GET", signed).status == 403


def test_presigned_cannot_write_multipart(auth_server: LocalServer, key: str) -> None:
    path = f"/v1/objects:multipart:parts/test/org=1/{key}"
    signed = presign("GET", f"{path}", extra_query="&upload_id=abc")
    assert call(auth_server.url, "GET", signed).status == 403


# -- usecase policy ------------------------------------------------------------


@pytest.fixture(scope="module")
def policy_server() -> Iterator[LocalServer]:
    policy = UsecasePolicy(
        manual=ExpirationRule(allowed=False),
        ttl=ExpirationRule(max=timedelta(days=90)),
        tti=ExpirationRule(allowed=False),
    )
    with LocalServer(usecases={"attachments": policy}) as server:
        yield server


@pytest.mark.parametrize(
    ("expiration", "status"),
    [
        ("ttl:30d", 200),
        ("ttl:90d", 200),
        ("ttl:100d", 400),
        ("manual", 400),
        (None, 400),
        ("tti:30d", 400),
    ],
)
def test_usecase_policy(policy_server: LocalServer, expiration: str | None, status: int) -> None:
    headers = {"x-sn-expiration": expiration} if expiration else {}
    r = call(policy_server.url, "PUT", "/v1/objects/attachments/org=1/k", b"x", headers)
    assert r.status == status
    if status == 400:
        assert r.json()["detail"].startswith("client error: expiration")
    r = call(policy_server.url, "PUT", "/v1/objects:multipart/attachments/org=1/k", b"", headers)
    assert r.status == status


def test_unconfigured_usecase_allows_manual(policy_server: LocalServer) -> None:
    r = call(
        policy_server.url, "PUT", "/v1/objects/uploads/org=1/k", b"x", {"x-sn-expiration": "manual"}
    )
    assert r.status == 200


def test_policy_from_mapping() -> None:
    policy = UsecasePolicy.from_mapping(
        {"expiration": {"manual": {"allowed": False}, "ttl": {"max": "90d"}}}
    )
    assert policy.manual.allowed is False
    assert policy.ttl.max == timedelta(days=90)
    assert policy.tti == ExpirationRule()
