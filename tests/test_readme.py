"""The README's Quickstart is exactly two commands, and .ci/run runs the second one's install and tests."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quickstart_commands():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quickstart_has_two_commands_main_job_then_tests():
    first, second = quickstart_commands()
    assert "python -m bench.run --workload attention" in first and "pytest" not in first
    assert second.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    second = quickstart_commands()[1]
    install = re.search(r"(pip install [^&]+?) &&", second).group(1).strip()
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert install in ci and "python -m pytest" in ci and "exit 5" in ci
