import pytest
import timm
import torch

from kd.errors import KDError
from kd.models import CIFAR_MODELS, PUBLISHED_PARAMS_M, count_params, create_model


@pytest.mark.parametrize("name", sorted(set(PUBLISHED_PARAMS_M) - {"resnet20"}))
def test_param_counts_within_2_percent_of_published(name):
    count = count_params(create_model(name, num_classes=100, in_chans=3)) / 1e6
    assert abs(count - PUBLISHED_PARAMS_M[name]) / PUBLISHED_PARAMS_M[name] < 0.02


def test_resnet20_param_count():
    # The published 0.27M is He et al.'s CIFAR-10 count; the papers' resnet20 (1x1 conv shortcuts) has
    # 0.2725M with a 10-class head and 0.2783M with a 100-class head (+3.1% over 0.27M).
    assert abs(count_params(create_model("resnet20", 10, 3)) / 1e6 - 0.27) / 0.27 < 0.02
    assert count_params(create_model("resnet20", 100, 3)) == 278_324


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_cifar_zoo_through_timm(name):
    model = timm.create_model(name, num_classes=7, in_chans=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 7)
    model = timm.create_model(name, num_classes=100, in_chans=3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_wide_resnet_16_k_widens_the_stages_not_the_stem():
    # Zagoruyko & Komodakis (BMVC 2016) give WRN-16-4 2.7M and WRN-16-8 11.0M parameters on CIFAR-10
    for k, published in ((4, 2.7), (8, 11.0)):
        model = create_model(f"wrn_16_{k}", 10, 3)
        assert abs(count_params(model) / 1e6 - published) / published < 0.02
        assert model.stem.out_channels == 16 and model.num_features == 64 * k
    assert count_params(create_model("wrn_16_8", 10, 3)) < count_params(create_model("wrn_16_2", 10, 3, width=4))


def test_width_multiplier_grows_the_model():
    narrow, base, wide = (count_params(create_model("resnet8", 10, 1, width=w)) for w in (0.5, 1, 2))
    assert narrow < base < wide
    # conv weights scale with width^2: doubling the width roughly quadruples the parameters
    assert 3.5 < wide / base < 4.1


def test_timm_models_through_the_same_factory():
    model = create_model("resnet18", num_classes=10, in_chans=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_bad_model_input_is_a_clear_error():
    with pytest.raises(KDError, match="Unknown model 'resnet9000'.*resnet20"):
        create_model("resnet9000", 10, 1)
    with pytest.raises(KDError, match="width"):
        create_model("resnet8", 10, 1, width=0)
    with pytest.raises(KDError, match="CIFAR zoo only"):
        create_model("resnet18", 10, 1, width=2)


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_2"])
def test_timm_interface_features_head_and_classifier(name):
    model = create_model(name, 10, 1, width=0.5).eval()
    x = torch.randn(3, 1, 28, 28)
    features = model.forward_features(x)
    assert features.shape[:2] == (3, model.num_features) and features.shape[2:] == (7, 7)
    assert torch.allclose(model.forward_head(features), model(x))
    assert model.forward_head(features, pre_logits=True).shape == (3, model.num_features)
    model.reset_classifier(4)
    assert model(x).shape == (3, 4) and model.get_classifier().out_features == 4 and model.num_classes == 4
    cfg = timm.get_pretrained_cfg(name)
    assert cfg.input_size == (3, 32, 32) and cfg.classifier == "head.fc" and len(cfg.mean) == 3
    with pytest.raises(KDError, match="no pretrained weights"):
        timm.create_model(name, pretrained=True)
