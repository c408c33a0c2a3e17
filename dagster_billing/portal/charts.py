"""Charts of the portal: SVG images rendered on the server by pygal (one request each, cached
per snapshot), shown with <img alt> and followed on the page by a table of the same numbers.

pygal (Kozea, who also make WeasyPrint) draws a chart in ~5-25 ms of CPU; Vega-Lite through
vl-convert took 130-250 ms per chart here, and 1.4 s for the first one in a process (decision
76). Opened on its own, a chart is an image named by its <title> and described by its <desc>
(role="img"); pygal's config <script> (for tooltips we do not load) and comments are dropped.
Every number a chart shows is also in the table that follows it, exact; the chart itself is
drawn from floats, which only place pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pygal
from pygal.etree import etree
from pygal.style import Style

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
STYLE = Style(
    background="transparent",
    plot_background="#ffffff",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#52606d",
    colors=("#2563eb", "#9ca3af", "#059669", "#d97706", "#7c3aed", "#dc2626"),
    font_family=FONT,
    title_font_family=FONT,
    label_font_family=FONT,
    major_label_font_family=FONT,
    legend_font_family=FONT,
    value_font_family=FONT,
    tooltip_font_family=FONT,
    no_data_font_family=FONT,
    title_font_size=15,
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    no_data_font_size=16,
)
COMMON = {
    "style": STYLE,
    "js": [],
    "disable_xml_declaration": True,
    "explicit_size": False,
    "width": 960,
    "height": 260,
    "margin": 8,
    "margin_right": 48,
    "spacing": 8,
    "show_y_guides": True,
    "no_data_text": "No usage",
    "pretty_print": False,
}


def tick_decimal(tick: float) -> Decimal:
    """An axis tick or bar value pygal hands a formatter (a float) as the decimal it prints as."""
    return Decimal(repr(tick))


def _pixels(values: Sequence[Decimal | None]) -> list[float | None]:
    return [None if value is None else float(value) for value in values]


def _accessible(chart: pygal.graph.graph.Graph, title: str, desc: str) -> str:
    tree = chart.render_tree()
    for script in tree.findall(f"{{{SVG_NS}}}script"):
        tree.remove(script)
    for comment in [node for node in tree if node.tag is etree.Comment]:
        tree.remove(comment)
    tree.set("role", "img")
    tree.set("aria-labelledby", "chart-title chart-desc")
    desc_element = etree.Element(f"{{{SVG_NS}}}desc", id="chart-desc")
    desc_element.text = desc
    title_element = etree.Element(f"{{{SVG_NS}}}title", id="chart-title")
    title_element.text = title
    tree.insert(0, desc_element)
    tree.insert(0, title_element)
    return etree.tostring(tree, encoding="unicode")


def daily_line(
    *,
    title: str,
    desc: str,
    days: Sequence[str],
    values: Sequence[Decimal | None],
    value_formatter,
) -> str:
    """One series over days (a meter's daily usage)."""
    chart = pygal.Line(
        **COMMON,
        fill=True,
        show_dots=len(days) <= 31,
        dots_size=2,
        show_legend=False,
        show_minor_x_labels=False,
        x_labels_major_count=6,
        truncate_label=-1,
        value_formatter=value_formatter,
        include_x_axis=True,
    )
    chart.title = title
    chart.x_labels = list(days)
    chart.add(title, _pixels(values))
    return _accessible(chart, title, desc)


def compare_bars(
    *,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal | None]]],
    value_formatter,
) -> str:
    """Grouped horizontal bars: one group per label, one bar per series (this period, last)."""
    chart = pygal.HorizontalBar(
        **{**COMMON, "height": 90 + 34 * len(labels)},
        show_legend=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=len(series),
        truncate_label=-1,
        value_formatter=value_formatter,
    )
    chart.title = title
    chart.x_labels = list(labels)
    for name, values in series:
        chart.add(name, _pixels(values))
    return _accessible(chart, title, desc)
