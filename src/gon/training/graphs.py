"""The whole training step (loss with its double backward, backward, Adam's update) as one CUDA graph.

On a GPU a GON step is launch-bound: hundreds of small kernels, each launched from Python (a conv GON
of 74k parameters took 14-20 ms a step on an H100, the GPU idle most of it). Captured once as a CUDA
graph and replayed, the step is one launch. :class:`GraphedStep` does that for any gon model:

- **static inputs**: each step's batch (and the extra fields its loss takes: GLO's indices, a
  classifier's labels) is copied into buffers allocated at the first step; the graph reads those.
- **random numbers**: noise drawn inside the step (z0 ~ N(0, s^2 I), the reparameterisation) comes
  from the CUDA generator, which PyTorch keeps graph-safe: each replay advances its Philox offset
  as the eager step would, so it draws the same numbers an eager step would. The implicit GON's
  Monte Carlo pixel subsets (``torch.randperm``) are drawn before each replay, outside the graph,
  into static index buffers, by the model's own ``coordinate_subsets`` (the same calls in the same
  order as an eager step), and the graph reads them (``loss_terms(x, subsets=...)``).
- **the optimiser inside the graph**: Adam with ``capturable=True`` (its step count on the GPU).
- **warm-up on a side stream** before capture (CUDA graphs need the kernels' one-off set-up done);
  the warm-up steps are then undone (weights, buffers, Adam's state and the random generators put
  back in place), so a graphed run trains exactly like an eager one from its first step.
- **fallback**: where capture fails (an operation that synchronises with the CPU, a model that
  cannot be captured), one line names the reason and the step runs eagerly from then on.
- **non-finite losses** set a flag on the device (no per-step sync): :meth:`GraphedStep.nonfinite_seen`
  reads it, which callers do every N steps and before every checkpoint.

Without graphs (a CPU, ``--no-cuda-graphs``) the same object runs the same step eagerly on the batch as it
comes (after a fallback: on the static buffers); tests compare that path with a plain loop on the CPU, and
the graphed path with the eager one on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gon.training.threads import log_line  # noqa: F401 (the one log line; loop and ensemble import it here)

SUBSETS = ("pixels_inner", "pixels_outer")  # the implicit GON's Monte Carlo pixel indices, drawn before the graph


class TrainingAdam(torch.optim.Adam):
    """Adam for a training step that may be captured as a CUDA graph.

    capturable: keep the step count on the GPU, so the update can be recorded in a graph (CUDA only).
    update_in_closure: ``step(closure)`` runs only the closure, which is a whole training step with its own
        update (a :class:`GraphedStep`); Lightning's manual optimisation counts steps through this call.
        ``step()`` without a closure is Adam's update, as always.
    A loaded state keeps this optimiser's ``capturable`` (a checkpoint of a graphed GPU run resumes on a CPU).
    """

    def __init__(self, params, lr: float, capturable: bool = False, update_in_closure: bool = False, **options):
        super().__init__(params, lr=lr, capturable=capturable, **options)
        self.capturable, self.update_in_closure = capturable, update_in_closure

    def step(self, closure=None):
        if closure is not None and self.update_in_closure:
            with torch.enable_grad():
                return closure()
        return super().step(closure)

    def load_state_dict(self, state_dict: dict) -> None:
        groups = [{**g, "capturable": self.capturable} for g in state_dict["param_groups"]]
        super().load_state_dict({**state_dict, "param_groups": groups})


def step_inputs(model: nn.Module, x: Tensor, fields: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every tensor one training step reads: the batch, its extra fields, and the step's pixel subsets
    (drawn here, by the model, so that the graph itself draws none with ``randperm``)."""
    inputs = {"x": x, **fields}
    subsets = getattr(model, "coordinate_subsets", None)
    if subsets is not None and model.training:
        inner, outer = subsets(x[0, 0].numel(), x.device)  # the pixels (samples, voxels) of one channel
        if inner is not None:
            inputs.update(pixels_inner=inner, pixels_outer=outer)
    return inputs


