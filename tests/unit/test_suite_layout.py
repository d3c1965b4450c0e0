"""The test suite itself: pytest's default import mode imports each test module by its file name, so two test
files with one name in different folders stop the whole run at collection ("import file mismatch")."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_file_name() -> None:
    folders: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        folders[path.name].append(str(path.parent.relative_to(TESTS)))
    shared = {name: sorted(where) for name, where in folders.items() if len(where) > 1}
    assert shared == {}, f"rename one of each (e.g. test_<topic>_rules.py for the unit tests): {shared}"
