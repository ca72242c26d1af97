"""The docs' figures against the committed results they name (docs/figures.py)."""

import importlib.util
import re
import shutil
import sys

import pytest
from conftest import ROOT


def figures_module():
    spec = importlib.util.spec_from_file_location("figures", ROOT / "docs" / "figures.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["figures"] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fig():
    return figures_module()


def test_every_sourced_figure_matches_its_results(fig):
    """Every figure that names its source equals what that source gives, written as the text
    writes it; every three-decimal figure in a paragraph that links a results page names one."""
    problems = fig.check()
    assert not problems, "\n".join(problems)


def test_the_docs_name_sources_in_tables_and_in_prose(fig):
    """Sources are not only in table rows: findings.md's bullets and README's prose carry them."""
    for doc in ("docs/findings.md", "README.md"):
        text = (ROOT / doc).read_text()
        found, _ = fig.figures(doc, text)
        lines = text.splitlines()
        prose = [f for f in found if not lines[f.line - 1].startswith("|")]
        table = [f for f in found if lines[f.line - 1].startswith("|")]
        assert len(prose) >= 10 and len(table) >= 10, doc


@pytest.mark.parametrize(
    "doc, kind",
    [
        ("docs/findings.md", "table"),
        ("docs/findings.md", "prose"),
        ("README.md", "table"),
        ("docs/mixtures.md", "range"),
    ],
)
def test_a_stale_figure_in_a_copy_of_a_doc_fails_the_check(fig, tmp_path, doc, kind):
    """The check can fail: one figure changed in a copy of a document (in a table row, in prose,
    or one end of a range) is named, and the unchanged copy passes."""
    copy = tmp_path / doc
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / doc, copy)
    assert fig.check((doc,), root=tmp_path) == []
    text = copy.read_text()
    found, _ = fig.figures(doc, text)
    lines = text.splitlines()
    if kind == "range":
        target = next(f for f in found if "-" in f.text and "." in f.text)
    else:
        target = next(f for f in found if lines[f.line - 1].startswith("|") == (kind == "table") and "." in f.text)
    digits = [i for i, ch in enumerate(target.text) if ch.isdigit()]
    i = digits[-1]
    stale = target.text[:i] + str((int(target.text[i]) + 1) % 10) + target.text[i + 1 :]
    copy.write_text(text[: target.start] + stale + text[target.end :])
    problems = fig.check((doc,), root=tmp_path)
    assert (
        len(problems) == 1 and f"{doc}:{target.line}: {stale!r} where its source gives {target.text!r}" in problems[0]
    )
    # and fix writes the figure back from its source
    assert fig.fix((doc,), root=tmp_path) == 1 and copy.read_text() == text


def test_a_figure_without_a_source_beside_a_linked_page_is_named(fig, tmp_path):
    (tmp_path / "doc.md").write_text(
        "The main job ([page](results/phase-transition-cpu-6-layers-amd/README.md)) reached 0.568<!--= "
        'r("phase-transition-cpu-6-layers-amd", "num_rules=400", "unseen") --> at 400 rules and 0.894 at 2,000.\n'
    )
    problems = fig.check(("doc.md",), root=tmp_path)
    assert problems == ["doc.md:1: 0.894 names no source (the paragraph links phase-transition-cpu-6-layers-amd)"]


def test_broken_sources_are_named(fig, tmp_path):
    (tmp_path / "doc.md").write_text(
        'a 0.5<!--= r("no-such-results", "x=1", "unseen") -->, b 0.5<!--= r("phase-transition-cpu-6-layers", "num_rules=7", '
        '"unseen") -->, c 0.5<!--= r("phase-transition-cpu-6-layers", "num_rules=400", "nonsense") -->, '
        'd 0.50-0.60<!--= r("phase-transition-cpu-6-layers", "num_rules=400", "unseen") -->, e <!--= 1 -->\n'
    )
    problems = fig.check(("doc.md",), root=tmp_path)
    assert len(problems) == 5
    assert "no results file docs/results/no-such-results/results.json" in problems[1]
    assert "no finished run matches 'num_rules=7'" in problems[2]
    assert "metric 'nonsense' names 0 of" in problems[3]
    assert "needs a (lo, hi) source" in problems[4]
    assert re.search(r"no figure right before the source", problems[0])


def test_render_writes_a_value_as_the_text_does(fig):
    assert fig.render(1672.6, "1,673") == "1,673" and fig.render(1672.6, "1673") == "1673"
    assert fig.render((0.468, 0.78), "0.47-0.78") == "0.47-0.78" and fig.render(0.0, "0.000") == "0.000"
    assert fig.render(79.11, "79") == "79" and fig.render(2.2321, "2.23") == "2.23"
