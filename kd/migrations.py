"""Migrations of committed result files when a column is renamed, so that old and new rows read alike.

    python -m kd.migrations [results]     # apply every rename below to results/**/*.csv (idempotent)

Only the header line changes; every value stays byte for byte as the run wrote it.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from kd.records import REPO, atomic_write

# old metric -> new metric, in the order they were made; a metric names its history column and the
# runs.csv columns final_<metric> and best_<metric>
RENAMES = {
    # KL(p_t || p_s), Stanton et al.'s fidelity KL; `kl_ts` also named KDAS's KL(P_S || P_T) (opposite direction)
    "test_kl_ts": "test_kl_teacher_student",
}


def migrate_file(path: Path, renames: dict = RENAMES) -> bool:
    """Rename the columns of one CSV in place; True if its header changed."""
    text = Path(path).read_text()
    first, newline, rest = text.partition("\n")
    header = next(csv.reader([first]))
    renamed = [_renamed(column, renames) for column in header]
    if renamed == header:
        return False
    clashes = {new for old, new in zip(header, renamed) if new != old and new in header}
    if clashes:
        raise SystemExit(f"{path} holds both an old column and its new name ({', '.join(sorted(clashes))}); "
                         f"nothing was changed. Merge the two columns by hand.")
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(renamed)
    atomic_write(path, lambda tmp: Path(tmp).write_text(line.getvalue() + newline + rest))
    return True


def _renamed(column: str, renames: dict) -> str:
    for old, new in renames.items():
        for prefix in ("", "final_", "best_"):
            if column == prefix + old:
                return prefix + new
    return column


def migrate(root: Path) -> list[Path]:
    return [p for p in sorted(Path(root).rglob("*.csv")) if migrate_file(p)]


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "results"
    changed = migrate(root)
    print(f"{len(changed)} CSV files under {root} migrated ({', '.join(f'{a} -> {b}' for a, b in RENAMES.items())})")
