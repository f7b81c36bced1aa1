"""Four runs of KDAS Finding 3's smoke sweep, two of which fail the hard way while KD_TEST_FAULTS=1 (the test
of run isolation in test_faults.py): "random" kills its own process with SIGSEGV, as the oneDNN bug did, and
"low" trains with a learning rate of 1e30 until its loss is no longer finite."""
import dataclasses
import os
import signal
import sys

from experiments import kdas_finding3
from experiments.kdas_finding3 import CLAIM, PAPER, PROFILES, TITLE, verdict_for  # noqa: F401
from kd import harness

NAME = "faulty_finding"
CONDITIONS = ("all", "random", "low", "medium")


def grid(p: dict, seeds: int) -> list[dict]:
    return [c for c in kdas_finding3.grid(p, seeds) if c["condition"] in CONDITIONS]


def report(rows, p, out) -> str:  # four of the grid's conditions: no table of the finding's, a line
    out.table.parent.mkdir(parents=True, exist_ok=True)
    out.table.write_text(f"{len(rows)} runs done\n")
    return "none"


def run(config, ctx) -> dict:
    if os.environ.get("KD_TEST_FAULTS") == "1":
        if config.condition == "random":
            os.kill(os.getpid(), signal.SIGSEGV)
        if config.condition == "low":
            config = dataclasses.replace(config, recipe=dataclasses.replace(config.recipe, lr=1e30))
    return kdas_finding3.run(config, ctx)


if __name__ == "__main__":
    sys.exit(harness.main(sys.modules[__name__]))
