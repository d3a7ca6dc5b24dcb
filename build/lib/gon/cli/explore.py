"""``gon explore MODEL``: a local web page to look inside a trained model (Gradio; pip install 'gon[explore]').

Pick a test image of the model's training data (when it is on this machine) or upload one, and
see its latent as bars and its reconstruction; draw samples with a temperature and a seed;
slerp between two images; with an implicit GON, render at any resolution (zoom). The page binds
127.0.0.1 (this machine only) unless --host says otherwise, sends no analytics and makes no share
link. Stop it with Ctrl-C.

example:
  gon explore runs/implicit-fashion-mnist             # then open http://127.0.0.1:7860
  gon explore runs/gon-fashion-mnist/model --port 8000 --examples 64
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from gon.cli import COMMANDS
from gon.cli.infer import add_data_arguments, add_model_argument, ensure_latent_gaussian, load_images, load_model, note
from gon.core.errors import GonError, Stopped

DEFAULT_PORT = 7860  # Gradio's; the next free one is taken when it is busy and --port is not given
MAX_EXAMPLES = 256


def add_parser(commands) -> None:
    p = commands.add_parser(
        "explore",
        help=COMMANDS["explore"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    add_data_arguments(p)
    p.add_argument("--examples", type=int, default=32, help="test images offered on the page (default 32)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help=f"port to serve on (default: the first free one from {DEFAULT_PORT})")
    p.set_defaults(run=run)


def check_address(host: str, port: int | None) -> None:
    """Fail now, in one line, on a host that does not resolve or a port that is out of range or taken."""
    if port is not None and not 1 <= port <= 65535:
        raise GonError(f"--port must be from 1 to 65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port or DEFAULT_PORT, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise GonError(f"--host {host!r} is not an address of this machine: {e}") from None
    if port is None:
        return
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: a closing socket is no conflict
        try:
            s.bind(address)
        except OSError as e:
            raise GonError(f"--port {port}: cannot serve on {host}:{port} ({e.strerror or e}); pick another") from None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def explorer_for(args: argparse.Namespace):
    """The model of ``args.model`` with its test images and latent statistics, when they are on this machine."""
    try:
        from gon.explore import Examples, Explorer
        from gon.explore.media import medium_for
    except ImportError as e:
        raise GonError(f"gon explore needs Gradio ({e}): pip install 'gon[explore]'") from None
    from gon.sampling import is_variational

    if not 1 <= args.examples <= MAX_EXAMPLES:
        raise GonError(f"--examples must be from 1 to {MAX_EXAMPLES}, got {args.examples}")
    model = load_model(args)
    medium_for(model)  # a model the page cannot show fails before any data is read
    explorer = Explorer(model, source=args.model)
    try:  # the page never waits for a download
        data = load_images(model, args, limit=args.examples, download=False)
        names = [f"#{i}" for i in range(len(data))]
        if data.labels is not None and data.classes:
            names = [f"#{i} · {data.classes[label]}" for i, label in enumerate(data.labels.tolist())]
        explorer.examples = Examples(data.images, names, f"{data.name} ({args.split} split)", data.classes)
    except GonError as e:
        explorer.notes.append(f"No test images to pick (upload your own): {e}")
    if not is_variational(model) and model.latent_gaussian is None:
        try:
            ensure_latent_gaussian(model, args, download=False)
        except GonError as e:
            explorer.notes.append(f"Sampling is off: the model has no latent statistics and {e}")
    return explorer


def run(args: argparse.Namespace) -> int:
    check_address(args.host, args.port)
    explorer = explorer_for(args)
    from gon.explore import serve

    for line in explorer.notes:
        note(f"note: {line}")
    if not is_loopback(args.host):
        note(f"note: serving on {args.host}: anyone who can reach this machine can use the page")
    try:
        demo = serve(explorer, args.host, args.port)
    except OSError as e:
        raise GonError(f"cannot serve on {args.host}:{args.port or DEFAULT_PORT}: {e}") from None
    note(f"gon explore: {type(explorer.model).__name__} from {args.model} on {demo.local_url} (Ctrl-C to stop)")
    sys.stdout.flush()  # the address shows at once, also when the output goes to a pipe or a log
    try:
        demo.block_thread()
    except Stopped:  # Ctrl-C or SIGTERM is how the server is meant to stop: close it, a clean exit
        demo.close()
    return 0
