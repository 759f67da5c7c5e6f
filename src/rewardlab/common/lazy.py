"""torch imported on first use, so that reading and validating a config (whose classes live beside
the stages that train models) does not load it: ``from rewardlab.common.lazy import F, no_grad,
torch``."""

from __future__ import annotations

import functools
import importlib
import types
from collections.abc import Callable


class LazyModule(types.ModuleType):
    """A stand-in for the module `name`: the first attribute read imports it and copies its
    namespace in, so later reads cost what a real module's do."""

    def __getattr__(self, attr: str):
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")


def no_grad(fn: Callable) -> Callable:
    """`fn` run under ``torch.no_grad()``, torch imported at the first call, not at decoration."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper
