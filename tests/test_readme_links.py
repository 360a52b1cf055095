"""The README works from a fresh clone: every link it makes points inside the repository at something that is
there, and its first two commands are the demo and the tests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_link_points_inside_the_repository_at_something_there():
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert targets
    outside = [t for t in targets if "://" in t or t.startswith(("/", "..")) or ".." in Path(t).parts]
    assert outside == []
    missing = [t for t in targets if not t.startswith("#") and not (ROOT / t.split("#")[0]).exists()]
    assert missing == []
    assert "../shared" not in README


def test_the_first_two_commands_are_the_demo_and_the_tests():
    first = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first[:2]] == [["make", "demo"], ["make", "test"]]
