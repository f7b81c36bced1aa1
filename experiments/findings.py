"""The findings, by script name, in the order `experiments.all` runs them: cheapest first within a paper, and
findings that share teachers one after another so that the teacher cache is warm."""
from __future__ import annotations

import importlib

FINDINGS = ("kdas_finding3", "kdas_finding1", "kdas_finding2", "kdas_finding4", "kdas_method",
            "bigger_teachers", "early_stopped_teachers", "eskd", "dist_stronger_teacher", "vanillakd_data_scale",
            "fidelity_ensembles", "fidelity_optimisation", "fidelity_augmentation")


def module_of(name: str):
    """A finding's module (experiments/<name>.py)."""
    return importlib.import_module(f"experiments.{name}")
