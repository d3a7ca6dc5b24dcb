"""Seeds trained together: M copies of one model that differ only in their seed, as one stacked training step.

A sweep trains every row once per seed. On a GPU a small model's step is launch-bound (most of a 2 ms graphed
step on an H100 is idle), so M members stacked along a new leading dimension should cost little more than one.
:class:`EnsembleStep` does that with ``torch.func``:

- the members' weights, buffers and Adam moments are stacked (``stack_module_state``); one template of the
  model runs on them through ``functional_call`` under ``vmap``, its inner gradient (Eq. 8) taken by
  ``torch.func.grad`` (:func:`gon.origin.functional_gradients`: the same :func:`gon.origin.gradient_origin`);
  the summed loss's backward gives each member its own gradient, and one ``torch.optim.Adam`` over the stacked
  tensors is each member's Adam (Adam is elementwise);
- each member keeps its own batch (its own data order) and its own random numbers: whatever its step draws (an
  implicit GON's pixel subsets, a variational model's posterior draw) is drawn outside ``vmap`` from that
  member's generators, as its separate run would draw it; ``vmap`` itself draws nothing (it refuses to);
- the step is a :class:`gon.training.graphs.GraphedStep`: one CUDA graph on a GPU, eager elsewhere.

Equal to the separate runs up to float rounding (the stacked convolutions sum in another order):
tests/test_ensemble.py checks weights, Adam's state and losses of every Table 1 and Table 2 row that stacks.
On a CPU it does not pay (docs/performance.md), so ``gon reproduce`` stacks by default on CUDA only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from gon.origin import functional_gradients
from gon.training.graphs import GraphedStep, log_line, step_inputs
from gon.training.loop import Batch, loss_arguments

MEMBER = "member:"  # prefix of the per-member loss terms among the stacked step's outputs
ADAM_MOMENTS = ("exp_avg", "exp_avg_sq")


def stack_refusal(model: nn.Module) -> str | None:
    """Why ``model``'s seeds cannot train stacked, or None when they can.

    Refused: BatchNorm (it updates its running statistics in place, inside the inner gradient too, which
    ``torch.func`` transforms cannot do), a random start z0 ~ N(0, s^2 I) (drawn inside the step: Fig. 11's
    rows), and the implicit GON's shared-origin pass (stacking would lose its speed, not its result). Every other
    model stacks: its step draws nothing, or only what :func:`member_inputs` draws outside ``vmap``; anything else
    drawn inside would stop ``vmap`` with an error, never silently differ.
    """
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return "BatchNorm updates its running statistics in place during the step"
    if getattr(model, "origin_pass", None) == "shared":
        return (
            "its exact shared-origin pass is written with torch.autograd: stacked, the step would take the naive "
            "double backward, 3-7x slower (docs/performance.md); origin_pass='naive' stacks"
        )
    origin = getattr(model, "origin", None)
    if getattr(model, "gradient_encoder", False) and origin is not None and origin.z0_std > 0:
        return f"z0 is drawn inside the step (z0_std={origin.z0_std})"
    return None


def stackable(model: nn.Module) -> bool:
    """Whether seeds of ``model`` can train as one :class:`EnsembleStep` (:func:`stack_refusal` says why not)."""
    return stack_refusal(model) is None


class MemberRandom:
    """One member's random generators (the CPU's and, on a GPU, its device's), swapped in around its draws.

    ``cpu`` / ``cuda``: states as ``torch.get_rng_state()`` / ``torch.cuda.get_rng_state(device)`` give them,
    the ones its separate run would have at this point (:meth:`current` right after building the member, or a
    checkpoint's). ``with member_random:`` makes them the global generators and keeps what was drawn.
    """

    def __init__(self, cpu: Tensor, cuda: Tensor | None = None, device: torch.device | str | None = None):
        self.cpu, self.cuda = cpu.clone(), None if cuda is None else cuda.clone()
        self.device = torch.device(device if device is not None else "cuda" if cuda is not None else "cpu")
        self._outside: tuple[Tensor, Tensor | None] | None = None

    @classmethod
    def current(cls, device: torch.device | str = "cpu") -> MemberRandom:
        """The global generators' states now (the CUDA one only for a CUDA ``device``)."""
        device = torch.device(device)
        return cls(torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None, device)

    def __enter__(self) -> MemberRandom:
        self._outside = (torch.get_rng_state(), self._cuda_state())
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)
        return self

    def __exit__(self, *exc) -> None:
        self.cpu, self.cuda = torch.get_rng_state(), self._cuda_state()
        cpu, cuda = self._outside
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, self.device)

    def _cuda_state(self) -> Tensor | None:
        return torch.cuda.get_rng_state(self.device) if self.cuda is not None else None


