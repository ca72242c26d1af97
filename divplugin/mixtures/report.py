"""What is in a mixture: counts, tokens and lengths per source, what hygiene removed, and
semantic diversity (sentence embeddings from a model that a package ships, clustered)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from divplugin.diversity.scores import DiversityReport, score_texts, scores_table
from divplugin.mixtures.budget import token_counter


def _lengths(values: list[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0}
    a = np.asarray(values)
    return {
        "mean": round(float(a.mean()), 1),
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "max": int(a.max()),
    }


def diversity(m, rows: list[dict[str, Any]]) -> DiversityReport | None:
    """The mixture's diversity scores (divplugin.diversity.scores), overall and per source."""
    if not rows:
        return None
    texts = [(r["instruction"] + "\n" + r["input"])[:2000] for r in rows]
    return score_texts(
        texts,
        [r["metadata"]["source"] for r in rows],
        sample=m.report.sample,
        seed=m.seed,
        embedder="minilm" if m.report.embeddings else None,
        clusters=m.report.clusters,
    )


def diversity_table(div: DiversityReport, group: str) -> str:
    """Markdown: the diversity scores, overall and per group, with how they were computed."""
    emb = div.points is not None
    head = f"Diversity of {div.sample:,} rows (of {div.total_rows:,})"
    if emb:
        head += (
            f", embedded with {div.embedder}; {div.clusters} k-means clusters, normalised entropy "
            f"{div.cluster_entropy:.3f}"
        )
    head += (
        ". Vendi: effective number of distinct rows; compression ratio: lower is more diverse; "
        "n-gram diversity (n = 1-4): higher is more diverse."
    )
    return "\n".join([head, "", scores_table(div, group).markdown()])


def _plot(m, figures: dict[str, Any], lengths: dict[str, list[int]], div: DiversityReport | None, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    embedded = div is not None and div.points is not None
    panels = 3 if embedded else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), dpi=110)
    names = [s["name"] for s in figures["sources"]]
    kept = [s["kept"] for s in figures["sources"]]
    removed = [sum(s["removed"].values()) for s in figures["sources"]]
    axes[0].bar(names, kept, label="in the mixture")
    axes[0].bar(names, removed, bottom=kept, label="removed (dedup, leaks)", alpha=0.6)
    axes[0].set_title("examples per source")
    axes[0].legend(fontsize=8)
    axes[0].tick_params(axis="x", rotation=30)
    for name, ls in lengths.items():
        if ls:
            axes[1].hist(ls, bins=40, alpha=0.5, label=name)
    axes[1].set_xscale("symlog")
    axes[1].set_title(f"length per row ({figures['token_unit']})")
    axes[1].legend(fontsize=8)
    if embedded:
        assert div is not None and div.points is not None and div.point_groups is not None
        v = div.points - div.points.mean(0)
        _, _, vt = np.linalg.svd(v, full_matrices=False)
        xy = v @ vt[:2].T
        groups = np.asarray(div.point_groups)
        for name in dict.fromkeys(div.point_groups):
            mask = groups == name
            axes[2].scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.5, label=name)
        axes[2].set_title(f"embeddings (PCA), Vendi {div.overall.vendi:.1f}", fontsize=9)
        axes[2].legend(fontsize=8, markerscale=3)
    fig.suptitle(m.name)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(m, built, folder: Path) -> dict[str, Any]:
    """``report.json``, ``report.md`` and ``report.png`` in ``folder``; returns the figures."""
    count = token_counter(m.tokenizer)
    unit = "tokens" if m.tokenizer else "words"
    by_source: dict[str, list[dict]] = {s.name: [] for s in built.stats}
    for r in built.rows:
        by_source[r["metadata"]["source"]].append(r)
    lengths = {
        name: count([r["instruction"] + "\n" + r["input"] + "\n" + r["output"] for r in rows]) if rows else []
        for name, rows in by_source.items()
    }
    sources = []
    for s in built.stats:
        ls = lengths[s.name]
        sources.append(
            {
                "name": s.name,
                "available": s.available,
                "target": s.target,
                "examined": s.examined,
                "kept": s.kept,
                "repeated": s.repeated,
                "removed": s.removed,
                "leaks": s.leaks,
                **({"selected": s.selected} if s.selected else {}),
                "tokens": int(sum(ls)),
                "length": _lengths(ls),
            }
        )
    figures: dict[str, Any] = {
        "examples": len(built.rows),
        "token_unit": unit,
        "tokens": int(sum(map(sum, lengths.values()))),
        "sources": sources,
    }
    div = diversity(m, built.rows)
    if div:
        figures["diversity"] = div.to_json()
    plotted = _plot(m, figures, lengths, div, folder / "report.png")
    (folder / "report.json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = [
        f"# Mixture {m.name}",
        "",
        f"{len(built.rows):,} examples, {figures['tokens']:,} {unit}, seed {m.seed}, budget by {m.budget}.",
        "",
        f"| source | in mixture | share | {unit} | mean length | p95 | examined | exact dup | near dup | benchmark leaks | repeats |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sources:
        r = s["removed"]
        share = s["kept"] / max(1, len(built.rows))
        lines.append(
            f"| {s['name']} | {s['kept']:,} | {share:.1%} | {s['tokens']:,} | {s['length']['mean']} | "
            f"{s['length']['p95']:.0f} | {s['examined']:,} | {r['exact_within'] + r['exact_across']:,} | "
            f"{r['near_within'] + r['near_across']:,} | {r['contaminated']:,} | {s['repeated']:,} |"
        )
    chosen = [s for s in sources if s.get("selected")]
    if chosen:
        lines += [
            "",
            "Rows chosen for diversity (`select`), against a random draw of as many of the same clean "
            "rows (what the plain walk takes):",
            "",
            "| source | chosen by | from | Vendi random / chosen | compression ratio random / chosen | "
            "n-gram diversity random / chosen |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for s in chosen:
            sel = s["selected"]
            r, c = sel["scores"]["random"], sel["scores"]["chosen"]
            vendi = f"{r['vendi']:.2f} / {c['vendi']:.2f}" if r.get("vendi") is not None else "-"
            lines.append(
                f"| {s['name']} | {sel['method']} ({sel['embedder']}) | {sel['from']:,} | {vendi} | "
                f"{r['compression_ratio']:.3f} / {c['compression_ratio']:.3f} | "
                f"{r['ngram_diversity']:.3f} / {c['ngram_diversity']:.3f} |"
            )
    if div:
        lines += ["", diversity_table(div, "source")]
    leaks = {k: v for s in sources for k, v in s["leaks"].items()}
    if leaks:
        lines += ["", "Benchmark leaks removed: " + ", ".join(f"{k} ({v})" for k, v in sorted(leaks.items())[:30])]
    if plotted:
        lines += ["", "![report](report.png)"]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    return figures
