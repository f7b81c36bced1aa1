"""The README is read in two minutes and its example runs: under 200 lines, and its Python block (the
library's losses on timm models) executes as written."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_readme_is_short_and_its_example_runs():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) < 200
    block, = re.findall(r"```python\n(.+?)```", text, re.S)
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["loss"].item() > 0 and set(scope["methods"]) == {"kd", "dkd", "dist"}
    assert all(v.isfinite() for v in scope["methods"].values())
    for link in re.findall(r"\]\(((?:docs|results)/[^)#]+)\)", text):  # every page it points to exists
        assert (REPO / link).exists(), link
