"""The findings, by script name, in the order `experiments.all` runs them: cheapest first within a paper, and
findings that share teachers one after another so that the teacher cache is warm."""
from __future__ import annotations

import importlib

FINDINGS = ("kdas_finding3", "kdas_finding1", "kdas_finding2", "kdas_finding4", "kdas_method",
            "bigger_teachers", "early_stopped_teachers", "eskd", "dist_stronger_teacher", "vanillakd_data_scale",
            "fidelity_ensembles", "fidelity_optimisation", "fidelity_augmentation")


# The README's findings table: the paper and the finding in a line, per script (experiments.report writes it).
PAPERS = {
    "kdas_finding1": ("KDAS (ICCV 2025)", "Finding 1: top-k% by KL_TS matches all samples"),
    "kdas_finding2": ("KDAS (ICCV 2025)", "Finding 2: a decreasing sampling ratio wins"),
    "kdas_finding3": ("KDAS (ICCV 2025)", "Finding 3: medium KL_TG samples are the best"),
    "kdas_finding4": ("KDAS (ICCV 2025)", "Finding 4: a quality penalty helps KD"),
    "kdas_method": ("KDAS (ICCV 2025)", "the method: faster KD at equal accuracy"),
    "bigger_teachers": ("Cho & Hariharan (ICCV 2019)", "bigger teachers are not better teachers"),
    "eskd": ("Cho & Hariharan (ICCV 2019)", "early-stopped KD beats full KD"),
    "early_stopped_teachers": ("Cho & Hariharan (ICCV 2019)", "early-stopped teachers are better teachers"),
    "dist_stronger_teacher": ("DIST (NeurIPS 2022)", "KD stalls with a stronger teacher, DIST does not"),
    "vanillakd_data_scale": ("VanillaKD (NeurIPS 2023)", "the data scale decides which KD wins"),
    "fidelity_ensembles": ("Stanton et al. (NeurIPS 2021)",
                           "students do not match their teachers, even from ensembles (claims 1-2)"),
    "fidelity_optimisation": ("Stanton et al. (NeurIPS 2021)",
                              "the cause is optimisation: a teacher-near init matches, longer training does not "
                              "(claim 4)"),
    "fidelity_augmentation": ("Stanton et al. (NeurIPS 2021)",
                              "augmentation raises test fidelity, lowers train fidelity (claim 3)"),
}


def module_of(name: str):
    """A finding's module (experiments/<name>.py)."""
    return importlib.import_module(f"experiments.{name}")
