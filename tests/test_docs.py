"""The docs cannot rot: their runnable command blocks run, the code they quote is the code in
the repository, and their links between pages resolve.

- A fenced block whose info string is ``bash runnable`` runs with ``bash -e`` in an empty
  folder holding links to ``experiments``, ``benchmarks`` and ``hwmodels``, with this
  environment's ``embsim`` and ``python`` first on PATH; it must exit 0.
- A block whose info string is ``python from PATH`` must appear, verbatim, in file PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [*DOCS, ROOT / "README.md"]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.S | re.M)


def blocks(info: str) -> list[tuple[str, str, str]]:
    """(page, info string, body) of every fenced block whose info string starts with ``info``."""
    found = []
    for page in PAGES:
        for match in FENCE.finditer(page.read_text()):
            if match.group(1).strip().startswith(info):
                found.append((page.name, match.group(1).strip(), match.group(2)))
    return found


RUNNABLE = [(page, body) for page, tag, body in blocks("bash runnable")]
QUOTED = [(page, tag.split(" from ", 1)[1], body) for page, tag, body in blocks("python from")]


def test_the_docs_pages_exist():
    names = {page.name for page in DOCS}
    assert {"architecture.md", "compute-units.md"} <= names
    assert RUNNABLE, "no runnable command block in the docs"


@pytest.mark.parametrize(("page", "body"), RUNNABLE,
                         ids=[f"{page}:{i}" for i, (page, _) in enumerate(RUNNABLE)])
def test_runnable_block_runs(tmp_path, page, body):
    for name in ("experiments", "benchmarks", "hwmodels"):
        (tmp_path / name).symlink_to(ROOT / name)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-e", "-c", body], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{page}:\n{body}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize(("page", "path", "body"), QUOTED,
                         ids=[f"{page}:{path}" for page, path, _ in QUOTED])
def test_quoted_code_is_the_code(page, path, body):
    assert body in (ROOT / path).read_text(), f"{page} quotes {path}, which now differs"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_between_pages_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
