"""The one KEY=VALUE parser: YAML values, dotted keys nested, commas inside brackets kept, one-line errors that
name the bad word and the expected form; the recipe overrides, ``spatio inflate`` and ``viz`` model specs use it."""

import pytest

from spatiotemporal.utils.config import ConfigError, parse_overrides
from spatiotemporal.utils.errors import UserInputError
from spatiotemporal.utils.keyvalue import nest_keys, parse_key_values, split_top_level
from spatiotemporal.viz import parse_model_spec


def test_values_are_yaml_and_order_is_kept():
    pairs = parse_key_values(["optim.lr=0.001", "img_size=[32, 32, 32]", "mixer=joint", "init_values=null",
                              "drop=", "name=a=b"])
    assert pairs == [("optim.lr", 0.001), ("img_size", [32, 32, 32]), ("mixer", "joint"), ("init_values", None),
                     ("drop", None), ("name", "a=b")]


def test_nesting_and_top_level_split():
    assert nest_keys([("a", 1), ("b.c", "x"), ("b.d.e", 2)]) == {"a": 1, "b": {"c": "x", "d": {"e": 2}}}
    assert split_top_level("img_size=[16,16,16], mixer_kwargs={a: 1, b: 2},depth=2,") == [
        "img_size=[16,16,16]", "mixer_kwargs={a: 1, b: 2}", "depth=2"]


@pytest.mark.parametrize(("word", "expected"), [
    ("train.epochs", "command line: malformed override 'train.epochs': expected key=value, e.g. optim.lr=0.01"),
    ("=3", "command line: malformed override '=3': empty key, expected key=value, e.g. optim.lr=0.01"),
    ("a..b=3", "command line: malformed override 'a..b=3': empty key, expected key=value, e.g. optim.lr=0.01"),
    ("a=[1, 2", "command line: override 'a=[1, 2': value is not valid YAML ("),
])
def test_malformed_words_are_one_line_naming_the_word(word, expected):
    with pytest.raises(UserInputError) as e:
        parse_key_values([word])
    assert str(e.value).startswith(expected) and "\n" not in str(e.value)
    with pytest.raises(ConfigError) as e:  # the recipe flavour: the config loader's error type
        parse_overrides([word])
    assert str(e.value).startswith(expected) and "\n" not in str(e.value)


def test_model_spec_uses_the_same_parser():
    assert parse_model_spec("timesformer_tiny:mixer=xca,mixer_kwargs.ndim=2,img_size=[8,8]") == (
        "timesformer_tiny", {"mixer": "xca", "mixer_kwargs": {"ndim": 2}, "img_size": [8, 8]})
    with pytest.raises(UserInputError) as e:
        parse_model_spec("timesformer_tiny:attention")
    assert str(e.value) == ("model spec 'timesformer_tiny:attention': malformed override 'attention': expected "
                            "key=value, e.g. mixer=joint")
