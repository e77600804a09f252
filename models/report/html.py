"""A report as one self-contained HTML page: its Markdown rendered to HTML (Python-Markdown
with tables and fenced code), the style inlined, every figure embedded as a ``data:`` URI.

The page needs no other file, no network and no JavaScript: it opens offline, from a mail
attachment or an archive, exactly as written. Its Content-Security-Policy allows nothing
but inline style and ``data:`` images, so a browser refuses (and reports) anything else.
"""
from __future__ import annotations

import base64
import html
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from ...errors import UserError
from ...files import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Resolution of figures given as matplotlib Figures (what `systolab compare` saves its PNGs at).
FIGURE_DPI = 110
#: Markdown extensions: GitHub-style tables, ``` code blocks, lists as written, heading ids.
MARKDOWN_EXTENSIONS = ("tables", "fenced_code", "sane_lists", "toc")
#: Only inline style and embedded images: nothing to fetch, nothing to run.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# a table cell that holds one number: 1,258 / -3.4e-05 / 32.9 % / $5,831 / 1.4x
_NUMBER = re.compile(r"[-+]?\$?(\d[\d,]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*(%|x|×)?")
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1b1f24; background: #fff; max-width: 1100px; margin: 2em auto; padding: 0 1.5em; }
h1, h2, h3 { line-height: 1.25; margin: 1.4em 0 0.5em; }
h1 { font-size: 1.8em; border-bottom: 2px solid #d0d7de; padding-bottom: 0.2em; }
h2 { font-size: 1.35em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.15em; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
code { background: #f3f4f6; padding: 0.1em 0.3em; border-radius: 3px; }
pre { background: #f6f8fa; padding: 0.8em 1em; overflow-x: auto; border-radius: 4px; }
pre code { background: none; padding: 0; }
.table-wrap { overflow-x: auto; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 0.9em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
td.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) { background: #f8f9fa; }
figure { margin: 1.2em 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
figcaption { font-size: 0.9em; color: #57606a; margin-top: 0.3em; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10.5pt; }
  .table-wrap { overflow: visible; }
  h1, h2, h3 { break-after: avoid; }
  figure, tr, pre { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _figure_bytes(name: str, figure: object) -> tuple[bytes, str]:
    """(image bytes, MIME type) of one figure: a matplotlib Figure saved as PNG, or an
    image file (PNG, JPEG, GIF or SVG) read as it is."""
    if hasattr(figure, "savefig"):
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=FIGURE_DPI)
        return buf.getvalue(), "image/png"
    if not isinstance(figure, (str, Path)):
        raise TypeError(f"figures: {name!r} must be a matplotlib Figure or an image file's path, "
                        f"not {type(figure).__name__}")
    path = Path(figure)
    if not path.is_file():
        raise UserError(f"figures: no such image file for {name!r}: {path}", parameter="figures")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"figures: cannot read {path} ({name!r}): {exc.strerror}", parameter="figures") from None
    for magic, mime in _IMAGE_TYPES:
        if data.startswith(magic):
            return data, mime
    head = data[:1024].lstrip().lower()
    if (head.startswith(b"<?xml") or head.startswith(b"<svg")) and b"<svg" in head:
        return data, "image/svg+xml"
    raise UserError(f"figures: {path} ({name!r}) is not a PNG, JPEG, GIF or SVG image", parameter="figures")


def _caption(name: str, alt: str, title: str) -> str:
    """The figure's caption: the Markdown image's title, else its alt text, else (when the
    alt text is just the file name) the file name in words: ``latency_per_layer.png`` ->
    "Latency per layer"."""
    text = title or alt
    if text and text != name:
        return text
    words = re.sub(r"[_\-]+", " ", Path(name).stem).strip()
    return words[:1].upper() + words[1:] if words else name


def _slug(name: str) -> str:
    return "fig-" + (re.sub(r"[^a-z0-9]+", "-", Path(name).stem.lower()).strip("-") or "figure")


class _EmbedFigures(Treeprocessor):
    """Replaces each image by a ``<figure>`` with the image embedded, an id, alt text and a
    caption, wraps each table in a horizontally scrolling box and marks numeric cells."""

    def __init__(self, md: markdown.Markdown, uris: Mapping[str, str]) -> None:
        super().__init__(md)
        self.uris = uris
        self.used: list[str] = []
        self.unknown: list[str] = []

    def run(self, root: ET.Element) -> None:
        for parent in list(root.iter()):
            for index, child in enumerate(list(parent)):
                if child.tag == "td" and _NUMBER.fullmatch((child.text or "").strip()) and len(child) == 0:
                    child.set("class", "num")          # numbers right-aligned, so their digits line up
                elif child.tag == "table":
                    box = ET.Element("div", {"class": "table-wrap"})
                    box.tail, child.tail = child.tail, None
                    parent.remove(child)
                    box.append(child)
                    parent.insert(index, box)
                elif child.tag == "p" and len(child) == 1 and child[0].tag == "img" and not (child.text or "").strip() \
                        and not (child[0].tail or "").strip():
                    self._embed(parent, index, child, child[0])
                elif child.tag == "img":
                    self._embed(parent, index, child, child)

    def _embed(self, parent: ET.Element, index: int, replaced: ET.Element, img: ET.Element) -> None:
        src = img.get("src", "")
        name = src[2:] if src.startswith("./") else src
        if name not in self.uris:
            self.unknown.append(src)
            return
        self.used.append(name)
        ident = _slug(name) + (f"-{self.used.count(name)}" if self.used.count(name) > 1 else "")
        caption = _caption(name, img.get("alt", ""), img.get("title", ""))
        fig = ET.Element("figure", {"id": ident})
        ET.SubElement(fig, "img", {"src": self.uris[name], "alt": caption, "data-name": name})
        ET.SubElement(fig, "figcaption").text = caption
        fig.tail = replaced.tail
        parent.remove(replaced)
        parent.insert(index, fig)


class _EmbedExtension(Extension):
    def __init__(self, uris: Mapping[str, str]) -> None:
        super().__init__()
        self.uris = uris
        self.used: list[str] = []
        self.unknown: list[str] = []

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        processor = _EmbedFigures(md, self.uris)
        self.used, self.unknown = processor.used, processor.unknown
        md.treeprocessors.register(processor, "systolab-embed-figures", 5)   # after the inline images (20)


def _to_html(text: str, uris: Mapping[str, str]) -> tuple[str, _EmbedExtension]:
    ext = _EmbedExtension(uris)
    return markdown.markdown(text, extensions=[*MARKDOWN_EXTENSIONS, ext], output_format="html"), ext


def render_html(*, title: str, markdown_text: str, figures: Mapping[str, Figure | str | Path] | None = None) -> str:
    """The self-contained page as HTML text (figures embedded, inline style, no script),
    without writing it: the text :func:`write_html_report` writes."""
    if not isinstance(title, str) or not title.strip():
        raise UserError("title: give the page a title (non-empty text)", parameter="title")
    if not isinstance(markdown_text, str):
        raise TypeError(f"markdown_text must be text (str), not {type(markdown_text).__name__}")
    figures = dict(figures or {})
    for name in figures:
        if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name:
            raise UserError(f"figures: {name!r} is not a file name (the name the Markdown shows it by, "
                            "e.g. 'roofline.png')", parameter="figures")
    uris = {}
    for name, figure in figures.items():
        data, mime = _figure_bytes(name, figure)
        uris[name] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    body, ext = _to_html(markdown_text, uris)
    if ext.unknown:
        raise UserError(f"figures: the report shows {', '.join(map(repr, ext.unknown))} but no figure of that name "
                        f"was given (given: {', '.join(figures) or 'none'})", parameter="figures")
    rest = [name for name in figures if name not in ext.used]
    if rest:
        # figures the text does not show still belong on the page: after it, in the order given
        more, _ = _to_html("## Figures\n\n" + "\n\n".join(f"![{name}]({name})" for name in rest) + "\n", uris)
        body += "\n" + more
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="systolab">\n<link rel="icon" href="data:,">\n<title>{html.escape(title.strip())}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def write_html_report(path: str | Path, *, title: str, markdown_text: str,
                      figures: Mapping[str, Figure | str | Path] | None = None) -> Path:
    """Write a report as one self-contained HTML page at ``path`` (atomically) and return
    its absolute path.

    ``markdown_text`` is rendered with tables, fenced code, lists and heading ids.
    ``figures`` maps a file name to a matplotlib ``Figure`` (saved as PNG at
    :data:`FIGURE_DPI` dots per inch) or an image file (PNG, JPEG, GIF or SVG). Each image
    the Markdown shows by such a name (``![alt](roofline.png)``) becomes a ``<figure>``
    with the image embedded as a base64 ``data:`` URI, an ``id`` (``fig-roofline``), alt
    text and a caption (the image's title, else its alt text, else its file name in words);
    figures the text does not show follow it under "Figures". The page refers to no other
    file and no URL and runs no script.

    Raises :class:`UserError` (parameter ``figures``) for a figure file that is missing or
    not an image, or an image in the Markdown that no figure provides; ``title`` for an
    empty title.
    """
    text = render_html(title=title, markdown_text=markdown_text, figures=figures)
    if str(path).strip() == "":
        raise UserError("path: give the page a file name, e.g. report.html", parameter="path")
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise UserError(f"path: {path} is a folder; give the page a file name, e.g. report.html", parameter="path")
    try:
        return atomic_write_text(target, text)
    except OSError as exc:
        raise UserError(f"path: cannot write {path}: {exc.strerror}", parameter="path") from None
