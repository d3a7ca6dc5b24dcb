"""``gon explore``: a local web page to look inside a trained model (needs ``pip install 'gon[explore]'``).

The page runs on this machine only: it binds 127.0.0.1 unless told otherwise, sends no
analytics, makes no share link and loads nothing from elsewhere (Gradio ships its scripts and
fonts). :mod:`gon.explore.session` is the model side, :mod:`gon.explore.media` how signals are
shown, :mod:`gon.explore.app` the page.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before Gradio is imported: no telemetry, no version check

import gradio as gr  # noqa: E402

from gon.explore.app import CSS, build_app  # noqa: E402
from gon.explore.session import Examples, Explorer  # noqa: E402

#: the largest upload the page accepts
MAX_UPLOAD = "20mb"


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int | None = None) -> gr.Blocks:
    """Serve the page on ``host``:``port`` (None: the first free port from 7860) in a thread.

    The returned app's ``local_url`` is the page; ``block_thread()`` waits for Ctrl-C, ``close()`` stops it.
    """
    demo = build_app(explorer).queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        quiet=True,
        show_error=True,  # a bad API call is answered with what was wrong, not {"error": null}
        prevent_thread_lock=True,
        max_file_size=MAX_UPLOAD,
        footer_links=["api", "settings"],
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        css=CSS,
    )
    return demo


__all__ = ["Examples", "Explorer", "build_app", "serve"]
