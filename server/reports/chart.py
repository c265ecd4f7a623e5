"""The trend chart, drawn on the server as inline SVG: no script, no CDN, prints as it shows."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

from server.reports.service import TrendPoint

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 240, 44, 36, 16


def trend_svg(points: list[TrendPoint], t: Callable[[str], str]) -> Markup:
    """Bars: checks done per month (left axis); line: pass rate (right axis, 0-100 %); confirmed above bars."""
    if not points:
        return Markup("")
    top = max(max(p.row.checks for p in points), 1)
    plot_w, plot_h = WIDTH - LEFT - 44, HEIGHT - BOTTOM - TOP
    step = plot_w / len(points)
    bar_w = max(min(step * 0.6, 48), 4)
    parts = [f'<svg class="chart trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(t("trend_chart"))}">',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" class="axis"/>',
             f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" class="tick">{top}</text>',
             f'<text x="{LEFT + plot_w + 4}" y="{TOP + 4}" class="tick">100%</text>',
             f'<text x="{LEFT + plot_w + 4}" y="{TOP + plot_h}" class="tick">0%</text>']
    line = []
    for i, point in enumerate(points):
        x = LEFT + step * i + (step - bar_w) / 2
        h = plot_h * point.row.checks / top
        parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'class="bar" data-label="{escape(point.label)}" data-checks="{point.row.checks}">'
                     f'<title>{escape(point.label)}: {point.row.checks}</title></rect>')
        if point.row.confirmed:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h - h - 3:.1f}" text-anchor="middle" '
                         f'class="count">{point.row.confirmed}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                     f'class="tick">{escape(point.label[2:] if len(points) > 8 else point.label)}</text>')
        if point.row.pass_rate is not None:
            line.append(f"{x + bar_w / 2:.1f},{TOP + plot_h * (1 - point.row.pass_rate):.1f}")
    if line:
        parts.append(f'<polyline points="{" ".join(line)}" class="rate-line"/>')
        parts += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" class="rate-dot"/>' for p in line]
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 4}" class="legend">▮ {escape(t("checks_done"))}  '
                 f'— {escape(t("pass_rate"))}  {escape(t("confirmed_on_bars"))}</text></svg>')
    return Markup("".join(parts))
