"""Writing datasets: formats, manifests, atomicity."""

import hashlib
import json

import pyarrow.parquet as pq
import pytest

from divplugin.data.manifest import load_manifest, read_instructions
from divplugin.data.records import RECORD_FORMATS, encode_jsonl, render_prompt
from divplugin.data.writer import write_dataset
from divplugin.errors import ConfigError, OutputExistsError
from divplugin.generators import SPLITS, create


def to_record(row: dict, record_format: str, prompt_template: str) -> dict:
    """The reference rendering of a row in ``record_format`` that the fast encoder must match."""
    if record_format == "instruction":
        return row
    assert record_format in RECORD_FORMATS
    user = render_prompt(prompt_template, row["instruction"], row["input"])
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}],
        "metadata": row["metadata"],
    }


@pytest.fixture
def gen(small_rewrite):
    return create("markov_rewrite", **small_rewrite)


def test_write_all_formats_consistent(gen, tmp_path):
    out = tmp_path / "ds"
    manifest = write_dataset(gen, out, ["jsonl", "parquet", "hf"], workers=2)
    assert load_manifest(out) == json.loads((out / "manifest.json").read_text()) == manifest
    import datasets

    hf = datasets.load_from_disk(str(out / "hf"))
    for split in SPLITS:
        entry = manifest["splits"][split]
        path = out / entry["files"]["jsonl"]["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["files"]["jsonl"]["sha256"]
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert rows == list(gen.iter_split(split))
        assert pq.read_table(out / f"{split}.parquet").to_pylist() == rows
        assert hf[split].to_list() == rows
        stats = entry["stats"]
        assert stats["examples"] == len(rows) == entry["examples"]
        assert stats["counts"]["noop"].get("True", 0) == sum(r["metadata"]["noop"] for r in rows)
        assert stats["input_len"]["max"] == max(len(r["input"]) for r in rows)
        assert entry["instructions"] == len({r["metadata"]["rule_id"] for r in rows})
    insts = read_instructions(out)
    assert sum(i["examples"].get("train", 0) for i in insts) == gen.config.num_examples
    test_ids = {i["id"] for i in read_instructions(out, "test")}
    assert test_ids == {r["metadata"]["rule_id"] for r in gen.iter_split("test")}


def test_manifest_and_data_are_byte_identical_across_runs(gen, small_rewrite, tmp_path):
    write_dataset(gen, tmp_path / "a", workers=1)
    write_dataset(create("markov_rewrite", **small_rewrite), tmp_path / "b", workers=2)
    for name in ["manifest.json", "instructions.jsonl", *[f"{s}.jsonl" for s in SPLITS]]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


@pytest.mark.parametrize("fmt", ["instruction", "messages"])
def test_fast_encoder_equals_json_dumps(gen, fmt):
    cols = gen.chunk("train", 0)
    lines = encode_jsonl(cols, fmt, gen.config.prompt_template).decode().splitlines()
    for line, row in zip(lines, gen.iter_split("train")):
        assert line == json.dumps(to_record(row, fmt, gen.config.prompt_template), separators=(",", ":"))


def test_encoder_escapes_unusual_alphabets():
    g = create(
        "markov_rewrite",
        alphabet='"\\éλ{}',
        input_len=12,
        pattern_len=2,
        num_rules=5,
        num_examples=50,
        test_rules=5,
        test_examples=10,
        seen_test_examples=0,
        prompt_template="<{instruction}|{input}>",
    )
    for fmt in ("instruction", "messages"):
        lines = encode_jsonl(g.chunk("train", 0), fmt, g.config.prompt_template).decode().splitlines()
        assert [json.loads(x) for x in lines] == [
            to_record(r, fmt, g.config.prompt_template) for r in g.iter_split("train")
        ]


def test_messages_format(gen, tmp_path):
    write_dataset(gen, tmp_path / "m", record_format="messages")
    row = json.loads((tmp_path / "m" / "train.jsonl").read_text().splitlines()[0])
    ref = gen[0]
    assert row["messages"][0] == {"role": "user", "content": f"{ref['instruction']}\n{ref['input']}"}
    assert row["messages"][1] == {"role": "assistant", "content": ref["output"]}


def test_existing_output_is_kept_unless_overwrite(gen, tmp_path):
    out = tmp_path / "ds"
    write_dataset(gen, out)
    before = (out / "train.jsonl").read_bytes()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_dataset(gen, out)
    assert (out / "train.jsonl").read_bytes() == before
    write_dataset(gen, out, ["parquet"], overwrite=True)
    assert not (out / "train.jsonl").exists() and (out / "train.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_interrupted_run_leaves_nothing(gen, tmp_path):
    out = tmp_path / "ds"

    def boom(split, n):
        if split == "test":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(gen, out, progress=boom)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_old_dataset(gen, tmp_path):
    out = tmp_path / "ds"
    write_dataset(gen, out)
    before = sorted(p.name for p in out.iterdir())

    def boom(split, n):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_dataset(gen, out, overwrite=True, progress=boom)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_bad_output_options(gen, tmp_path):
    with pytest.raises(ConfigError, match="formats"):
        write_dataset(gen, tmp_path / "x", ["csv"])
    with pytest.raises(ConfigError, match="record_format"):
        write_dataset(gen, tmp_path / "x", record_format="sharegpt")
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputExistsError, match="not a folder"):
        write_dataset(gen, tmp_path / "file", overwrite=True)
    assert not (tmp_path / "x").exists()


def test_load_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a complete divplugin dataset"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_manifest(tmp_path)
