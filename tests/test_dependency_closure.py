"""The router's Lambda package must never pull torch, transformers, fastapi or numpy.

Walks the installed requirement graph from this project's ``router`` extra, evaluating markers
as the Lambda's pip would, so a new transitive dependency that drags one in fails here.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

FORBIDDEN = {"torch", "transformers", "fastapi", "numpy"}
PROJECT = "smart-transcription-router"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(dist_name: str, extras: set[str]) -> set[str]:
    seen: set[str] = set()
    stack: list[tuple[str, frozenset[str]]] = [(dist_name, frozenset(extras))]
    visited: set[tuple[str, frozenset[str]]] = set()
    while stack:
        name, wanted = stack.pop()
        if (name, wanted) in visited:
            continue
        visited.add((name, wanted))
        seen.add(_norm(name))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for raw in requires:
            req = Requirement(raw)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                stack.append((req.name, frozenset(req.extras)))
    return seen


def test_router_extra_pulls_no_heavy_packages() -> None:
    deps = closure(PROJECT, {"router"})
    assert "aws-lambda-powertools" in deps and "httpx" in deps and "tenacity" in deps
    assert not FORBIDDEN & deps, f"router closure includes {sorted(FORBIDDEN & deps)}"


def test_closure_walk_would_catch_a_heavy_dependency() -> None:
    # The server extra does pull them in: proves the walk follows extras and markers.
    assert {"torch", "transformers", "fastapi", "numpy"} <= closure(PROJECT, {"server"})
