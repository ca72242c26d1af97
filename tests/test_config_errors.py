"""Impossible or contradictory configs fail before any work, naming the field."""

import pytest

from divplugin.errors import ConfigError
from divplugin.generators import create, make_config

BAD_REWRITE = [
    ({"num_rulez": 3}, "num_rulez", "did you mean 'num_rules'"),
    ({"alpha": 0}, "alpha", r"\(0.0, inf\]"),
    ({"alpha": -1.5}, "alpha", "must be in"),
    ({"noop_fraction": 1.5}, "noop_fraction", r"\[0.0, 1.0\]"),
    ({"noop_fraction": -0.1}, "noop_fraction", "must be in"),
    ({"holdout_share": 1.0}, "holdout_share", "< 1"),
    ({"pattern_len": 60, "input_len": 50}, "pattern_len", "do not fit in inputs of length 50"),
    ({"occurrences": 3, "pattern_len": 20, "input_len": 50}, "occurrences", "3 copies"),
    ({"occurrences": [0, 1]}, "occurrences", ">= 1"),
    ({"alphabet": "ab", "pattern_len": 1, "num_rules": 100}, "num_rules", "allow only about"),
    ({"alphabet": "abc", "pattern_len": 1, "test_rules": 100, "num_rules": 1}, "test_rules", "allow only about"),
    ({"alphabet": "a"}, "alphabet", "at least 2"),
    ({"alphabet": "aab"}, "alphabet", "no repeats"),
    ({"alphabet": "ab c"}, "alphabet", "non-space"),
    ({"families": ["spiral"]}, "families", "unconstrained"),
    ({"families": []}, "families", "non-empty"),
    ({"k_range": [5, 3]}, "k_range", "max < min"),
    ({"test_k_range": 0}, "test_k_range", ">= 1"),
    ({"input_len": [60, 40]}, "input_len", "max < min"),
    ({"num_rules": 2000, "num_examples": 1000}, "num_rules", "exceeds num_examples"),
    ({"num_examples": -1}, "num_examples", ">= 0"),
    ({"allocation": "lognormal"}, "allocation", "uniform"),
    ({"prompt_template": "{rule}: {input}"}, "prompt_template", "only the fields"),
    ({"prompt_template": "{instruction}"}, "prompt_template", "must use"),
    ({"num_rules": "many"}, "num_rules", "valid integer"),
    ({"pattern_len": [1, 2, 3]}, "pattern_len", "at most 2 items"),
]


@pytest.mark.parametrize(
    "settings, field, message", BAD_REWRITE, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_REWRITE)]
)
def test_bad_rewrite_config_names_field(settings, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        make_config("markov_rewrite", settings)
    assert field in str(err.value)
    assert err.value.field.endswith(field)


BAD_PROGRAM = [
    ({"alphabet": "ab", "markers": "b"}, "markers", "distinct"),
    ({"rules_per_program": 0}, "rules_per_program", ">= 1"),
    ({"steps": [5, 2]}, "steps", "max < min"),
    ({"terminating_share": 2}, "terminating_share", "must be in"),
    ({"max_string_len": 5, "input_len": 10}, "max_string_len", "longest input"),
    ({"num_programs": 0}, "num_programs", ">= 1"),
    ({"min_probe_success": 0}, "min_probe_success", "must be in"),
]


@pytest.mark.parametrize("settings, field, message", BAD_PROGRAM, ids=[b[1] for b in BAD_PROGRAM])
def test_bad_program_config_names_field(settings, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        make_config("markov_program", settings)
    assert field in str(err.value)


def test_unknown_generator_suggests():
    with pytest.raises(ConfigError, match="did you mean 'markov_rewrite'"):
        create("markov_rewite")


def test_config_round_trips_through_dict():
    cfg = make_config("markov_rewrite", {"pattern_len": [2, 3], "num_rules": 10, "num_examples": 100})
    again = make_config("markov_rewrite", cfg.to_dict())
    assert again == cfg
