import pytest
import torch

from pada_lite.spaces import (NB201_OPS, ArchError, NB201Supernet, StandaloneNB201, SupernetConfig, arch_to_index,
                              arch_to_str, conv_only_archs, enumerate_archs, index_to_arch, is_connected,
                              str_to_arch)

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_string_roundtrip_matches_official_order():
    arch = str_to_arch(BEST)
    assert arch == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert arch_to_str(arch) == BEST


def test_index_roundtrip_and_enumeration():
    archs = enumerate_archs()
    assert len(archs) == 5 ** 6 == len(set(archs))
    for i in (0, 1, 777, 15624):
        assert arch_to_index(index_to_arch(i)) == i
        assert archs[i] == index_to_arch(i)


def test_conv_only_subspace_has_64_archs():
    archs = conv_only_archs()
    assert len(archs) == 64 == len(set(archs))
    assert all(set(a) <= {"nor_conv_1x1", "nor_conv_3x3"} for a in archs)


@pytest.mark.parametrize("bad", ["", "|nor_conv_3x3~0|", "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|+|none~0|none~1|none~2|", "nor_conv_3x3~0+x+y"])
def test_malformed_strings_raise(bad):
    with pytest.raises(ArchError):
        str_to_arch(bad)


def test_unknown_op_and_bad_index():
    with pytest.raises(ArchError, match="unknown op"):
        arch_to_str(("sep_conv_3x3",) * 6)
    with pytest.raises(ArchError):
        index_to_arch(5 ** 6)
    with pytest.raises(ArchError, match="invalid op set"):
        SupernetConfig(ops=("none", "dil_conv"))


def test_connectivity():
    assert not is_connected(("none",) * 6)
    assert is_connected(("none", "none", "none", "skip_connect", "none", "none"))
    assert not is_connected(("skip_connect", "none", "none", "none", "none", "none"))


def test_supernet_forward_shapes_and_none_edges():
    net = NB201Supernet(SupernetConfig(channels=4, cells_per_stage=2))
    x = torch.randn(3, 1, 16, 16)
    for arch in (("none",) * 6, conv_only_archs()[5], index_to_arch(1234)):
        assert net(x, arch).shape == (3, 10)
    with pytest.raises(ArchError):
        net.check_arch(("nor_conv_5x5",) * 6)


def test_supernet_with_op_subset_has_only_those_ops():
    net = NB201Supernet(SupernetConfig(ops=("nor_conv_1x1", "nor_conv_3x3"), channels=4, cells_per_stage=1))
    names = {n.split(".")[4] for n, _ in net.named_parameters() if ".edges." in n}
    assert names == {"nor_conv_1x1", "nor_conv_3x3"}
    assert len(list(net.op_parameters("nor_conv_3x3"))) == 3 * 6  # 3 cells x 6 edges x 1 conv weight


def test_reference_batchnorm_has_no_affine_or_running_stats():
    net = NB201Supernet(SupernetConfig(channels=4))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.affine and not m.track_running_stats for m in bns)


def test_standalone_net_equals_supernet_path_with_same_weights():
    config = SupernetConfig(channels=4)
    arch = str_to_arch(BEST)
    torch.manual_seed(0)
    alone = StandaloneNB201(arch, config)
    sup = NB201Supernet(config)
    sup.load_state_dict(alone.net.state_dict(), strict=False)
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(alone(x), sup(x, arch))


def test_run_config_finds_a_space_by_kind_and_names_an_unknown_one():
    from pada_lite.config import RunConfig, lite
    from pada_lite.spaces import ArchError, build_supernet, space_kind
    config = RunConfig.from_dict(lite().to_dict())
    assert space_kind(config.space) == "nb201" and isinstance(build_supernet(config.space), NB201Supernet)
    broken = lite().to_dict()
    broken["space"]["kind"] = "hexagons"
    with pytest.raises(ArchError, match="unknown search space 'hexagons'"):
        RunConfig.from_dict(broken)
