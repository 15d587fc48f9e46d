"""The names from before tensor adapters were called fitters still work for one release, and warn."""

import importlib
import sys

import pytest

import weightport
from weightport.layout.fit import base
from weightport.loading.options import LoadOptions


def test_old_load_option_names_warn_and_mean_the_new_ones():
    with pytest.warns(DeprecationWarning) as caught:
        opts = LoadOptions.build(adapters={"channels": False}, adapter_options={"grid": (7, 7)})
    assert {str(w.message).split(";")[0] for w in caught} == {
        "the load option 'adapters' is now 'fitters'", "the load option 'adapter_options' is now 'fitter_options'"}
    assert opts.fitters == {"channels": False} and opts.fitter_options == {"grid": (7, 7)}
    with pytest.warns(DeprecationWarning):
        assert opts.adapters == {"channels": False}


def test_old_and_new_option_names_together_must_agree():
    with pytest.warns(DeprecationWarning), pytest.raises(weightport.errors.UsageError, match="pass only fitters"):
        LoadOptions.build(adapters={"channels": False}, fitters={"channels": True})


def test_old_registry_names_warn_and_are_the_new_functions():
    with pytest.warns(DeprecationWarning, match="register_tensor_adapter is now register_fitter"):
        assert base.register_tensor_adapter is base.register_fitter
    with pytest.warns(DeprecationWarning):
        assert [f.name for f in base.tensor_adapters()] == [f.name for f in base.fitters()]


def test_old_package_path_warns_on_import():
    sys.modules.pop("weightport.layout.adapt", None)
    sys.modules.pop("weightport.layout.adapt.base", None)
    with pytest.warns(DeprecationWarning, match="weightport.layout.fit"):
        old = importlib.import_module("weightport.layout.adapt.base")
    with pytest.warns(DeprecationWarning):
        assert old.AdaptContext is base.FitContext
