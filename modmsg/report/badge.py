"""badge.svg: a shields.io-style flat badge, "modify message | openai MUST+SHOULD: pass".

Built with ElementTree, so every text and attribute is XML-escaped; widths come from approximate Verdana
11px character widths (close enough for a badge; no font files are read).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from modmsg.report import text, view
from modmsg.results import Outcome, RunResult

SVG_NS = "http://www.w3.org/2000/svg"
LABEL = "modify message"
COLOURS = {"green": "#2e8540", "yellow": "#b08800", "red": "#cb2431", "grey": "#6a737d", "blue": "#0969da"}
# Approximate advance widths (px) of Verdana at 11px, by character class; wide glyphs default to 7.5.
_WIDTHS = {
    **dict.fromkeys("ijl|!.,:;'`", 3.2),
    **dict.fromkeys("frt()[]/\\-", 4.6),
    **dict.fromkeys(" ", 3.9),
    **dict.fromkeys("abcdeghknopqsuvxyz0123456789+?_=*<>#$", 6.9),
    **dict.fromkeys("ABCDEFGHIJKLNOPQRSTUVXYZ&", 7.8),
    **dict.fromkeys("mwMW%@", 10.2),
}
PADDING = 6.0  # each side of each half


@dataclass(frozen=True)
class Badge:
    label: str
    message: str
    colour: str  # a key of COLOURS


def text_width(value: str) -> float:
    return sum(_WIDTHS.get(char, 7.5) for char in value)


def badge_for(run: RunResult) -> Badge:
    """The claim in a few words; a waiver never shows the pass colour, and only a claim is green or yellow."""
    product = view.product(run)
    profile = text.shorten(f"{product} · {run.meta.profile}" if product else run.meta.profile, 60)
    failing = sum(r.outcome is Outcome.FAIL for r in run.requirements)
    judged = len(view.judged(run))
    status = run.claim.status
    if status == "conformant" and run.claim.level:
        colour = "green" if run.claim.level == "MUST+SHOULD" else "yellow"
        return Badge(LABEL, f"{profile} {run.claim.level}: pass", colour)
    if status == "waived":
        return Badge(LABEL, f"{profile}: not conformant, {run.claim.waivers} waived", "blue")
    if status in ("partial", "interrupted", "no-claim"):
        word = {"partial": "partial", "interrupted": "interrupted", "no-claim": "no claim"}[status]
        return Badge(LABEL, f"{profile}: {word}" + (f", {failing} failing" if failing else ""), "grey")
    return Badge(LABEL, f"{profile}: {failing}/{judged} failing", "red")


def render_badge(badge: Badge) -> str:
    left_w = round(text_width(badge.label) + 2 * PADDING)
    right_w = round(text_width(badge.message) + 2 * PADDING)
    width = left_w + right_w
    accessible = f"{badge.label}: {badge.message}"
    # Plain tags plus an explicit xmlns attribute: the output is namespaced SVG, and ElementTree's global
    # namespace registry is left alone.
    svg = ET.Element("svg", xmlns=SVG_NS, width=str(width), height="20", role="img")
    svg.set("aria-label", accessible)
    ET.SubElement(svg, "title").text = accessible
    gradient = ET.SubElement(svg, "linearGradient", id="s", x2="0", y2="100%")
    ET.SubElement(gradient, "stop", {"offset": "0", "stop-color": "#bbb", "stop-opacity": ".1"})
    ET.SubElement(gradient, "stop", {"offset": "1", "stop-opacity": ".1"})
    clip = ET.SubElement(svg, "clipPath", id="r")
    ET.SubElement(clip, "rect", width=str(width), height="20", rx="3", fill="#fff")
    shapes = ET.SubElement(svg, "g", {"clip-path": "url(#r)"})
    ET.SubElement(shapes, "rect", width=str(left_w), height="20", fill="#555")
    ET.SubElement(shapes, "rect", x=str(left_w), width=str(right_w), height="20", fill=COLOURS[badge.colour])
    ET.SubElement(shapes, "rect", width=str(width), height="20", fill="url(#s)")
    texts = ET.SubElement(
        svg,
        "g",
        {
            "fill": "#fff",
            "text-anchor": "middle",
            "font-family": "Verdana,Geneva,DejaVu Sans,sans-serif",
            "font-size": "11",
            "aria-hidden": "true",
        },
    )
    for x, value in ((left_w / 2, badge.label), (left_w + right_w / 2, badge.message)):
        shadow = {"x": f"{x:.1f}", "y": "15", "fill": "#010101", "fill-opacity": ".3"}
        ET.SubElement(texts, "text", shadow).text = value
        ET.SubElement(texts, "text", x=f"{x:.1f}", y="14").text = value
    return ET.tostring(svg, encoding="unicode") + "\n"


def write_badge(run: RunResult, path: Path) -> Path:
    path.write_text(render_badge(badge_for(run)), encoding="utf-8")
    return path
