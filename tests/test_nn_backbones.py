"""The torchvision-layout ResNet: torchvision's exact parameter counts and names (so ImageNet weight files
load strictly), any width, and weight files checked by name."""

import pytest
import torch

from facecourse.nn.backbones import ResNet, load_backbone_weights, resnet

# Parameter counts of torchvision's resnet18/34/50 (11,689,512 / 21,797,672 / 25,557,032) minus the
# 1000-class classifier fc (512*1000+1000 = 513,000 and 2048*1000+1000 = 2,049,000).
TORCHVISION_FEATURE_PARAMETERS = {18: 11_176_512, 34: 21_284_672, 50: 23_508_032}
# torchvision's state-dict entries (weights, biases, BN running stats and num_batches_tracked) minus fc's two.
TORCHVISION_STATE_ENTRIES = {18: 120, 34: 216, 50: 318}


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_resnet_has_torchvisions_parameters_and_names(depth):
    model = resnet(depth)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_FEATURE_PARAMETERS[depth]
    state = model.state_dict()
    assert len(state) == TORCHVISION_STATE_ENTRIES[depth]
    for name in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer4.1.bn2.weight",
                 "layer2.0.downsample.0.weight", "layer3.0.downsample.1.running_var"):
        assert name in state, name
    if depth == 50:  # v1.5: the stride sits in the 3x3 convolution of the first bottleneck of a stage
        assert state["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)
        assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)
    assert model.n_features == (2048 if depth == 50 else 512)


def test_a_narrow_resnet_runs_on_small_crops_and_keeps_the_batch():
    model = resnet(18, width=8).eval()
    x = torch.rand(3, 3, 64, 64)
    features = model(x)
    assert features.shape == (3, 64) and model.n_features == 64
    assert torch.allclose(model(x[1:2]), features[1:2], atol=1e-5), "eval mode: samples are independent"


def test_weight_files_load_strictly_without_the_classifier(tmp_path):
    source = resnet(18, width=8)
    state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 64), "fc.bias": torch.zeros(1000)}
    path = tmp_path / "resnet18-test.pth"
    torch.save(state, path)
    target = load_backbone_weights(resnet(18, width=8), path)
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name
    with pytest.raises(ValueError, match=r"resnet18-test.pth.*wrong shape.*conv1.weight"):
        load_backbone_weights(resnet(18, width=16), path)
    with pytest.raises(ValueError, match="block must be one of"):
        ResNet("dense")
    with pytest.raises(ValueError, match="depth must be one of"):
        resnet(101)