def member_inputs(model: nn.Module, batch: Batch) -> dict[str, Tensor]:
    """Every tensor one training step of ``model`` on ``batch`` reads, its random draws included, drawn now from
    the global generators in the order its eager step draws them (pixel subsets, then a posterior draw)."""
    inputs = step_inputs(model, batch["x"], loss_arguments(model, batch))
    noise = getattr(model, "training_noise", None)
    if noise is not None and model.training:
        inputs.update(noise(batch["x"]))
    return inputs


class _LossOf(nn.Module):
    """A model's ``loss_terms`` as a forward pass, which ``functional_call`` runs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, fields: dict) -> dict[str, Tensor]:
        return self.model.loss_terms(x, **fields)


class StackedModel(nn.Module):
    """M members' weights and buffers stacked on a leading dimension, and ``loss_terms`` over all of them at once.

    ``loss_terms(x [M, B, ...], **fields [M, ...])`` returns ``loss`` (the members' losses summed: its backward
    gives each member its own gradient) and every member's terms as ``member:NAME`` [M].
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        weights, buffers = stack_module_state(list(models))
        self.names, self.buffer_names = list(weights), list(buffers)
        self.weights = nn.ParameterList(nn.Parameter(weights[n].detach()) for n in self.names)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[name])
        # the template only lends its code: not a submodule (its weights on "meta" are no parameters of this)
        self.__dict__["template"] = _LossOf(copy.deepcopy(models[0]).to("meta"))

    def stacked_buffers(self) -> list[Tensor]:
        return [getattr(self, f"buffer_{i}") for i in range(len(self.buffer_names))]

    def loss_terms(self, x: Tensor, **fields) -> dict[str, Tensor]:
        def member(weights, buffers, x, fields):
            state = {"model." + n: w for n, w in zip(self.names, weights)}
            state.update({"model." + n: b for n, b in zip(self.buffer_names, buffers)})
            return functional_call(self.template, state, (x, fields))

        with functional_gradients():
            terms = vmap(member)(tuple(self.weights), tuple(self.stacked_buffers()), x, fields)
        return {"loss": terms["loss"].sum(), **{MEMBER + k: v for k, v in terms.items()}}


def _group_settings(optimizer: torch.optim.Optimizer) -> dict:
    return {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}


