"""The learning curves that set the cpu regime of KDAS Finding 3 (issue 13): how long the teacher and the
all-samples student must train on the pool to converge. Made with the CLI (1 run each, 2 threads):

    python -m kd train --model resnet20 --subset-fraction 0.1 --epochs 60 --eval-every 3 \\
        --results results/learning_curves
    python -m kd distill --student resnet8 --width 0.5 --teacher resnet20 --teacher-subset-fraction 0.1 \\
        --teacher-epochs 60 --subset-fraction 0.1 --epochs E --eval-every 3 --loss kd --temperature 4 \\
        --ce-weight 0.1 --kd-weight 0.9 --results results/learning_curves          # E = 24 and 48

and plotted by `python -m experiments.learning_curves` into figures/learning_curves_cpu.png.
"""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd

from kd import analysis, records

matplotlib.use("Agg")
RESULTS = records.REPO / "results" / "learning_curves"


def main():
    runs = records.read_rows(RESULTS / "runs.csv", required=("run_id", "kind"))
    analysis.plot_style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for _, run in runs.iterrows():
        h = pd.read_csv(RESULTS / "histories" / f"{run.run_id}.csv").dropna(subset=["test_top1"])
        who = (f"teacher {run.model}" if run.kind == "train" else f"student {run.student} x{run.width:g} (KD)")
        gain = analysis.last_quarter_gain(h.to_dict("records"))
        ax.plot(h.epoch, h.test_top1, marker="o", markersize=3,
                label=f"{who}, {int(h.epoch.max())} epochs: {h.test_top1.iloc[-1]:.2f}%, last-quarter gain "
                      f"{gain:+.2f} pp")
    ax.set(xlabel="epoch (cosine schedule over the run's length)", ylabel="test top-1 (%)",
           title="Fashion-MNIST, 6,000-image pool (pool fraction 0.1)", ylim=(80, None))
    ax.legend(fontsize=8)
    analysis.save_figure(fig, records.REPO / "figures" / "learning_curves_cpu.png")


if __name__ == "__main__":
    main()
