"""A check the CLI tests share: bad input is one line, exit status 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from gtmsim.cli import main


def listing(folder: Path) -> set[str]:
    """Every path below `folder`, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def fails_cleanly(args: list[str], expected: str, folder: Path, capsys) -> None:
    """`main(args)` exits 2 with one line naming `expected`, writing nothing in `folder`."""
    before = listing(folder)
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtmsim: error: "), err
    assert expected in lines[0], lines[0]
    assert listing(folder) == before and out == ""  # no runs/, no output folder
