"""Search spaces."""
from .nb201 import (NB201_OPS, PARAMETRIC_OPS, EDGES, NUM_EDGES, ArchError, NB201Supernet, StandaloneNB201,
                    SupernetConfig, arch_to_index, arch_to_str, conv_only_archs, enumerate_archs, index_to_arch,
                    is_connected, str_to_arch)

__all__ = ["NB201_OPS", "PARAMETRIC_OPS", "EDGES", "NUM_EDGES", "ArchError", "NB201Supernet", "StandaloneNB201",
           "SupernetConfig", "arch_to_index", "arch_to_str", "conv_only_archs", "enumerate_archs", "index_to_arch",
           "is_connected", "str_to_arch"]
