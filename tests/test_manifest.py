"""One dataset-folder contract: generated, mixture and selected folders share one versioned
manifest that every command reads (``divplugin inspect`` in-process through typer's runner),
and folders written by earlier versions still read."""

import json

import pytest

from divplugin.data.manifest import FORMAT_VERSION, load_manifest, upgrade
from divplugin.data.rows import load_rows
from divplugin.data.writer import write_dataset
from divplugin.diversity.select import SelectSettings
from divplugin.diversity.subset import select_dataset
from divplugin.generators import create
from divplugin.generators.settings import resolve_generator
from divplugin.mixtures import mix
from divplugin.mixtures.spec import load_mixture_dict

SMALL = {"num_examples": 400, "num_rules": 40, "test_rules": 10, "test_examples": 50, "seen_test_examples": 20}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    name, cfg = resolve_generator(None, "cpu-small", [("settings", SMALL)])
    write_dataset(create(name, cfg), root / "generated", workers=1)
    m = load_mixture_dict(
        {
            "name": "m",
            "decontaminate": None,
            "report": {"embeddings": False},
            "sources": [
                {
                    "name": "rewrite",
                    "generator": {"preset": "cpu-small", "settings": SMALL},
                    "adapter": "divplugin",
                    "count": 300,
                }
            ],
        },
        "m",
    )
    mix(m, root / "mixture", report=False)
    settings = SelectSettings(method="kcenter", embedder="chars")
    for kind in ("generated", "mixture"):
        select_dataset(str(root / kind), root / f"selected-{kind}", 100, settings, fields=["instruction", "input"])
    return root


@pytest.fixture
def inspect(cli):
    def run(folder):
        result = cli("inspect", folder)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_every_kind_has_one_versioned_manifest(folders):
    kinds = {}
    for name in ("generated", "mixture", "selected-generated", "selected-mixture"):
        raw = json.loads((folders / name / "manifest.json").read_text())
        assert raw["format_version"] == FORMAT_VERSION and upgrade(raw) == raw  # today's form needs no upgrade
        assert raw["splits"]["train"]["files"]["jsonl"]["path"] == "train.jsonl"
        kinds[name] = raw["kind"]
    assert kinds == {
        "generated": "generated",
        "mixture": "mixture",
        "selected-generated": "selected",
        "selected-mixture": "selected",
    }
    selected = load_manifest(folders / "selected-generated")
    assert selected["splits"]["train"]["examples"] == 100 and selected["splits"]["test"]["examples"] == 50
    assert (folders / "selected-generated" / "test.jsonl").read_bytes() == (
        folders / "generated" / "test.jsonl"
    ).read_bytes()
    assert selected["config"] == load_manifest(folders / "generated")["config"]  # its prompt template, for the tasks


def test_inspect_reads_a_generated_folder(folders, inspect):
    out = inspect(folders / "generated")
    assert "markov_rewrite (seed" in out and "test_seen" in out and "400" in out and "instructions" in out


def test_inspect_reads_a_mixture_folder(folders, inspect):
    out = inspect(folders / "mixture")
    assert "mixture m (seed" in out and "rewrite" in out and "300" in out and "exact dup" in out


def test_inspect_reads_a_selected_folder(folders, inspect):
    out = inspect(folders / "selected-mixture")
    assert "100 of 300 rows, by kcenter" in out and "Vendi" in out and "selected" in out and "random" in out
    assert "splits" in inspect(folders / "selected-generated")


def test_folders_written_before_the_version_read_as_today(folders, tmp_path, inspect):
    """A mixture folder from before version 2 has no format_version and one ``files.train``
    entry; generated and selected folders from version 1 have no ``kind``."""
    import shutil

    old_mix = tmp_path / "old-mixture"
    shutil.copytree(folders / "mixture", old_mix)
    m = json.loads((old_mix / "manifest.json").read_text())
    train = m["splits"]["train"]["files"]["jsonl"]
    for key in ("format_version", "kind", "splits"):
        del m[key]
    (old_mix / "manifest.json").write_text(json.dumps({**m, "files": {"train": train}}))
    assert load_manifest(old_mix)["splits"]["train"] == {"examples": 300, "files": {"jsonl": train}}
    assert "mixture m (seed" in inspect(old_mix)
    rows, kind = load_rows(str(old_mix))
    assert len(rows) == 300 and kind == "mixture folder (train)"

    old_gen = tmp_path / "old-generated"
    shutil.copytree(folders / "generated", old_gen)
    g = json.loads((old_gen / "manifest.json").read_text())
    del g["kind"]
    (old_gen / "manifest.json").write_text(json.dumps({**g, "format_version": 1}))
    assert load_manifest(old_gen)["kind"] == "generated" and "markov_rewrite (seed" in inspect(old_gen)
    selected = select_dataset(
        str(old_gen), tmp_path / "sel", 50, SelectSettings(method="random"), fields=["instruction"]
    )
    assert selected["kind"] == "selected" and selected["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize(
    "manifest, message",
    [
        ({"format_version": 9, "kind": "generated", "splits": {}}, "unsupported manifest format_version 9"),
        ({"format_version": 2, "kind": "other", "splits": {}}, "kind 'other'"),
        ({"format_version": 2, "kind": "generated"}, "with splits"),
        ([1, 2], "a manifest is a JSON object"),
    ],
)
def test_a_bad_manifest_is_named(tmp_path, manifest, message, cli):
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        load_manifest(tmp_path)
    result = cli("inspect", tmp_path)
    assert result.exit_code != 0 and message in result.output