def step_loss(model: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's loss terms on ``inputs`` (from :func:`step_inputs`)."""
    fields = {k: v for k, v in inputs.items() if k != "x" and k not in SUBSETS}
    if SUBSETS[0] in inputs:
        fields["subsets"] = (inputs[SUBSETS[0]], inputs[SUBSETS[1]])
    return model.loss_terms(inputs["x"], **fields)


class GraphedStep:
    """``step(x, **fields) -> loss terms``: one optimiser step of ``model``, replayed as a CUDA graph when
    ``graphs`` (after ``warmup`` eager steps on a side stream, on static buffers the batch is copied into), else
    eager on the batch as it comes.

    The returned terms are detached tensors owned by this object: they hold the latest step's values
    (a graph overwrites them at each replay), so read or copy them before the next step.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        graphs: bool,
        warmup: int = 3,
        log: Callable[[str], None] | None = log_line,
        backward: Callable[[Tensor], None] = Tensor.backward,
    ):
        self.model, self.optimizer, self.warmup, self.log = model, optimizer, warmup, log
        self.graphs = graphs
        #: the eager step's backward (Lightning's manual_backward: its hooks, e.g. the NaN guard, and DDP's
        #: gradient all-reduce); a captured graph always runs plain autograd, which a graph can record
        self.backward = backward
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: dict[str, Tensor] | None = None
        self.outputs: dict[str, Tensor] | None = None
        self.nonfinite: Tensor | None = None  # True once any step's loss was NaN or infinite
        self.fallback_reason: str | None = None

    @property
    def graphed(self) -> bool:
        """Whether steps are replayed from a captured graph."""
        return self.graph is not None

    def __call__(self, x: Tensor, **fields: Tensor) -> dict[str, Tensor]:
        inputs = step_inputs(self.model, x, fields)
        if not self.graphs:  # eager: the batch as it comes, no static copy
            return self._step(inputs)
        self._fill(inputs)
        if self.graph is None and self.fallback_reason is None:
            self._capture()
        if self.graph is not None:
            self.graph.replay()
            return self.outputs
        return self._step(self.static)

    def nonfinite_seen(self) -> bool:
        """Whether a loss was NaN or infinite since the start (one device read)."""
        return self.nonfinite is not None and bool(self.nonfinite)

    # -- the step -----------------------------------------------------------------------
    def _fill(self, inputs: dict[str, Tensor]) -> None:
        """Copy this step's inputs into the static buffers a graph reads (allocated at the first step)."""
        if self.static is None:
            self.static = {k: v.detach().clone() for k, v in inputs.items()}
            return
        if inputs.keys() != self.static.keys() or any(v.shape != self.static[k].shape for k, v in inputs.items()):
            shapes = {k: tuple(v.shape) for k, v in inputs.items()}
            raise ValueError(f"a graphed training step needs the same inputs every step: got {shapes}")
        for k, v in inputs.items():
            self.static[k].copy_(v, non_blocking=True)

    def _step(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Loss, backward and Adam's update: the eager step, and what a graph records (on the static buffers)."""
        if self.nonfinite is None:  # before any capture: the flag lives outside the graph's pool
            self.nonfinite = torch.zeros((), dtype=torch.bool, device=inputs["x"].device)
        self.optimizer.zero_grad(set_to_none=True)  # in a capture: fresh gradients from the graph's pool
        terms = step_loss(self.model, inputs)
        (Tensor.backward if self.graphs else self.backward)(terms["loss"])
        self.nonfinite |= ~torch.isfinite(terms["loss"].detach())
        self.optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    # -- capture ------------------------------------------------------------------------
    def _capture(self) -> None:
        """Warm up on a side stream, capture one step, then undo the warm-up; on failure, stay eager."""
        if not self.static["x"].is_cuda:
            self._fall_back("the batch is not on a CUDA device")
            return
        saved = TrainingState(self.model, self.optimizer)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self._step(self.static)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=side):  # the warm-up's stream: its libraries' handles are set up
                outputs = self._step(self.static)
            self.graph, self.outputs = graph, outputs
        except Exception as e:  # anything capture refuses: train eagerly, say why once
            _wait_for_the_gpu()  # before the state is put back: no warm-up kernel may still be writing
            self._fall_back(f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}")
        finally:
            saved.restore()

    def _fall_back(self, reason: str) -> None:
        self.graph, self.fallback_reason = None, reason
        if self.log:
            self.log(f"cuda graphs: off, training eagerly ({reason})")


def _wait_for_the_gpu() -> None:
    try:
        torch.cuda.synchronize()
    except RuntimeError:  # a sticky CUDA error: the restore below reports it if it matters
        pass


class TrainingState:
    """A copy of a model's weights and buffers, its optimiser's state and the random generators, restorable
    in place (tensors keep their storage, as a captured graph needs). Optimiser state that did not exist when
    the copy was taken (Adam's first step creates it) is reset to zeros: a fresh Adam state."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        self.tensors = [(t, t.detach().clone()) for t in self._model_tensors()]
        self.state = {
            p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for p, s in optimizer.state.items()
        }
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def _model_tensors(self) -> list[Tensor]:
        return [*self.model.parameters(), *self.model.buffers()]

    @torch.no_grad()
    def restore(self) -> None:
        for tensor, copy in self.tensors:
            tensor.copy_(copy)
        for p, state in self.optimizer.state.items():
            before = self.state.get(p)
            for key, value in state.items():
                if not torch.is_tensor(value):
                    if before is not None:
                        state[key] = before[key]
                elif before is not None and key in before:
                    value.copy_(before[key])
                else:
                    value.zero_()
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
