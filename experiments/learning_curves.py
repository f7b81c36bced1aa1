"""The learning curves that set the cpu regime of KDAS Finding 3 (issue 13): how long the teacher and the
all-samples student must train on the pool to converge. Made with the CLI, one run each. On 6,000 images
(2 threads):

    python -m kd train --model resnet20 --subset-fraction 0.1 --epochs 60 --eval-every 3 \\
        --results results/learning_curves
    python -m kd distill --student resnet8 --width 0.5 --teacher resnet20 --teacher-subset-fraction 0.1 \\
        --teacher-epochs 60 --subset-fraction 0.1 --epochs E --eval-every 3 --loss kd --temperature 4 \\
        --ce-weight 0.1 --kd-weight 0.9 --results results/learning_curves          # E = 24 and 48

On the 1,200 images F3 uses (one thread each, OMP_NUM_THREADS=1; the teacher is the one F3's cpu profile
finds in the cache, since the specs agree):

    python -m kd train --model resnet20 --subset-fraction 0.02 --epochs 120 --eval-every 5 \\
        --results results/learning_curves
    python -m kd distill --student resnet8 --width 0.5 --teacher-ckpt <that teacher's final.pt> \\
        --subset-fraction 0.02 --epochs E --eval-every E/16 --loss kd --temperature 4 --ce-weight 0.1 \\
        --kd-weight 0.9 --results results/learning_curves                           # E = 96, 144, 192

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
    runs["pool_size"] = (runs.pool_fraction * 60_000).round().astype(int)
    pools = sorted(runs.pool_size.unique(), reverse=True)
    analysis.plot_style()
    fig, axes = plt.subplots(1, len(pools), figsize=(8 * len(pools), 4.8), squeeze=False)
    for ax, pool in zip(axes[0], pools):
        for _, run in runs[runs.pool_size == pool].sort_values(["kind", "recipe.epochs"]).iterrows():
            h = pd.read_csv(RESULTS / "histories" / f"{run.run_id}.csv").dropna(subset=["test_top1"])
            who = (f"teacher {run.model}" if run.kind == "train"
                   else f"student {run.student} x{run.student_width:g} (KD)")
            gain = analysis.last_quarter_gain(h.to_dict("records"))
            ax.plot(h.epoch, h.test_top1, marker="o", markersize=3,
                    label=f"{who}, {int(h.epoch.max())} epochs: {h.test_top1.iloc[-1]:.2f}%, last-quarter gain "
                          f"{gain:+.2f} pp")
        ax.set(xlabel="epoch (cosine schedule over the run's length)", ylabel="test top-1 (%)",
               title=f"Fashion-MNIST, {pool:,}-image pool", ylim=(70, None))
        ax.legend(fontsize=8)
    analysis.save_figure(fig, records.REPO / "figures" / "learning_curves_cpu.png")

if __name__ == "__main__":
    main()
