"""What the benchmark scripts share: failing with one clear line, peer versions, where results go."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn, Optional

HERE = Path(__file__).resolve().parent


def die(script: str, msg: str, code: int = 2) -> NoReturn:
    print("%s: %s" % (script, msg), file=sys.stderr)
    sys.exit(code)


def dist_version(name: str) -> str:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return "?"


def output_path(out: Optional[Path], quick: bool, filename: str) -> Path:
    """--out names a results directory (or a .json file); a smoke run defaults to target/bench-smoke so it never
    overwrites the committed figures."""
    if out is None:
        out = HERE.parent / "target" / "bench-smoke" if quick else HERE / "results"
    return out if out.suffix == ".json" else out / filename
