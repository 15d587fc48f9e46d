"""Deprecated: tensor adapters are now fitters, in :mod:`weightport.layout.fit` (this package goes in 0.3)."""

import warnings

warnings.warn("weightport.layout.adapt is now weightport.layout.fit (tensor adapters are called fitters); "
              "the old package goes in weightport 0.3", DeprecationWarning, stacklevel=2)
