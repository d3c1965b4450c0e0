"""The documentation: README.md stays the front door (≤ 200 lines, every relative link resolves) and docs/ builds
as an MkDocs site in strict mode, where a broken link, a missing anchor or a page left out of nav fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 200
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _mkdocs_build(config: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir",
         str(site_dir)],
        cwd=config.parent, capture_output=True, text=True, timeout=300, check=False,
    )


def _relative_links(markdown: str) -> list[str]:
    """Link targets that point into the repository (no scheme, no mailto:, not a bare #anchor)."""
    without_code = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    without_code = re.sub(r"`[^`\n]*`", "", without_code)
    targets = [m.group(1) for m in LINK.finditer(without_code)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE) and not t.startswith("#")]


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    result = _mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "architecture" / "index.html").is_file()


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    """The guard itself: the same config and pages, plus one page (in nav) linking to a page that does not exist."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "docs" / "broken.md").write_text("# Broken\n\nSee [the missing page](no-such-page.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(config.read_text().rstrip("\n") + "\n  - Broken: broken.md\n")

    result = _mkdocs_build(config, tmp_path / "site")

    assert result.returncode != 0, "a page linking to a missing page built in strict mode"
    assert "no-such-page.md" in result.stdout + result.stderr


def test_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move reference material into docs/"
    )


def test_every_relative_link_in_the_readme_points_at_a_file() -> None:
    links = _relative_links(README.read_text())
    assert links, "README.md links to no page in docs/"
    missing = [t for t in links if not (ROOT / unquote(t.split("#", 1)[0])).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[a](docs/x.md) and ![b](img/y.png \"t\")", ["docs/x.md", "img/y.png"]),
        ("[site](https://example.com) [anchor](#two-commands) [mail](mailto:a@b.c)", []),
        ("`[not](a-link.md)`\n```\n[nor](this.md)\n```\n[yes](docs/z.md#part)", ["docs/z.md#part"]),
    ],
)
def test_the_link_finder(markdown: str, expected: list[str]) -> None:
    assert _relative_links(markdown) == expected
