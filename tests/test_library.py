"""The library entry point (kd.api) and the two examples, run as a user runs them; and whether this repo's
losses plug into timm's own distillation task (timm.task)."""
import pandas as pd
import pytest
import torch

from kd import objectives
from kd.losses import dkd_loss, kd_loss


def test_distil_a_timm_model_on_your_own_dataset():
    from examples import distill_your_dataset
    result = distill_your_dataset.main(["--epochs", "2", "--train-images", "1000"])
    final = result["final"]
    print(f"example: student top-1 {final['test_top1']:.2f}, agreement {final['test_agreement']:.2f}")
    assert final["test_top1"] > 12 and 0 <= final["test_agreement"] <= 100  # chance is 10
    assert result["best_state"].keys() == result["student"].state_dict().keys()
    assert [r["epoch"] for r in result["history"]] == [1, 2] and result["samples"] == 2000


def test_a_new_loss_in_twenty_lines_runs_through_the_cli(tmp_path):
    from examples import new_loss
    try:
        assert new_loss.main(["distill", "--student", "resnet8", "--width", "0.5", "--teacher", "resnet8",
                              "--teacher-width", "0.5", "--teacher-epochs", "1", "--teacher-subset-fraction", "0.01",
                              "--loss", "mse_logits", "--epochs", "1", "--subset-fraction", "0.01", "--out",
                              str(tmp_path), "--device", "cpu"]) == 0
    finally:
        objectives.LOSSES.pop("mse_logits")  # registered by the example's import
    row = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert row.loss == "mse_logits" and row["loss_options.kd_weight"] == 1.0 and row.final_test_top1 > 0
    history = pd.read_csv(tmp_path / "histories" / f"{row.run_id}.csv")
    assert history.train_kd.iloc[0] > 0  # the new term was trained on


def test_our_losses_plug_into_timms_distillation_task():
    """timm.task.LogitDistillationTask computes T^2 KL(p_t || p_s) batch-mean, exactly our kd_loss; a subclass
    whose forward calls another of our losses (here DKD) trains like it."""
    task_module = pytest.importorskip("timm.task")
    import timm

    import kd  # noqa: F401
    torch.manual_seed(0)
    student, teacher = timm.create_model("resnet8", num_classes=10), timm.create_model("resnet14", num_classes=10)
    task = task_module.LogitDistillationTask(student, teacher.eval(), criterion=torch.nn.CrossEntropyLoss(),
                                             task_loss_weight=0.1, distill_loss_weight=0.9, temperature=4.0,
                                             verbose=False)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    out = task(x, y)
    with torch.no_grad():
        t = teacher(x)
    assert out["kd_loss"].item() == pytest.approx(kd_loss(out["output"], t, 4.0).item(), rel=1e-5)

    class DKDTask(task_module.LogitDistillationTask):
        def forward(self, input, target):
            logits = self.trainable_module(input)
            with torch.no_grad():
                teacher_logits = self.teacher(input, return_features=False)
            distill = dkd_loss(logits, teacher_logits, target, alpha=1.0, beta=8.0, temperature=4.0)
            return {"loss": self.criterion(logits, target) + distill, "output": logits, "kd_loss": distill}
    dkd = DKDTask(student, teacher.eval(), criterion=torch.nn.CrossEntropyLoss(), verbose=False)
    dkd(x, y)["loss"].backward()
    assert student.get_classifier().weight.grad.abs().sum() > 0
