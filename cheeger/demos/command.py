"""``cheeger demo similarity | live | dashboard``: argument parsing and dispatch.

:func:`add_demo_parser` registers the ``demo`` subcommand on the ``cheeger`` parser (named by
the ``demo`` line of ``cheeger.cli.COMMANDS``); :func:`run_demo` runs it. Expected errors (an
unreadable image or video, a query outside the image, a missing webcam or run folder, a port in
use) print one line on stderr and return 1, as the other subcommands do; ``--debug`` shows the
traceback.

Example:
    $ cheeger demo similarity frame.png --query 40,240 --out similarity.png
    $ cheeger demo live --source frames/ --frames 50 --out live.gif
    $ cheeger demo dashboard results/runs/camvid/spectral/seed0 --port 8000
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["add_demo_parser", "run_demo"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text}")
    return value


def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``cheeger demo ...`` on the top-level subparsers."""
    from cheeger.demos.live import LIVE_LONG_SIDE
    from cheeger.demos.similarity import SIMILARITY_LONG_SIDE

    demo = subparsers.add_parser(
        "demo", help="interactive demos: similarity map, live similarity, training dashboard",
        description="Demos of the spectral embedding and a live dashboard of a training run.",
    )  # fmt: skip
    kinds = demo.add_subparsers(dest="demo", required=True, metavar="DEMO")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--run", help="use this trained run's decoder features instead of the "
                        "seven handcrafted ones")  # fmt: skip
    common.add_argument("--k", type=_positive, default=8, help="eigenpairs (%(default)s)")
    common.add_argument("--threads", type=_positive, help="torch CPU threads")

    sim = kinds.add_parser("similarity", parents=[common], help="similarity map of one image",
                           description="Colour every pixel of IMAGE by the cosine similarity of "
                           "its spectral embedding to the query pixel's.")  # fmt: skip
    sim.add_argument("image", help="image file")
    sim.add_argument("--query", required=True, help="query pixel ROW,COL in image pixels")
    sim.add_argument("--out", help="write the figure (PNG) here; without it, open a window "
                     "where a click moves the query")  # fmt: skip
    sim.add_argument("--long-side", type=_positive, default=SIMILARITY_LONG_SIDE,
                     help="long side of the working grid (%(default)s)")  # fmt: skip

    live = kinds.add_parser("live", parents=[common], help="similarity map of a stream",
                            description="The similarity map of every frame of a webcam, video "
                            "or folder of images; the last line printed is the frame rate.")
    live.add_argument("--source", required=True,
                      help="webcam index (0), video file or folder of images")  # fmt: skip
    live.add_argument("--query", help="query pixel ROW,COL (default: the frame's centre)")
    live.add_argument("--frames", type=_positive, help="stop after N frames")
    live.add_argument("--out", help="write an animated .gif or a video (.mp4, ...) headless; "
                      "without it, show a window where a click moves the query")  # fmt: skip
    live.add_argument("--long-side", type=_positive, default=LIVE_LONG_SIDE,
                      help="long side of the working grid (%(default)s)")  # fmt: skip
    live.add_argument("--cold", action="store_true",
                      help="no warm start from the previous frame's eigenvectors")

    dash = kinds.add_parser("dashboard", help="live page of a training run",
                            description="Serve a page that shows RUN's curves, latest snapshot "
                            "and solver statistics and refreshes itself while it trains; only "
                            "the run folder's files are served.")  # fmt: skip
    dash.add_argument("run", help="run folder (cheeger train --out)")
    dash.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    dash.add_argument("--port", type=int, default=8000, help="port (%(default)s; 0: any)")
    demo.set_defaults(handler=run_demo)


def _need_display(demo: str) -> None:
    """Refuse a window where there is no display (a headless run would show nothing, forever)."""
    from cheeger.demos.errors import DemoError

    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless:
        raise DemoError(f"no --out and no display (DISPLAY is unset) to show the {demo} window; "
                        "pass --out FILE to run headless")  # fmt: skip


def _features(args: argparse.Namespace):
    from cheeger.demos.features import pixel_features

    if args.run is None:
        return pixel_features
    from cheeger.demos.decoder import DecoderFeatures

    return DecoderFeatures(args.run)


def _similarity(args: argparse.Namespace) -> int:
    from cheeger.demos.similarity import (
        parse_query,
        save_figure,
        show_interactive,
        similarity_figure,
        similarity_map,
    )
    from cheeger.demos.sources import read_image

    query = parse_query(args.query)
    if args.out is None:
        _need_display("similarity")
    image = read_image(args.image)
    result = similarity_map(image, query, long_side=args.long_side, k=args.k,
                            features=_features(args))  # fmt: skip
    if args.out is None:
        show_interactive(image, result, query)
        return 0
    title = f"{os.path.basename(args.image)}, query {query}, grid {result.embedding.size}"
    path = save_figure(similarity_figure(image, result, query, title), args.out)
    print(f"similarity map -> {path}")
    return 0


def _live(args: argparse.Namespace) -> int:
    from cheeger.demos.live import run_live
    from cheeger.demos.similarity import parse_query
    from cheeger.demos.sources import open_source

    query = None if args.query is None else parse_query(args.query)
    if args.out is None:
        _need_display("live")
    run_live(open_source(args.source), query, frames=args.frames, out=args.out,
             show=args.out is None, long_side=args.long_side, k=args.k,
             features=_features(args), warm=not args.cold)  # fmt: skip
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from cheeger.demos.dashboard import DashboardServer

    server = DashboardServer(args.run, args.host, args.port)
    print(f"dashboard of {args.run} at {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Run the chosen demo; expected errors print one line on stderr and return 1."""
    from cheeger.demos.errors import DemoError
    from cheeger.training.errors import TrainingError

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    handlers = {"similarity": _similarity, "live": _live, "dashboard": _dashboard}
    try:
        return handlers[args.demo](args)
    except (DemoError, TrainingError) as exc:
        if args.debug:
            raise
        print(f"cheeger demo {args.demo}: error: {exc}", file=sys.stderr)
        return 1
