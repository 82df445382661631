"""Models: built-in architectures, seeded initialisation, and populations equal to their single models."""

import pytest
import torch

from autolr.errors import UserError
from autolr.training.models import build_model, build_population


@pytest.mark.parametrize("name, input_shape", [("mlp", (1, 28, 28)), ("cnn", (1, 8, 8)), ("cnn", (3, 32, 32))])
def test_population_member_starts_as_the_single_model_with_its_seed(name, input_shape):
    seeds = [11, 3, 11]
    population = build_population(name, input_shape, 10, seeds)
    for member, seed in enumerate(seeds):
        single = build_model(name, input_shape, 10, seed)
        for stacked, own in zip(population.params, single.parameters(), strict=True):
            assert torch.equal(stacked[member], own)
    assert not torch.equal(population.params[0][0], population.params[0][1])  # other seed, other weights
    assert torch.equal(population.params[0][0], population.params[0][2])  # same seed, same weights


def test_building_a_model_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_model("mlp", (1, 8, 8), 10, seed=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "name, input_shape, grouped",
    [("mlp", (1, 8, 8), None), ("mlp", (20,), None), ("cnn", (1, 12, 12), False), ("cnn", (3, 12, 12), True)],
)
def test_population_forward_equals_each_single_model(name, input_shape, grouped):
    seeds = [0, 1, 2]
    x = torch.randn(5, *input_shape, generator=torch.Generator().manual_seed(0))
    logits = build_population(name, input_shape, 7, seeds, grouped_convolutions=grouped)(x)
    assert logits.shape == (3, 5, 7)
    for member, seed in enumerate(seeds):
        torch.testing.assert_close(logits[member], build_model(name, input_shape, 7, seed)(x), rtol=1e-5, atol=1e-5)


def test_keep_drops_members_and_keeps_the_others_in_order():
    population = build_population("mlp", (1, 8, 8), 10, [0, 1, 2, 3])
    before = [p.detach().clone() for p in population.params]
    population.keep(torch.tensor([3, 1]))
    assert population.size == 2
    for after, old in zip(population.params, before):
        assert torch.equal(after[0], old[3]) and torch.equal(after[1], old[1])


def test_bad_model_name_and_input_shape_are_user_errors():
    with pytest.raises(UserError, match="model must be one of mlp, cnn"):
        build_model("resnet", (1, 8, 8), 10, 0)
    with pytest.raises(UserError, match="input_shape of the cnn model must be"):
        build_model("cnn", (8, 8), 10, 0)
    with pytest.raises(UserError, match="input_shape of the mlp model must be"):
        build_model("mlp", (0, 8), 10, 0)
    with pytest.raises(UserError, match="at least one seed"):
        build_population("mlp", (1, 8, 8), 10, [])
