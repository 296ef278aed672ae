"""Test automation for the crosspost workspace.

Default sessions (what `uv run --locked nox` and CI run):
  tests-<python>(package=<folder>)  each package alone, with only its declared dependencies
  integration-<python>              the cross-package tests in tests/, every package installed
  lint, typecheck, wheels
Not default: bench (timings are noisy on shared machines; run it by hand).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHONS = ["3.11", "3.12", "3.13"]
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "typecheck", "tests", "integration", "wheels"]


def _project(folder: str) -> dict:
    with open(ROOT / "packages" / folder / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def _dist_names() -> dict[str, str]:
    """Folder -> distribution name."""
    return {folder: _project(folder)["project"]["name"] for folder in PACKAGES}


def _import_names() -> dict[str, str]:
    """Distribution name -> the import name of its top-level package."""
    names = {}
    for folder in PACKAGES:
        src = ROOT / "packages" / folder / "src"
        (pkg,) = [p.name for p in src.iterdir() if (p / "__init__.py").exists()]
        names[_project(folder)["project"]["name"]] = pkg
    return names


def _requirement_name(requirement: str) -> str:
    for sep in "<>=!~;[ @":
        requirement = requirement.split(sep, 1)[0]
    return requirement.strip().lower()


def _allowed_siblings(folder: str) -> set[str]:
    """Sibling distributions a package may see: its own, its dependencies' and its test group's,
    transitively."""
    by_dist = {dist: f for f, dist in _dist_names().items()}
    allowed: set[str] = set()
    todo = [_project(folder)["project"]["name"]]
    first = True
    while todo:
        dist = todo.pop()
        if dist in allowed:
            continue
        allowed.add(dist)
        data = _project(by_dist[dist])
        requirements = list(data["project"].get("dependencies", []))
        if first:  # the test group counts only for the package under test
            requirements += [
                r for r in data.get("dependency-groups", {}).get("test", []) if isinstance(r, str)
            ]
            first = False
        todo += [n for n in map(_requirement_name, requirements) if n in by_dist]
    return allowed


def _sync(session: nox.Session, *args: str) -> None:
    """Install into the session's own environment exactly what the lock file says."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
    )


ISOLATION_CHECK = """
import importlib.util, json, sys
names, allowed = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
leaks = [d for d, m in names.items() if d not in allowed and importlib.util.find_spec(m)]
missing = [d for d, m in names.items() if d in allowed and not importlib.util.find_spec(m)]
if leaks or missing:
    sys.exit(f"isolation broken: importable but undeclared {leaks}, declared but missing {missing}")
print("isolated: only", sorted(allowed), "importable")
"""


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package's tests, in an environment holding only it, its dependencies and its test
    group."""
    dist = _dist_names()[package]
    _sync(session, "--no-default-groups", "--package", dist, "--group", "test")
    session.run(
        "python",
        "-c",
        ISOLATION_CHECK,
        json.dumps(_import_names()),
        json.dumps(sorted(_allowed_siblings(package))),
    )
    session.run(
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(ROOT),
        str(ROOT / "packages" / package / "tests"),
        *session.posargs,
    )


@nox.session(python=PYTHONS)
def integration(session: nox.Session) -> None:
    """The cross-package tests in tests/, with every package installed."""
    _sync(session, "--all-packages", "--no-default-groups", "--group", "dev")
    session.run("pytest", str(ROOT / "tests"), *session.posargs)


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    _sync(session, "--no-default-groups", "--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's src/."""
    _sync(session, "--all-packages", "--no-default-groups", "--group", "dev")
    sources = [str(ROOT / "packages" / p / "src") for p in PACKAGES]
    session.run("mypy", *sources)


@nox.session(python="3.12")
def wheels(session: nox.Session) -> None:
    """Build every wheel, then install each alone (siblings from the built wheels only, no
    workspace sources) into a fresh environment and import it."""
    dist_dir = Path(session.create_tmp()) / "dist"
    if dist_dir.exists():
        for old in dist_dir.iterdir():
            old.unlink()
    for folder in PACKAGES:
        session.run(
            "uv", "build", "--package", _dist_names()[folder], "--wheel", "--out-dir",
            str(dist_dir), "--quiet", external=True,
        )  # fmt: skip
    imports = _import_names()
    for dist, module in imports.items():
        venv = Path(session.create_tmp()) / f"venv-{dist}"
        session.run("uv", "venv", "--quiet", "--python", session.python, str(venv), external=True)
        python = str(venv / "bin" / "python")
        session.run(
            "uv", "pip", "install", "--quiet", "--python", python, "--find-links", str(dist_dir),
            "--no-sources", dist, external=True, env={"UV_NO_CONFIG": "1"},
        )  # fmt: skip
        session.run(
            python, "-c",
            f"import {module}, sys; print({module!r}, {module}.__version__); "
            f"assert {module}.__version__ == __import__('importlib.metadata').metadata.version({dist!r})",
            external=True,
        )  # fmt: skip


@nox.session(python="3.12", default=False)
def bench(session: nox.Session) -> None:
    """The benchmark harness: ratios measured side by side (see benchmarks/README.md)."""
    _sync(session, "--all-packages", "--no-default-groups", "--group", "dev")
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs)
