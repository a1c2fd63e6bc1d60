"""Tests of gt.models: a contract over every registered model, hand-computed parameter counts,
names, determinism, spec round trips, torch.fx traceability and errors."""

from __future__ import annotations

import json
import operator

import pytest
import torch
import torch.fx
from torch import nn

import graphtickets as gt
from graphtickets.errors import GraphticketsError, UnknownNameError
from graphtickets.models import MODELS, ModelError, build, build_from_spec

#: Small versions for the contract (a new entry without a line here is tested with defaults).
SMALL: dict[str, dict] = {
    "mlp": {"widths": [16, 8]},
    "conv2": {"width": 0.125},
    "conv4": {"width": 0.125},
    "conv6": {"width": 0.125},
    "vgg11": {"width": 0.0625},
    "vgg16": {"width": 0.0625},
    "vgg19": {"width": 0.0625},
    "resnet20": {"width": 0.25},
    "resnet32": {"width": 0.25},
    "resnet56": {"width": 0.125},
    "cnn1d": {"channels": 4},
    "resnet1d": {"depth": 8, "widths": [4, 6, 8]},
}
SHAPES = [(3, 32, 32), (1, 8, 8), (40,), (2, 20)]
#: Models for sequences only: image shapes must raise a ModelError naming the fix.
SEQUENCE_ONLY = {"cnn1d", "resnet1d"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------- contract over every model


@pytest.mark.parametrize("in_shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_contract(name: str, in_shape: tuple[int, ...]) -> None:
    kw = SMALL.get(name, {})
    if name in SEQUENCE_ONLY and len(in_shape) == 3:
        with pytest.raises(ModelError, match="sequences"):
            build(name, in_shape=in_shape, num_classes=5, **kw)
        return
    rng_before = torch.get_rng_state()
    model = build(name, in_shape=in_shape, num_classes=5, seed=3, **kw)
    assert torch.equal(torch.get_rng_state(), rng_before), "build() changed the global RNG"
    # same seed, same bits (whatever the global RNG); another seed, other weights
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(999)
        twin = build(name, in_shape=in_shape, num_classes=5, seed=3, **kw)
    assert same_state(model, twin)
    other = build(name, in_shape=in_shape, num_classes=5, seed=4, **kw)
    assert not same_state(model, other)
    # the spec is plain JSON and rebuilds the same model
    spec = model.gt_spec
    assert spec == {"name": name, "in_shape": list(in_shape), "num_classes": 5, "seed": 3, **kw}
    rebuilt = build_from_spec(json.loads(json.dumps(spec)))
    assert same_state(model, rebuilt) and rebuilt.gt_spec == spec

    x = torch.randn(4, *in_shape, generator=torch.Generator().manual_seed(0))
    assert model(x).shape == (4, 5)
    model.eval()
    out = model(x)
    assert out.shape == (4, 5) and torch.isfinite(out).all()

    # torch.fx traces it, and the trace computes the same function
    traced = torch.fx.symbolic_trace(model)
    assert torch.equal(traced(x), out)

    # only standard torch.nn modules at the leaves
    for mname, mod in model.named_modules():
        if not list(mod.children()):
            assert type(mod).__module__.startswith("torch.nn"), f"{mname}: {type(mod)}"

    # prunable = exactly the weights with >= 2 dimensions (Linear / Conv), never BN or biases
    params = dict(model.named_parameters())
    matrices = {n for n, p in params.items() if p.dim() >= 2}
    assert set(gt.prunable(model)) == matrices
    modules = dict(model.named_modules())
    for n in matrices:
        assert isinstance(modules[n.rsplit(".", 1)[0]], (nn.Linear, nn.Conv1d, nn.Conv2d))
    assert isinstance(modules["classifier"], nn.Linear)
    assert modules["classifier"].out_features == 5


def test_registered_names() -> None:
    expected = {"mlp", "lenet300_100", "conv2", "conv4", "conv6", "vgg11", "vgg16", "vgg19",
                "resnet20", "resnet32", "resnet56", "cnn1d", "resnet1d"}  # fmt: skip
    assert expected <= set(MODELS)
    assert gt.models.build is build


# ----------------------------------------------------------------- hand-computed counts


def test_lenet300_100_count() -> None:
    m = build("lenet300_100", in_shape=(1, 28, 28), num_classes=10)
    assert n_params(m) == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10 == 266_610
    assert n_params(build("lenet300_100", in_shape=(784,), num_classes=10, bias=False)) == 266_200


def test_mlp_count_and_names() -> None:
    m = build("mlp", in_shape=(40,), num_classes=3, widths=(8, 6))
    assert n_params(m) == 40 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3
    assert [n for n, _ in m.named_parameters()] == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "classifier.weight", "classifier.bias"
    ]  # fmt: skip
    assert m.gt_spec["widths"] == [8, 6] and m.gt_spec["in_shape"] == [40]  # tuples -> lists
    assert not isinstance(m[0], nn.Flatten)  # 1-D input: no flatten
    assert isinstance(build("mlp", in_shape=(1, 8, 8), num_classes=3).flatten, nn.Flatten)
    assert n_params(build("mlp", in_shape=(5,), num_classes=2, widths=())) == 12  # logistic regression
    assert isinstance(build("mlp", in_shape=(5,), num_classes=2, activation="tanh").act1, nn.Tanh)


def test_conv_counts() -> None:
    conv2 = build("conv2", in_shape=(3, 32, 32), num_classes=10)
    c1, c2 = 3 * 64 * 9 + 64, 64 * 64 * 9 + 64
    fc = 16 * 16 * 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert n_params(conv2) == c1 + c2 + fc == 4_301_642  # "4.3M" in Frankle & Carbin (2019)
    conv4 = build("conv4", in_shape=(3, 32, 32), num_classes=10)
    c34 = 64 * 128 * 9 + 128 + 128 * 128 * 9 + 128
    assert n_params(conv4) == c1 + c2 + c34 + 8 * 8 * 128 * 256 + 256 + 256 * 256 + 256 + 2570
    # on MNIST-1D: Conv1d with kernel 3 after an unflatten to (1, 40), one pool to length 20
    m = build("conv2", in_shape=(40,), num_classes=10)
    assert isinstance(m.unflatten, nn.Unflatten) and isinstance(m.features[0], nn.Conv1d)
    assert n_params(m) == (1 * 64 * 3 + 64) + (64 * 64 * 3 + 64) + (64 * 20 * 256 + 256) + 65_792 + 2570
    assert [n for n, _ in m.named_parameters()][:2] == ["features.0.weight", "features.0.bias"]
    assert "fc.0.weight" in dict(m.named_parameters())


def test_vgg16_count_and_pool_skipping() -> None:
    m = build("vgg16", in_shape=(3, 32, 32), num_classes=10)
    chans = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    ins = [3, *chans[:-1]]
    convs = sum(i * o * 9 for i, o in zip(ins, chans, strict=True))  # no conv bias (BN follows)
    assert n_params(m) == convs + 2 * sum(chans) + 512 * 10 + 10  # about 14.7M
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 5
    small = build("vgg11", in_shape=(1, 8, 8), num_classes=10, width=0.0625)
    assert sum(isinstance(x, nn.MaxPool2d) for x in small.modules()) == 3  # 8 -> 4 -> 2 -> 1
    assert sum(isinstance(x, nn.BatchNorm2d) for x in small.modules()) == 8
    assert small.features[0].out_channels == 4


def test_resnet20_count_structure_and_trace() -> None:
    m = build("resnet20", in_shape=(3, 32, 32), num_classes=10)
    stem = 3 * 16 * 9 + 2 * 16
    block = lambda ci, co: ci * co * 9 + co * co * 9 + 4 * co  # noqa: E731  (2 convs + 2 BN)
    shortcut = lambda ci, co: ci * co + 2 * co  # noqa: E731  (1x1 conv + BN: option B)
    stages = (3 * block(16, 16)) + (block(16, 32) + shortcut(16, 32) + 2 * block(32, 32)) + (
        block(32, 64) + shortcut(32, 64) + 2 * block(64, 64)
    )
    assert n_params(m) == stem + stages + 64 * 10 + 10 == 272_474  # "0.27M" (He et al. 2016)
    names = dict(m.named_parameters())
    assert {"conv1.weight", "stage1.0.conv1.weight", "stage2.0.shortcut.0.weight",
            "stage3.2.bn2.weight", "classifier.weight"} <= set(names)  # fmt: skip
    assert not any(n.startswith("stage1.0.shortcut") or n.startswith("stage2.1.shortcut") for n in names)
    assert m.stage2[0].conv1.stride == (2, 2) and m.stage2[1].conv1.stride == (1, 1)
    traced = torch.fx.symbolic_trace(m)
    adds = [n for n in traced.graph.nodes if n.op == "call_function" and n.target in (operator.add, torch.add)]
    assert len(adds) == 9  # one residual add per block
    assert len([x for x in m.modules() if type(x).__name__ == "BasicBlock"]) == 9
    assert len([x for x in build("resnet56", in_shape=(3, 32, 32), num_classes=10, width=0.25).modules()
                if type(x).__name__ == "BasicBlock"]) == 27  # fmt: skip
    half = build("resnet20", in_shape=(3, 32, 32), num_classes=10, width=0.5)
    assert half.conv1.out_channels == 8 and half.classifier.in_features == 32


def test_ticket_rebuilds_model_from_spec() -> None:
    m = build("conv2", in_shape=(1, 8, 8), num_classes=10, width=0.125, seed=7)
    masks = {n: p.detach().abs() > p.detach().abs().median() for n, p in gt.prunable(m).items()}
    t = gt.Ticket(masks=masks, method="test", config={"model": m.gt_spec})
    rebuilt = t.build_model()
    for n, p in gt.prunable(rebuilt).items():
        assert torch.equal(p.detach(), gt.prunable(m)[n].detach() * masks[n])


# ----------------------------------------------------------------- errors


def test_errors_name_the_problem() -> None:
    with pytest.raises(UnknownNameError, match="resnet20"):
        build("resnet21", in_shape=(3, 32, 32), num_classes=10)
    with pytest.raises(ModelError, match="width") as e:
        build("resnet20", in_shape=(3, 32, 32), num_classes=10, widths=(3,))
    assert isinstance(e.value, GraphticketsError)
    with pytest.raises(ModelError, match="in_shape"):
        build("mlp", in_shape=(1, 3, 8, 8), num_classes=10)
    with pytest.raises(ModelError, match="in_shape"):
        build("mlp", in_shape=(0,), num_classes=10)
    with pytest.raises(ModelError, match="num_classes"):
        build("mlp", in_shape=(4,), num_classes=0)
    with pytest.raises(ModelError, match="width"):
        build("vgg11", in_shape=(3, 32, 32), num_classes=10, width=-1)
    with pytest.raises(ModelError, match="widths"):
        build("mlp", in_shape=(4,), num_classes=2, widths=(8, 0))
    with pytest.raises(ModelError, match="activation"):
        build("mlp", in_shape=(4,), num_classes=2, activation="swishy")
    with pytest.raises(ModelError, match="JSON"):
        build("mlp", in_shape=(4,), num_classes=2, activation=nn.ReLU)
    with pytest.raises(ModelError, match="spec"):
        build_from_spec({"name": "mlp"})


def test_kaiming_normal_init_recorded_and_rebuilt() -> None:
    d = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(200, 200), seed=3)
    assert "init" not in d.gt_spec  # the default leaves the spec as it was
    k = gt.models.build("mlp", in_shape=(40,), num_classes=10, widths=(200, 200), seed=3, init="kaiming_normal")
    assert k.gt_spec["init"] == "kaiming_normal"
    w = k.fc2.weight.detach()
    assert abs(float(w.std()) - (2.0 / 200) ** 0.5) < 0.005  # N(0, 2 / fan_in)
    assert not bool(k.fc2.bias.any()) and not bool(k.classifier.bias.any())
    assert float(d.fc2.weight.detach().abs().max()) <= 1 / 200**0.5 + 1e-6  # PyTorch's uniform default
    again = gt.models.build_from_spec(k.gt_spec)
    assert same_state(k, again) and again.gt_spec == k.gt_spec
    r = gt.models.build("resnet20", in_shape=(3, 8, 8), num_classes=10, width=0.25, init="kaiming_normal")
    assert torch.equal(r.bn1.weight, torch.ones_like(r.bn1.weight))  # BatchNorm keeps its defaults
    with pytest.raises(gt.models.ModelError, match="init"):
        gt.models.build("mlp", in_shape=(4,), num_classes=2, init="xavier")
