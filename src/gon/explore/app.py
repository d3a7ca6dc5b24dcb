"""The explorer page: a Gradio app over an :class:`~gon.explore.session.Explorer`.

Three tabs, each also an API endpoint (``gradio_client`` or "Use via API" at the page's foot):

    /reconstruct  (test image, upload)            -> model input, reconstruction, latent bars, note
    /render       (test image, upload, resolution) -> bicubic upscale and the render (implicit models only)
    /sample       (count, temperature, seed)        -> samples
    /interpolate  (image A, upload A, image B, upload B, position, steps) -> image at the position, strip, note

An upload, when given, is used instead of the chosen test image. Every problem a user can fix is
an error box on the page (``gr.Error``) or a note, never a stack trace.
"""

from __future__ import annotations

import functools
import sys
import traceback

import gradio as gr
import pandas as pd
import torch

from gon.core.errors import GonError
from gon.explore.media import medium_for
from gon.explore.session import MAX_SAMPLES, MAX_STEPS, Explorer
from gon.report.images import upscale
from gon.sampling import is_variational

#: the page's own CSS: pictures of a few pixels stay crisp when the browser scales them
CSS = "img { image-rendering: pixelated; }"


def shown(fn):
    """Run a page event: a GonError becomes an error box; anything else too, with its traceback in the terminal."""

    @functools.wraps(fn)
    def event(*args):
        try:
            return fn(*args)
        except GonError as e:  # a refused request is the user's to fix: a message on the page, no terminal traceback
            raise gr.Error(str(e), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(
                f"unexpected {type(e).__name__}: {e} (details in the terminal running gon explore)",
                print_exception=False,
            ) from None

    return event


def header(explorer: Explorer, medium) -> str:
    model = explorer.model
    trained = (model.training_data or {}).get("dataset")
    lines = [
        f"## gon explore: {type(model).__name__}",
        f"`{explorer.source}` · {explorer.parameters:,} parameters · latent size {explorer.latent_dim} · "
        f"{medium.describe}" + (f" · trained on {trained}" if trained else ""),
    ]
    return "\n\n".join(lines + [f"> {note}" for note in explorer.notes])


def build_app(explorer: Explorer) -> gr.Blocks:
    """The page for ``explorer``'s model; ``launch`` it (see :func:`gon.explore.serve`)."""
    medium = medium_for(explorer.model)
    examples = explorer.examples
    choices = [(name, i) for i, name in enumerate(examples.names)] if examples else []

    def picker(label: str, default: int) -> tuple[gr.Dropdown, gr.Image]:
        """A test image to choose and an upload that, when present, is used instead."""
        value = choices[min(default, len(choices) - 1)][1] if choices else None
        pick = gr.Dropdown(choices, value=value, label=f"{label}: test {medium.name}", visible=bool(choices))
        return pick, medium.upload(f"{label}: or upload your own")

    def chosen(index, upload) -> tuple[torch.Tensor, list[str]]:
        if upload is not None:
            return medium.from_upload(upload)
        return explorer.example(index), []

    def noted(notes: list[str], extra: str = "") -> str:
        if notes:
            gr.Warning("upload " + "; ".join(notes))
        return " · ".join(([f"upload {'; '.join(notes)}"] if notes else []) + ([extra] if extra else []))

    def picked(selection: gr.SelectData):
        return selection.index, None  # the gallery's image, and no upload to override it

    @shown
    def reconstruct(index, upload):
        x, notes = chosen(index, upload)
        z = explorer.latents(x)
        bars = pd.DataFrame({"dimension": [f"{i:02d}" for i in range(z.shape[1])], "value": z[0].tolist()})
        extra = f"latent norm {z[0].norm():.3g}"
        if (label := explorer.classify(x)) is not None:
            extra += f" · classified as **{label}**"
        return *medium.show(x), *medium.show(explorer.decode(z)), bars, noted(notes, extra)

    @shown
    def render(index, upload, zoom):
        size = medium.zoom_size(zoom)
        x, _ = chosen(index, upload)
        rendered = explorer.render(explorer.latents(x), size)
        return *medium.show(upscale(x, size)), *medium.show(rendered)

    @shown
    def draw(n, temperature, seed):
        drawn = explorer.samples(n, temperature, seed)  # checks n, temperature and seed
        source = "its prior N(0, I)" if is_variational(explorer.model) else "the normal fitted to its training latents"
        return *medium.show(drawn), f"{len(drawn)} draws from {source} at temperature {temperature:g}, seed {int(seed)}"

    @shown
    def interpolate(index_a, upload_a, index_b, upload_b, t, steps):
        a, notes_a = chosen(index_a, upload_a)
        b, notes_b = chosen(index_b, upload_b)
        at_t, strip = explorer.interpolate(a, b, t, steps)
        notes = [f"A: {n}" for n in notes_a] + [f"B: {n}" for n in notes_b]
        return *medium.show(at_t), *medium.show(strip, nrow=len(strip)), noted(notes)

    with gr.Blocks(title=f"gon explore: {type(explorer.model).__name__}", analytics_enabled=False) as demo:
        gr.Markdown(header(explorer, medium))
        with gr.Tab("Reconstruct"):
            with gr.Row():
                with gr.Column(scale=2):
                    pick, upload = picker("input", 0)
                    if examples:
                        gallery = gr.Gallery(
                            [(medium.thumbnail(x[None]), name) for x, name in zip(examples.images, examples.names)],
                            label=f"{examples.dataset}: click one to use it",
                            columns=3,
                            height=260,
                            allow_preview=False,
                            object_fit="contain",
                        )
                        gallery.select(picked, None, [pick, upload], api_name=False)
                with gr.Column(scale=3):
                    with gr.Row():
                        with gr.Column(min_width=160):
                            seen = medium.widgets("what the model sees", height=240, elem_id="seen")
                        with gr.Column(min_width=160):
                            recon = medium.widgets("reconstruction", height=240, elem_id="reconstruction")
                    note = gr.Markdown()
            bars = gr.BarPlot(
                x="dimension", y="value", label="latent (gradient at the origin)", height=240, elem_id="latent"
            )
            gr.on([pick.change, upload.change, demo.load], reconstruct, [pick, upload], [*seen, *recon, bars, note],
                  api_name="reconstruct")  # fmt: skip
            if explorer.zooms:
                low, high, default = medium.zoom_range()
                zoom = gr.Slider(low, high, value=default, step=1, label=medium.zoom_label)
                with gr.Row():
                    with gr.Column():
                        baseline = medium.widgets(f"the input, {medium.baseline}", elem_id="baseline")
                    with gr.Column():
                        rendered = medium.widgets("the implicit GON's render", elem_id="render")
                gr.on([pick.change, upload.change, zoom.release, demo.load], render,
                      [pick, upload, zoom], [*baseline, *rendered], api_name="render")  # fmt: skip
        with gr.Tab("Sample"):
            with gr.Row():
                count = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="samples")
                temperature = gr.Slider(0, 2, value=1, step=0.05, label="temperature (spread of the latent draws)")
                seed = gr.Number(0, precision=0, minimum=0, label="seed")
                button = gr.Button("Draw", variant="primary")
            samples = medium.widgets("samples", elem_id="samples")
            sample_note = gr.Markdown()
            gr.on([button.click, count.release, temperature.release, seed.submit, demo.load], draw,
                  [count, temperature, seed], [*samples, sample_note], api_name="sample")  # fmt: skip
        with gr.Tab("Interpolate"):
            with gr.Row():
                with gr.Column():
                    pick_a, upload_a = picker("A", 0)
                with gr.Column():
                    pick_b, upload_b = picker("B", 1)
            with gr.Row():
                t = gr.Slider(0, 1, value=0.5, step=0.01, label="position between A and B (slerp)")
                steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="steps in the strip")
            with gr.Row():
                with gr.Column():
                    at_t = medium.widgets("at the position", height=240, elem_id="at-position")
                with gr.Column(scale=3):
                    strip = medium.widgets("A, the slerp from A to B, B", elem_id="strip")
                    interp_note = gr.Markdown()
            gr.on(
                [pick_a.change, upload_a.change, pick_b.change, upload_b.change, t.change, steps.release, demo.load],
                interpolate,
                [pick_a, upload_a, pick_b, upload_b, t, steps],
                [*at_t, *strip, interp_note],
                api_name="interpolate",
                trigger_mode="always_last",
            )
    return demo