class EnsembleStep:
    """``step(batches) -> loss terms per member``: one Adam step of each of M members, stacked.

    models: M models of one row (same class, options and shapes), differing in their seed.
    optimizers: each member's Adam over ``model.parameters()`` (one parameter group, as
        :func:`gon.training.loop.training_step` builds it), possibly resumed: the stacked Adam starts from their states,
        which must be at the same step.
    random: each member's generators (:class:`MemberRandom`), the states its separate run would have; needed
        only where a step draws (:func:`member_inputs`); by default each member starts from the global ones now.
    graphs: replay the stacked step as one CUDA graph (on a CUDA device).

    The members' own models and optimizers are not touched while training: :meth:`write_back` copies the
    stacked weights and Adam's state into them (for checkpoints, evaluation and curves).
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        optimizers: Sequence[torch.optim.Optimizer],
        random: Sequence[MemberRandom] | None = None,
        graphs: bool = False,
        log: Callable[[str], None] | None = log_line,
    ):
        if not models or len(models) != len(optimizers):
            raise ValueError(f"an ensemble needs one optimizer per model: got {len(models)} and {len(optimizers)}")
        self.models, self.optimizers = list(models), list(optimizers)
        self._check_alike()
        for model in self.models:
            model.train()
        device = next(self.models[0].parameters()).device
        self.random = list(random) if random is not None else [MemberRandom.current(device) for _ in self.models]
        if len(self.random) != len(self.models):
            raise ValueError(f"an ensemble needs one MemberRandom per model: got {len(self.random)}")
        self.stacked = StackedModel(self.models)
        self.optimizer = self._stacked_adam(graphs and device.type == "cuda")
        self.graphed_step = GraphedStep(self.stacked, self.optimizer, graphs and device.type == "cuda", log=log)

    def __len__(self) -> int:
        return len(self.models)

    # -- checks and state ---------------------------------------------------------------------------
    def _check_alike(self) -> None:
        first = self.models[0]
        refusal = stack_refusal(first)
        if refusal is not None:
            raise ValueError(f"{type(first).__name__} cannot train stacked: {refusal}")
        shapes = [(n, p.shape, p.dtype, p.device) for n, p in first.named_parameters()]
        for i, model in enumerate(self.models[1:], 1):
            if type(model) is not type(first) or getattr(model, "config", None) != getattr(first, "config", None):
                raise ValueError(f"ensemble member {i} is not the same model as member 0 (class or options differ)")
            if [(n, p.shape, p.dtype, p.device) for n, p in model.named_parameters()] != shapes:
                raise ValueError(f"ensemble member {i}'s parameters differ in shape, type or device from member 0's")
        settings = _group_settings(self.optimizers[0])
        for i, (model, opt) in enumerate(zip(self.models, self.optimizers)):
            if not isinstance(opt, torch.optim.Adam) or len(opt.param_groups) != 1:
                raise ValueError(f"ensemble member {i}: its optimizer must be one Adam over its model's parameters")
            if {id(p) for p in opt.param_groups[0]["params"]} != {id(p) for p in model.parameters()}:
                raise ValueError(f"ensemble member {i}: its optimizer is not over its own model's parameters")
            differ = sorted(k for k, v in _group_settings(opt).items() if settings.get(k) != v and k != "capturable")
            if differ:
                raise ValueError(f"ensemble member {i}: Adam settings differ from member 0's: {', '.join(differ)}")
            if settings.get("amsgrad"):
                raise ValueError("ensemble members with AMSGrad are not supported")

    def _stacked_adam(self, capturable: bool) -> torch.optim.Adam:
        from gon.training.graphs import TrainingAdam

        settings = {k: v for k, v in _group_settings(self.optimizers[0]).items() if k != "capturable"}
        adam = TrainingAdam(self.stacked.weights.parameters(), capturable=capturable, **settings)
        states = [self._member_state(i) for i in range(len(self))]
        present = [all(s is not None for s in member) for member in states]
        if not any(present):
            return adam
        if not all(present):
            raise ValueError("ensemble members: some optimizers hold a state and some do not; stack units at one step")
        steps = {float(member[0]["step"]) for member in states}
        if len(steps) > 1:
            raise ValueError(f"ensemble members are at different Adam steps ({sorted(steps)}); stack units at one step")
        state = {
            j: {
                "step": states[0][j]["step"].detach().clone().cpu(),
                **{k: torch.stack([member[j][k] for member in states]) for k in ADAM_MOMENTS},
            }
            for j in range(len(self.stacked.names))
        }
        adam.load_state_dict({"state": state, "param_groups": adam.state_dict()["param_groups"]})
        return adam

    def _member_state(self, i: int) -> list[dict | None]:
        """Member i's Adam state per parameter, in the stacked order (by name); None where it has none yet."""
        params = dict(self.models[i].named_parameters())
        state = self.optimizers[i].state
        return [state.get(params[name]) or None for name in self.stacked.names]

    # -- the step -------------------------------------------------------------------------------------
    def step(self, batches: Sequence[Batch]) -> list[dict[str, Tensor]]:
        """One Adam step of every member on its own batch; returns each member's loss terms (0-d tensors that the
        next step overwrites on a GPU: read or copy them first)."""
        if len(batches) != len(self):
            raise ValueError(f"an ensemble of {len(self)} members needs {len(self)} batches, got {len(batches)}")
        inputs = []
        for model, random, batch in zip(self.models, self.random, batches):
            with random:
                inputs.append(member_inputs(model, batch))
        stacked = {k: torch.stack([member[k] for member in inputs]) for k in inputs[0]}
        x = stacked.pop("x")
        terms = self.graphed_step(x, **stacked)
        members = {k[len(MEMBER) :]: v for k, v in terms.items() if k.startswith(MEMBER)}
        return [{k: v[i] for k, v in members.items()} for i in range(len(self))]

    __call__ = step

    def nonfinite_seen(self) -> bool:
        """Whether any member's loss was NaN or infinite since the start (one device read)."""
        return self.graphed_step.nonfinite_seen()

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the stacked weights, buffers and Adam state into every member's own model and optimizer."""
        weights = list(self.stacked.weights)
        buffers = self.stacked.stacked_buffers()
        stacked_state = [self.optimizer.state.get(w) for w in weights]
        for i, (model, opt) in enumerate(zip(self.models, self.optimizers)):
            params = dict(model.named_parameters())
            for name, w in zip(self.stacked.names, weights):
                params[name].copy_(w[i])
            own_buffers = dict(model.named_buffers())
            for name, b in zip(self.stacked.buffer_names, buffers):
                own_buffers[name].copy_(b[i])
            for name, s in zip(self.stacked.names, stacked_state):
                if not s:
                    continue
                p = params[name]
                step = s["step"].detach().clone()
                own = {"step": step.to(p.device) if getattr(opt, "capturable", False) else step.cpu()}
                own.update({k: s[k][i].clone() for k in ADAM_MOMENTS})
                opt.state[p] = own
