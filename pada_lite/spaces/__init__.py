"""Search spaces, and the one registry through which training builds a space's supernet and path sampler.

A space module (``pada_lite.spaces.<kind>``) provides:

- ``SPACE_CONFIG``: its supernet config dataclass. Spaces other than NB201 carry a field ``kind: str = "<kind>"``
  so that a saved config finds its class again; a config without ``kind`` is NB201 (the configs of round 1).
- ``build_supernet(config) -> nn.Module`` whose ``forward(x, arch)`` runs one path and whose
  ``choice_instances()`` lists, per decision and choice, the parameter lists of every instance of that choice
  (``[decisions][choices] -> list[list[Parameter]]``; PA's gradient table reads it).
- ``make_path_sampler(train_config, space_config, generator)``: the path sampler ``train_config.path_sampler`` names.
"""
from __future__ import annotations

import importlib
from types import ModuleType

# the re-exports keep one compact list
# isort: off
from .nb201 import (NB201_OPS, PARAMETRIC_OPS, EDGES, NUM_EDGES, ArchError, NB201Supernet, StandaloneNB201,
                    SupernetConfig, arch_to_product_index, arch_to_str, conv_only_archs, enumerate_archs,
                    product_index_to_arch, is_connected, str_to_arch)
# isort: on

SPACE_MODULES = {"nb201": "nb201", "darts": "darts", "mobilenet": "mobilenet"}  # kind -> module in this package


def space_kind(config) -> str:
    """The kind of a space config (``nb201`` when it has no ``kind`` field)."""
    return getattr(config, "kind", "nb201")


def space_module(kind: str) -> ModuleType:
    """The module that implements search space ``kind``."""
    if kind not in SPACE_MODULES:
        raise ArchError(f"unknown search space {kind!r}: choose one of {sorted(SPACE_MODULES)}")
    return importlib.import_module(f"{__name__}.{SPACE_MODULES[kind]}")


def space_config_class(values: dict) -> type:
    """The config class of a saved space config (a dict, as ``RunConfig.to_dict`` writes it)."""
    return space_module(values.get("kind", "nb201")).SPACE_CONFIG


def build_supernet(config):
    """The weight-sharing supernet of ``config`` (any space)."""
    return space_module(space_kind(config)).build_supernet(config)


def make_path_sampler(train_config, space_config, generator):
    """The path sampler that ``train_config.path_sampler`` names, for the space of ``space_config``."""
    return space_module(space_kind(space_config)).make_path_sampler(train_config, space_config, generator)


__all__ = ["NB201_OPS", "PARAMETRIC_OPS", "EDGES", "NUM_EDGES", "ArchError", "NB201Supernet", "StandaloneNB201",
           "SupernetConfig", "arch_to_product_index", "arch_to_str", "conv_only_archs", "enumerate_archs",
           "product_index_to_arch", "is_connected", "str_to_arch", "SPACE_MODULES", "space_kind", "space_module",
           "space_config_class", "build_supernet", "make_path_sampler"]
