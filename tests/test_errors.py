import pickle

import pytest

from weightport import errors
from weightport.errors import WeightportError

ALL = [getattr(errors, n) for n in errors.__all__ if n != "WeightportError"]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_error_is_a_weightport_error_and_a_builtin(cls):
    assert issubclass(cls, WeightportError)
    generic = (Exception, BaseException, object)
    builtin_bases = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in generic]
    assert builtin_bases, f"{cls.__name__} inherits no specific built-in exception"


def test_message_and_hint_are_shown_and_survive_pickling():
    err = errors.SourceNotFoundError("checkpoint not found: /x.pt", hint="check the path")
    assert str(err) == "checkpoint not found: /x.pt\n  hint: check the path"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is errors.SourceNotFoundError and again.hint == "check the path"
    assert str(again) == str(err)


def test_shape_mismatch_names_both_shapes():
    err = errors.ShapeMismatchError([("a.w", "b.w", (3, 4), (5, 4))])
    assert "b.w <- a.w" in str(err) and "(3, 4)" in str(err) and "(5, 4)" in str(err)


def test_long_lists_in_messages_end_the_same_way_everywhere():
    from weightport.keys import fold_keys
    from weightport.text import listing

    assert listing(range(12), 10) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … and 2 more"
    assert listing(range(3), 10) == "0, 1, 2"
    assert fold_keys(["a.w", "b.x", "c.y", "d.z"], limit=2) == ["a.w", "b.x", "… and 2 more"]
    error = errors.ShapeMismatchError([(f"s{i}", f"t{i}", (1,), (2,)) for i in range(25)])
    assert str(error).splitlines()[1] == "  t0 <- s0: checkpoint (1,) vs model (2,)"
    assert "\n  … and 5 more" in str(error)
