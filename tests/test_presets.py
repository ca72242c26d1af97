"""Built-in presets validate and generate."""

import pytest

from divplugin.errors import ConfigError
from divplugin.generators import create, make_config
from divplugin.generators.presets import load_preset, preset_names, preset_summary

SMALL = {"num_examples": 300, "test_examples": 50, "seen_test_examples": 20}


@pytest.mark.parametrize("name", preset_names())
def test_preset_validates_and_generates(name):
    settings = load_preset(name)
    generator = settings.pop("generator")
    make_config(generator, settings)  # the preset as shipped is valid
    small = {**settings, **SMALL}
    small["num_programs" if generator == "markov_program" else "num_rules"] = 30
    small["test_programs" if generator == "markov_program" else "test_rules"] = 10
    gen = create(generator, **small)
    rows = list(gen.iter_split("train")) + list(gen.iter_split("test"))
    assert len(rows) == 350
    assert all(gen.score_answer(r["output"], r) == 1.0 for r in rows)
    assert preset_summary(name).endswith(".")


def test_paper_presets_match_the_paper():
    main = load_preset("paper-main")
    assert (main["num_rules"], main["num_examples"], main["input_len"], main["pattern_len"]) == (1000, 10**6, 50, 20)
    fam = load_preset("paper-families")
    assert (fam["input_len"], fam["pattern_len"], fam["test_k_range"]) == (500, 60, [1, 2])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="did you mean 'paper-main'"):
        load_preset("paper-mian")


def test_generator_docs_cover_every_setting():
    from conftest import ROOT

    from divplugin.generators import generator_names, get_generator_class

    text = (ROOT / "docs" / "generators.md").read_text()
    for name in generator_names():
        for field in get_generator_class(name).config_class.__pydantic_fields__:
            assert f"| `{field}` |" in text, f"docs/generators.md lacks {name}.{field}"
