"""Records demo.gif from the real dashboard on the simulated Jetson (no hand-drawn frames).

Drives the app with Textual's Pilot at 100x30: picks matmul, starts it, lets the live panels move,
exports, and stops. Every ~0.5 s it takes ``app.export_screenshot()`` (SVG), turns it into a PNG
with cairosvg, and Pillow assembles the GIF.

    pip install cairosvg pillow        # plus the system cairo library and DejaVu fonts
    python scripts/make_demo_gif.py [--out demo.gif] [--keep-frames DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (100, 30)
FRAME_S = 0.5
SCALE = 0.8  # of the SVG's pixel size: readable, and the GIF stays small
MONO = "DejaVu Sans Mono"
BRAILLE_FONT = "DejaVu Sans"  # DejaVu Sans Mono has no braille, which plotext draws with


def svg_to_png(svg: str) -> bytes:
    """Textual's SVG asks for Fira Code from the web: use local fonts, braille from DejaVu Sans."""
    import cairosvg

    svg = re.sub(r"@font-face \{.*?\}", "", svg, flags=re.S)
    svg = svg.replace("Fira Code, monospace", MONO)
    svg = re.sub(r"<text ([^>]*)>([^<]*[\u2800-\u28ff][^<]*)</text>",
                 lambda m: f'<text style="font-family: {BRAILLE_FONT}" {m.group(1)}>'
                           f"{m.group(2)}</text>", svg)
    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=SCALE)
    assert isinstance(png, bytes)
    return png


async def record(out_dir: Path) -> list[str]:
    from carbontop.config import Settings
    from carbontop.logs import setup_logging
    from carbontop.model import Phase
    from carbontop.registry import list_workloads
    from carbontop.session_factory import build_engine
    from carbontop.tui.app import CarbontopApp

    setup_logging(out_dir / "carbontop.log")
    os.environ.setdefault("CARBONTOP_LOCK_DIR", str(out_dir))
    settings = Settings(gpu_source="sim", seed=1, interval_s=0.25, country="FRA",
                        output_dir=out_dir, duration_s=20.0).validated()
    app = CarbontopApp(build_engine(settings), list_workloads(), settings,
                       params={"matmul": {"size": "512", "warmup_s": "1.5"}})
    frames: list[str] = []

    async def frame(pilot: object, seconds: float = FRAME_S) -> None:
        start = time.monotonic()
        frames.append(app.export_screenshot())  # PNGs later: keep the CPUs for the workload
        await pilot.pause(max(0.0, seconds - (time.monotonic() - start)))  # type: ignore[attr-defined]

    try:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            deadline = time.monotonic() + 20
            while not app.opened and time.monotonic() < deadline:
                await pilot.pause(0.2)
            for _ in range(6):  # idle monitoring
                await frame(pilot)
            names = [e.name for e in app.workloads]
            await pilot.press("home")
            for _ in range(names.index("matmul")):
                await pilot.press("down")
                await frame(pilot, 0.25)
            await pilot.press("s")
            for _ in range(60):  # loading, warm-up, measuring
                await frame(pilot)
                snap = app.engine.snapshot()
                if snap.session is not None and snap.session.phase is Phase.MEASURING \
                        and snap.session.measuring_elapsed_s > 6:
                    break
            await pilot.press("e")
            for _ in range(6):
                await frame(pilot)
            await pilot.press("x")
            for _ in range(6):
                await frame(pilot)
            await pilot.press("m")
            for _ in range(5):
                await frame(pilot)
            await pilot.press("m")
            await pilot.press("question_mark")
            for _ in range(4):
                await frame(pilot)
            await pilot.press("escape")
            await frame(pilot)
    finally:
        app.close_engine()
    return frames


def assemble(frames: list[bytes], out: Path) -> None:
    from PIL import Image

    images = [Image.open(io.BytesIO(f)).convert("RGB") for f in frames]
    # One palette for every frame, from a strip of frames across the recording (screens differ).
    picks = images[:: max(1, len(images) // 6)]
    w, h = picks[0].size
    strip = Image.new("RGB", (w, h * len(picks)))
    for i, im in enumerate(picks):
        strip.paste(im, (0, h * i))
    palette = strip.quantize(colors=192, method=Image.Quantize.MEDIANCUT)
    quantized = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    durations = [int(FRAME_S * 1000)] * len(quantized)
    durations[-1] = 2500
    quantized[0].save(out, save_all=True, append_images=quantized[1:], duration=durations,
                      loop=0, optimize=True, disposal=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "demo.gif")
    parser.add_argument("--keep-frames", type=Path, metavar="DIR",
                        help="also save every frame as a PNG here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="carbontop-demo-") as tmp:
        frames = [svg_to_png(svg) for svg in asyncio.run(record(Path(tmp)))]
    if args.keep_frames:
        args.keep_frames.mkdir(parents=True, exist_ok=True)
        for i, png in enumerate(frames):
            (args.keep_frames / f"frame{i:03d}.png").write_bytes(png)
    assemble(frames, args.out)
    print(f"{args.out}: {len(frames)} frames, {args.out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
