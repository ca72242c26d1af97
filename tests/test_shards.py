"""Generated data written in shards (one per machine) and joined: byte for byte what one
machine writes, and every way shards can fail to make one set is named."""

import filecmp
import json
import os

import pytest

from divplugin.data.shards import SHARD_FILE, join_shards, parse_shard, shard_chunks, write_shard
from divplugin.data.writer import write_dataset
from divplugin.errors import ConfigError
from divplugin.generators import create

GENERATORS = {
    "markov_rewrite": {"num_rules": 60, "num_examples": 30000, "test_examples": 3000, "seen_test_examples": 700},
    "markov_program": {"num_examples": 9000, "test_examples": 2500, "seen_test_examples": 300},
}


def _same_folders(a, b) -> None:
    names = sorted(os.listdir(a))
    assert names == sorted(os.listdir(b))
    for name in names:
        assert filecmp.cmp(a / name, b / name, shallow=False), name


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_joined_shards_are_the_one_machine_folder(name, tmp_path):
    settings = GENERATORS[name]
    gen = create(name, **settings)
    assert gen.num_chunks("train") >= 3  # the shards split a split's chunks
    write_dataset(gen, tmp_path / "one", ["jsonl", "parquet"], workers=2)
    for k in range(3):  # each "machine" builds its own generator; workers differ too
        write_shard(create(name, **settings), tmp_path / f"part{k}", (k, 3), workers=1 + k % 2)
    manifest = join_shards(
        [tmp_path / "part2", tmp_path / "part0", tmp_path / "part1"], tmp_path / "joined", ["jsonl", "parquet"]
    )
    _same_folders(tmp_path / "one", tmp_path / "joined")
    assert manifest == json.loads((tmp_path / "one" / "manifest.json").read_text())


def test_more_shards_than_chunks_leaves_some_empty_and_still_joins(tmp_path):
    settings = {"num_rules": 20, "num_examples": 500, "test_examples": 100, "seen_test_examples": 100}
    gen = create("markov_rewrite", **settings)
    n = gen.num_chunks("train") + 2
    write_dataset(gen, tmp_path / "one", workers=1)
    for k in range(n):
        write_shard(create("markov_rewrite", **settings), tmp_path / f"p{k}", (k, n), workers=1)
    assert (tmp_path / "p0" / "train.jsonl").stat().st_size == 0
    join_shards([tmp_path / f"p{k}" for k in range(n)], tmp_path / "joined")
    _same_folders(tmp_path / "one", tmp_path / "joined")


def test_shard_chunks_cover_every_chunk_once():
    for chunks in (0, 1, 7, 100):
        for n in (1, 2, 3, 8):
            runs = [shard_chunks(chunks, k, n) for k in range(n)]
            assert [c for r in runs for c in r] == list(range(chunks))
            assert max(map(len, runs)) - min(map(len, runs)) <= 1


@pytest.mark.parametrize("text", ["2/2", "0/0", "-1/2", "1", "a/b", "1/2/3", ""])
def test_bad_shard_specs_are_named(text):
    with pytest.raises(ConfigError, match="shard"):
        parse_shard(text)
    assert parse_shard(" 1 / 4 ") == (1, 4)


@pytest.fixture
def parts(tmp_path):
    settings = GENERATORS["markov_rewrite"]
    for k in range(2):
        write_shard(create("markov_rewrite", **settings), tmp_path / f"p{k}", (k, 2), workers=1)
    return tmp_path


def test_shards_that_do_not_make_one_set_are_named(parts):
    t = parts
    cases = [
        ([t / "p0"], "missing \\[1\\]"),
        ([t / "p0", t / "p0", t / "p1"], "given twice \\[0\\]"),
        ([], "give the shard folders"),
        ([t / "nowhere", t / "p1"], "no shard.json"),
    ]
    write_shard(create("markov_rewrite", **{**GENERATORS["markov_rewrite"], "seed": 1}), t / "other", (1, 2), workers=1)
    cases.append(([t / "p0", t / "other"], "config_hash"))
    write_shard(create("markov_rewrite", **GENERATORS["markov_rewrite"]), t / "thirds", (1, 3), workers=1)
    cases.append(([t / "p0", t / "p1", t / "thirds"], "shards of \\[2, 3\\]"))
    for folders, named in cases:
        with pytest.raises(ConfigError, match=named):
            join_shards(folders, t / "out")
        assert not (t / "out").exists()


def test_a_damaged_shard_is_named_and_nothing_is_left(parts):
    path = parts / "p1" / "train.jsonl"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="p1: train.jsonl does not match its sha256"):
        join_shards([parts / "p0", parts / "p1"], parts / "out")
    assert not (parts / "out").exists() and not list(parts.glob(".out*"))
    (parts / "p0" / SHARD_FILE).write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        join_shards([parts / "p0", parts / "p1"], parts / "out")


def test_a_dataset_folder_is_not_a_shard(tmp_path):
    write_dataset(create("markov_rewrite", num_rules=10, num_examples=100), tmp_path / "data", workers=1)
    with pytest.raises(ConfigError, match="it is a dataset folder, not a shard"):
        join_shards([tmp_path / "data"], tmp_path / "out")


def test_cli_writes_shards_and_joins_them(cli, tmp_path):
    common = ["generate", "-p", "cpu-small", "--num-rules", "40", "--num-examples", "20000", "-w", "1"]
    for k in range(2):
        r = cli(*common, "--shard", f"{k}/2", "--out", str(tmp_path / f"p{k}"))
        assert r.exit_code == 0, r.output
        assert f"shard {k} of 2:" in r.output and "divplugin join" in r.output
    assert cli(*common, "--out", str(tmp_path / "one")).exit_code == 0
    r = cli("join", str(tmp_path / "p1"), str(tmp_path / "p0"), "--out", str(tmp_path / "joined"))
    assert r.exit_code == 0, r.output
    _same_folders(tmp_path / "one", tmp_path / "joined")
    r = cli("inspect", str(tmp_path / "p0"))
    assert r.exit_code != 0
    for args, named in (
        (["--shard", "3/2"], "0 <= K < N"),
        (["--shard", "0/2", "--format", "parquet"], "give --format to 'divplugin join'"),
    ):
        r = cli(*common, *args, "--out", str(tmp_path / "bad"))
        assert r.exit_code == 2 and named in r.output, r.output
    r = cli("join", str(tmp_path / "p0"), "--out", str(tmp_path / "bad"))
    assert r.exit_code == 2 and "missing [1]" in r.output
