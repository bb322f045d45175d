"""A ``Drawing`` as a PNG (Pillow), for Slack and the console: drawn at twice its size and
scaled down, which smooths the lines and text that Pillow does not anti-alias."""

from __future__ import annotations

import io
import math
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from monitor.charts.layout import Drawing, Point, Polygon, Polyline, Text

SCALE = 2
_ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}


def to_png(drawing: Drawing) -> bytes:
    image = Image.new("RGB", (drawing.width * SCALE, drawing.height * SCALE), "white")
    draw = ImageDraw.Draw(image)
    for shape in drawing.shapes:
        if isinstance(shape, Polygon):
            _polygon(image, draw, shape)
        elif isinstance(shape, Polyline):
            width = max(1, round(shape.width * SCALE))
            for run in _dashes(_scaled(shape.points), shape.dash):
                draw.line(run, fill=shape.colour, width=width, joint="curve")
        else:
            _text(draw, shape)
    out = io.BytesIO()
    image.reduce(SCALE).save(out, "PNG")
    return out.getvalue()


def _polygon(image: Image.Image, draw: ImageDraw.ImageDraw, polygon: Polygon) -> None:
    points = _scaled(polygon.points)
    if polygon.opacity >= 1:
        draw.polygon(points, fill=polygon.colour)
        return
    # translucent: paste the colour through a mask of the polygon's bounding box
    x0, y0 = (math.floor(min(p[i] for p in points)) for i in (0, 1))
    x1, y1 = (math.ceil(max(p[i] for p in points)) + 1 for i in (0, 1))
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon(
        [(x - x0, y - y0) for x, y in points], fill=round(255 * polygon.opacity)
    )
    image.paste(polygon.colour, (x0, y0, x1, y1), mask)


def _text(draw: ImageDraw.ImageDraw, text: Text) -> None:
    draw.text(
        (text.x * SCALE, text.y * SCALE),
        text.text,
        fill=text.colour,
        font=_font(text.size * SCALE),
        anchor=_ANCHORS[text.anchor],
        stroke_width=1 if text.bold else 0,
        stroke_fill=text.colour,
    )


@cache
def _font(size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _scaled(points: tuple[Point, ...]) -> list[Point]:
    return [(x * SCALE, y * SCALE) for x, y in points]


def _dashes(points: list[Point], dash: tuple[float, float] | None) -> list[list[Point]]:
    """The runs of a line that are drawn: all of it, or its dashes."""
    if dash is None:
        return [points]
    on, off = dash[0] * SCALE, dash[1] * SCALE
    runs: list[list[Point]] = []
    run: list[Point] = [points[0]]
    drawing, left = True, on  # in a dash or a gap, and how much of it is left
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        done = 0.0
        while length - done > left:
            done += left
            point = (x0 + (x1 - x0) * done / length, y0 + (y1 - y0) * done / length)
            if drawing:
                runs.append([*run, point])
            run = [point]
            drawing, left = not drawing, off if drawing else on
        left -= length - done
        if drawing:
            run.append((x1, y1))
    if drawing and len(run) > 1:
        runs.append(run)
    return runs
