import pytest

from weightport.errors import AmbiguousMappingError
from weightport.layout.match import match_keys

NET = ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv.weight", "fc.weight", "fc.bias"]


def pairs(matches):
    return {m.source_key: m.target_key for m in matches}


def test_exact_names_match_themselves():
    out = match_keys(NET, NET)
    assert pairs(out) == {k: k for k in NET}
    assert {m.how for m in out} == {"exact"}


def test_checkpoint_of_the_inner_network_lands_under_the_attribute():
    out = match_keys(NET, ["backbone." + k for k in NET] + ["head.weight"])
    assert pairs(out) == {k: "backbone." + k for k in NET}
    assert out[0].add == "backbone." and out[0].strip == ""


def test_lightning_attribute_prefix_is_swapped_for_another():
    out = match_keys(["net." + k for k in NET], ["backbone." + k for k in NET])
    assert pairs(out) == {"net." + k: "backbone." + k for k in NET}
    assert "prefix 'net.'->'backbone.'" == out[0].detail


def test_into_forces_the_target_submodule():
    target = ["a." + k for k in NET] + ["b." + k for k in NET]
    assert pairs(match_keys(NET, target, into="b")) == {k: "b." + k for k in NET}


def test_two_equally_good_places_is_ambiguous():
    target = ["a." + k for k in NET] + ["b." + k for k in NET]
    with pytest.raises(AmbiguousMappingError, match="into="):
        match_keys(NET, target)


def test_unmatched_keys_are_left_alone():
    out = match_keys(NET + ["extra.weight"], NET)
    assert "extra.weight" not in pairs(out)


def test_five_thousand_keys_all_match_under_a_wrapper_prefix():
    # How long this takes is measured by the planning benchmark, not asserted here.
    source = [f"blocks.{i}.layer{j}.weight" for i in range(1000) for j in range(5)]
    target = ["model." + k for k in source]
    assert len(match_keys(["module." + k for k in source], target)) == 5000


def test_a_foreign_naming_is_left_to_structural_alignment_not_guessed():
    # Another library's names: a few suffixes coincide (weight/bias of some norm layers) but no
    # placement explains most of the checkpoint, so nothing is matched by prefix and nothing raises.
    source = ["_conv_stem.weight", "_bn0.weight", "_bn0.bias", "_blocks.0._bn1.weight", "_blocks.0._bn1.bias",
              "_fc.weight", "_fc.bias"]
    target = ["conv_stem.weight", "bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias", "blocks.0.0.conv.weight",
              "blocks.0.0.bn1.weight", "blocks.0.0.bn1.bias", "classifier.weight", "classifier.bias"]
    assert match_keys(source, target) == []


def test_leftovers_that_fit_two_places_equally_are_not_placed_by_the_length_of_a_name():
    # After the main placement, `a.*` and `b.*` are left, and `plus.*`/`minus.*` fit either of them
    # equally: a shorter prefix is no reason to pair `a` with `plus`. They stay unmatched (structural
    # alignment then proves a pairing or refuses).
    body = ["stem.weight", "stem.bias", "body.weight", "body.bias"]
    leaf = ["conv.weight", "conv.bias"]
    source = body + ["a." + k for k in leaf] + ["b." + k for k in leaf]
    target = body + ["plus." + k for k in leaf] + ["minus." + k for k in leaf]
    assert pairs(match_keys(source, target)) == {k: k for k in body}


def test_a_checkpoint_that_fits_two_places_of_different_name_lengths_is_ambiguous():
    target = ["net." + k for k in NET] + ["net_ema." + k for k in NET]
    with pytest.raises(AmbiguousMappingError, match="into="):
        match_keys(NET, target)
    assert pairs(match_keys(NET, target, into="net_ema")) == {k: "net_ema." + k for k in NET}


def test_two_checkpoint_parts_that_fit_one_place_are_ambiguous_and_exclude_settles_it():
    source = ["model." + k for k in NET] + ["ema." + k for k in NET]
    target = ["backbone." + k for k in NET]
    with pytest.raises(AmbiguousMappingError, match="exclude="):
        match_keys(source, target)
    assert pairs(match_keys(["model." + k for k in NET], target)) == {"model." + k: "backbone." + k for k in NET}


def test_two_spellings_of_one_placement_are_not_rivals():
    source = ["model.net." + k for k in NET]
    target = ["net." + k for k in NET]
    out = match_keys(source, target)
    assert pairs(out) == {"model.net." + k: "net." + k for k in NET}


def _random_keys(rng, n):
    parts = ["a", "b", "net", "model", "0", "1", "w", "x"]
    return list(dict.fromkeys(".".join(rng.choice(parts) for _ in range(rng.randint(1, 5))) for _ in range(n)))


def test_a_whole_placement_is_found_as_counting_every_pair_finds_it():
    # The shortcut for a checkpoint that one pair places whole must give what counting every pair
    # gives: the same pair, the same count and the same rivals (or the same refusal), on any keys.
    import random

    from weightport.layout.match import _best_pair, _counted_pair, _whole_placements

    rng = random.Random(1234)
    whole = rivalled = 0
    for _ in range(3000):
        source = _random_keys(rng, rng.randint(1, 8))
        prefix = rng.choice(["", "m.", "a.b.", "net.0.1.", "x.a.b.c."])
        strip = rng.choice(["", "a.", "net."])
        keep = rng.choice([1.0, 0.95])
        target = [prefix + k.removeprefix(strip) for k in source if rng.random() < keep]
        if rng.random() < 0.3:  # a second place it fits as well: a rival, or the same placement spelled twice
            second = rng.choice(["b.", "m.0.", "a.b.c.d."])
            target += [second + k for k in source]
        target = list(dict.fromkeys(target + _random_keys(rng, rng.randint(0, 4))))  # unique, as a state dict's
        rng.shuffle(target)
        into = rng.choice([None, None, None, "m", "a.b", ""])
        best = _best_pair(source, target, into)
        assert best == _counted_pair(source, target, into), (source, target, into)
        if _whole_placements(source, target, into):
            whole += 1
            rivalled += bool(best and best[2])
    # the shortcut was taken, with and without rivals, often enough for the comparison to mean something
    assert whole > 300 and rivalled > 50
