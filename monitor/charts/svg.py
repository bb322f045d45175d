"""A ``Drawing`` as an SVG element to inline in an HTML page: crisp at any zoom, its text
selectable, nothing to fetch."""

from __future__ import annotations

from html import escape

from monitor.charts.layout import Drawing, Point, Polygon, Polyline, Text


def to_svg(drawing: Drawing, *, element_id: str, label: str) -> str:
    """``drawing`` as one ``<svg>`` element with id ``element_id``, described by ``label``
    for screen readers."""
    parts = [
        f'<svg id="{escape(element_id)}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {drawing.width} {drawing.height}" width="{drawing.width}" '
        f'height="{drawing.height}" font-family="system-ui, sans-serif" '
        f'stroke-linejoin="round"><title>{escape(label)}</title>'
    ]
    for shape in drawing.shapes:
        if isinstance(shape, Polygon):
            opacity = f' fill-opacity="{shape.opacity:g}"' if shape.opacity < 1 else ""
            parts.append(
                f'<polygon points="{_points(shape.points)}" fill="{shape.colour}"{opacity}/>'
            )
        elif isinstance(shape, Polyline):
            dash = f' stroke-dasharray="{shape.dash[0]:g} {shape.dash[1]:g}"' if shape.dash else ""
            parts.append(
                f'<polyline points="{_points(shape.points)}" fill="none" stroke="{shape.colour}" '
                f'stroke-width="{shape.width:g}"{dash}/>'
            )
        else:
            parts.append(_text(shape))
    parts.append("</svg>")
    return "".join(parts)


def _text(text: Text) -> str:
    anchor = f' text-anchor="{text.anchor}"' if text.anchor != "start" else ""
    bold = ' font-weight="bold"' if text.bold else ""
    return (
        f'<text x="{text.x:.1f}" y="{text.y:.1f}" font-size="{text.size:g}" '
        f'fill="{text.colour}"{anchor}{bold}>{escape(text.text)}</text>'
    )


def _points(points: tuple[Point, ...]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
