"""What a dataset folder holds, as tables (``divplugin inspect``, and the summaries ``generate``,
``mix`` and ``select`` print): plain rows, drawn by the terminal (rich) or as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from divplugin.core.table import Table
from divplugin.data.writer import numeric_sort_key


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-" if value is None else str(value)


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def splits_table(manifest: dict[str, Any], title: str) -> Table:
    """Examples per split; for generated data also instructions, the no-op share and lengths."""
    generated = all("stats" in e for e in manifest["splits"].values())
    if not generated:
        return Table(
            title,
            ["split", "examples", "files"],
            [[s, _n(e.get("examples")), ", ".join(sorted(e.get("files", {})))] for s, e in manifest["splits"].items()],
        )
    table = Table(
        title,
        ["split", "examples", "instructions", "no-op", "input len", "output len"],
        caption="lengths: min/mean/max",
    )
    for split, entry in manifest["splits"].items():
        st = entry["stats"]
        noop = st.get("counts", {}).get("noop", {})
        share = f"{noop.get('True', 0) / max(st['examples'], 1):.3f}" if noop else "-"
        lens = [f"{st[k]['min']}/{st[k]['mean']:.1f}/{st[k]['max']}" for k in ("input_len", "output_len")]
        table.rows.append([split, _n(entry["examples"]), _n(entry.get("instructions")), share, *lens])
    return table


def metadata_table(manifest: dict[str, Any]) -> Table | None:
    """Examples per metadata value and split (generated data), or None."""
    splits = {s: e for s, e in manifest["splits"].items() if "stats" in e}
    fields = sorted({f for e in splits.values() for f in e["stats"].get("counts", {}) if f != "noop"})
    if not fields:
        return None
    table = Table("examples by metadata value", ["field", *splits])
    for f in fields:
        per = {s: e["stats"]["counts"].get(f, {}) for s, e in splits.items()}
        values = sorted({v for c in per.values() for v in c}, key=numeric_sort_key)
        if len(values) > 12:
            table.rows.append([f, *[f"{len(c)} distinct values" for c in per.values()]])
            continue
        table.rows += [[f"{f}={v}", *[_n(per[s].get(v, 0)) for s in per]] for v in values]
    return table


def sources_table(manifest: dict[str, Any], title: str) -> Table:
    """A mixture's rows per source and what its hygiene removed."""
    table = Table(title, ["source", "examples", "examined", "exact dup", "near dup", "leaks", "repeats"])
    for s in manifest["sources"]:
        r = s["removed"]
        table.rows.append(
            [
                s["name"],
                _n(s["kept"]),
                _n(s["examined"]),
                _n(r["exact_within"] + r["exact_across"]),
                _n(r["near_within"] + r["near_across"]),
                _n(r["contaminated"]),
                _n(s["repeated"]),
            ]
        )
    return table


def selection_table(sel: dict[str, Any], title: str) -> Table:
    """A selection's diversity scores: the pool, the chosen rows and a random subset as large."""
    table = Table(
        title,
        [
            "rows",
            "count",
            "Vendi",
            "compression ratio (lower: more diverse)",
            "n-gram diversity",
            "mean cosine distance",
        ],
    )
    for name in ("pool", "selected", "random"):
        s = sel["scores"][name]
        table.rows.append(
            [
                name,
                _n(s["size"]),
                _f(s.get("vendi"), 2),
                _f(s["compression_ratio"]),
                _f(s["ngram_diversity"]),
                _f(s.get("mean_cosine_distance")),
            ]
        )
    return table


def selection_title(sel: dict[str, Any]) -> str:
    return f"{sel['budget']:,} of {sel['after_dedup']:,} rows, by {sel['method']}"


def summary(manifest: dict[str, Any], folder: str | Path | None = None) -> list[Table]:
    """The tables that describe a dataset folder of any kind (an upgraded manifest)."""
    where = f" -> {folder}" if folder else ""
    kind = manifest["kind"]
    if kind == "mixture":
        return [
            sources_table(
                manifest,
                f"mixture {manifest['mixture']} (seed {manifest['seed']}, budget in "
                f"{manifest['budget']}): {_n(manifest['examples'])} examples{where}",
            )
        ]
    tables = []
    if kind == "selected":
        sel = manifest["selection"]
        tables.append(selection_table(sel, f"{selection_title(sel)} from {sel['source']}{where}"))
        title = "splits"
    else:
        title = f"{manifest['generator']} (seed {manifest['seed']}){where}"
    tables.append(splits_table(manifest, title))
    meta = metadata_table(manifest)
    return tables + ([meta] if meta else [])
