"""The one training step and the plain loop: what every training path (gon fit, reproduce, bench) runs."""

import itertools

import pytest
import torch

from gon.core.errors import GonError
from gon.training.loop import loss_arguments, shuffled_batches, train_loop, training_step
from tests.helpers import tiny_model


def test_a_step_is_loss_terms_backward_and_update_as_written_by_hand():
    x = torch.rand(4, 1, 16, 16)
    model, twin = tiny_model("gon"), tiny_model("gon")
    twin.load_state_dict(model.state_dict())
    step = training_step(model, 1e-2, "cpu")
    opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    for _ in range(2):
        terms = step({"x": x})
        opt.zero_grad()
        twin.loss(x).backward()
        opt.step()
    assert set(terms) == {"loss"}
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_batch_fields_a_model_declares_reach_its_loss():
    glo = tiny_model("glo")
    batch = {"x": torch.rand(3, 1, 16, 16), "index": torch.tensor([5, 0, 9]), "label": None}
    assert list(loss_arguments(glo, batch)) == ["index"]
    before = glo.codes.detach().clone()
    training_step(glo, 1.0, "cpu")(batch)
    moved = (glo.codes.detach() != before).any(1).nonzero().flatten().tolist()
    assert moved == [0, 5, 9]  # exactly the codes of the batch's images
    assert loss_arguments(tiny_model("gon"), batch) == {}
    with pytest.raises(GonError, match="ClassifierGON trains on each image's label; this data has none"):
        loss_arguments(_classifier(), batch)


def _classifier():
    from gon.models.registry import build

    return build("classifier", latent_dim=4, width=2, image_size=8)


def test_shuffled_batches_cover_each_epoch_once_and_drop_the_rest():
    images, labels = torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10) * 10
    batches = shuffled_batches(images, labels, 3, torch.Generator().manual_seed(0), "cpu")
    epoch = [next(batches) for _ in range(3)]  # 9 of 10 images, the tenth dropped
    seen = torch.cat([b["index"] for b in epoch])
    assert len(set(seen.tolist())) == 9
    for b in epoch:
        assert torch.equal(b["x"].flatten(), b["index"].float()) and torch.equal(b["label"], b["index"] * 10)
    assert next(batches)["x"].shape == (3, 1, 1, 1)  # the next epoch starts, reshuffled


def test_the_loop_stops_at_steps_seconds_or_when_asked():
    calls = []
    batches = itertools.count()
    assert train_loop(calls.append, batches, steps=4)[0] == 4 and calls == [0, 1, 2, 3]
    done, seconds = train_loop(lambda b: None, batches, seconds=0.01)
    assert done > 0 and seconds >= 0.01
    seen = []
    assert train_loop(lambda b: None, batches, steps=50, on_step=lambda s, t: seen.append(s) or s == 3)[0] == 3
    assert seen == [1, 2, 3]
    assert train_loop(lambda b: None, [1, 2]) == (2, pytest.approx(0, abs=0.1))  # until the batches run out
