"""The documentation says what the code does: the configuration reference is generated from the
declarations, the README is a front door whose example cycle runs."""
import os
import re

from bcp_hpc.experiments.description import configuration_reference

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_configuration_reference_is_current():
    """docs/configuration.md == `python -m bcp_hpc.experiments.description` (regenerate it when a key changes)."""
    with open(os.path.join(REPO, "docs", "configuration.md")) as fh:
        assert fh.read() == configuration_reference()


def test_readme_is_a_front_door():
    text = open(os.path.join(REPO, "README.md")).read()
    assert len(text.splitlines()) <= 150
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert first == ["bash scripts/run.sh", "bash scripts/test.sh"]
    for doc in re.findall(r"docs/[a-z_]+\.md", text):
        assert os.path.exists(os.path.join(REPO, doc)), doc
    assert not re.search(r"\bsessions? [0-9]|\bthis session\b", text, re.I)
    # a picture the package made, committed under docs/
    pictures = re.findall(r"!\[[^]]*\]\((docs/[^)]+\.png)\)", text)
    assert pictures and all(os.path.getsize(os.path.join(REPO, p)) > 10000 for p in pictures)


def readme_example() -> str:
    text = open(os.path.join(REPO, "README.md")).read()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)
