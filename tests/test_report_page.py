"""report.html: one self-contained page (write_html_report), checked as written and in a
real headless Chromium (skipped, with the reason, where none is installed)."""
from __future__ import annotations

import io
import re
import time

import pytest
from browser import Browser, PageCheck, find_chromium, page_problems, screenshot_problems
from matplotlib.figure import Figure
from PIL import Image

from systolab.errors import UserError
from systolab.models.report import write_html_report, write_report
from systolab.models.report.chip import get_chip
from systolab.models.report.compare import compare
from systolab.models.report.figures import PLOTS

MARKDOWN = """# A small report

Some text with `code` and a list:

- first
- second

## Numbers

| device | TOPS | W |
| --- | ---: | ---: |
| chip | 123.4 | 350 |
| gpu | 989.0 | 700 |

![Loss over steps](loss.png "Training loss")

```
systolab compare --out out/x
```
"""


def _figure(kind: str) -> Figure:
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    if kind == "line":
        ax.plot(range(10), [x * x for x in range(10)])
    else:
        ax.bar(["a", "b", "c"], [3, 1, 2])
    ax.set_title(kind)
    return fig


@pytest.fixture
def page(tmp_path):
    """A report of two figures: one a Figure the text shows, one a PNG file it does not."""
    png = tmp_path / "bars.png"
    _figure("bars").savefig(png)
    out = tmp_path / "site" / "report.html"
    return write_html_report(out, title="A small <report>", markdown_text=MARKDOWN,
                             figures={"loss.png": _figure("line"), "bars.png": png})


@pytest.fixture(scope="module")
def browser():
    executable, why = find_chromium()
    if executable is None:
        pytest.skip(why)
    with Browser(executable) as b:
        yield b


def test_the_page_embeds_every_figure_and_needs_no_other_file(page, tmp_path):
    text = page.read_text()
    assert page.is_absolute() and page == tmp_path / "site" / "report.html"
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]          # no temporary left beside it
    assert text.count('src="data:image/png;base64,') == 2
    assert re.findall(r'<figure id="([^"]+)"', text) == ["fig-loss", "fig-bars"]
    assert re.findall(r"<figcaption>([^<]*)</figcaption>", text) == ["Training loss", "Bars"]
    assert 'alt="Training loss"' in text and 'alt="Bars"' in text
    # every reference is embedded: no file, no URL, no script
    assert all(v.startswith(("data:", "#")) for v in re.findall(r'(?:src|href)="([^"]*)"', text))
    assert "<script" not in text and "http" not in text.split("</style>")[1]
    assert "<title>A small &lt;report&gt;</title>" in text
    assert '<th style="text-align: right;">TOPS</th>' in text and "<td>chip</td>" in text
    assert '<div class="table-wrap"><table>' in text
    assert re.findall(r'<td[^>]*class="num"[^>]*>([^<]*)</td>', text) == ["123.4", "350", "989.0", "700"]
    assert "<pre><code>systolab compare --out out/x" in text and "<li>second</li>" in text
    assert '<h2 id="numbers">Numbers</h2>' in text and "@media print" in text


def test_svg_and_path_figures_are_embedded_as_they_are(tmp_path):
    svg = tmp_path / "dot.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><circle r="4" cx="5" cy="5"/></svg>')
    text = write_html_report(tmp_path / "r.html", title="t", markdown_text="![a dot](./dot.svg)",
                             figures={"dot.svg": svg}).read_text()
    assert 'src="data:image/svg+xml;base64,' in text and "<figcaption>a dot</figcaption>" in text


@pytest.mark.parametrize("kwargs, parameter, words", [
    ({"figures": {"gone.png": "missing/gone.png"}}, "figures", "gone.png"),
    ({"figures": {"notes.png": "NOTES"}}, "figures", "not a PNG"),
    ({"markdown_text": "![x](other.png)"}, "figures", "'other.png'"),
    ({"figures": {"a/b.png": "NOTES"}}, "figures", "not a file name"),
    ({"title": "  "}, "title", "title"),
    ({"path": "FOLDER"}, "path", "folder"),
])
def test_bad_input_is_a_user_error_naming_it(tmp_path, kwargs, parameter, words):
    (tmp_path / "NOTES").write_text("not an image")
    args = {"path": tmp_path / "r.html", "title": "t", "markdown_text": "text", "figures": None, **kwargs}
    args["figures"] = {k: tmp_path / v for k, v in (args["figures"] or {}).items()}
    if args["path"] == "FOLDER":
        args["path"] = tmp_path
    with pytest.raises(UserError, match=re.escape(words)) as err:
        write_html_report(args.pop("path"), **args)
    assert err.value.parameter == parameter and str(err.value).startswith(parameter)
    assert not (tmp_path / "r.html").exists()


def test_a_figure_shown_twice_gets_two_ids(tmp_path):
    text = write_html_report(tmp_path / "r.html", title="t", markdown_text="![](a.png)\n\ntext\n\n![](a.png)",
                             figures={"a.png": _figure("line")}).read_text()
    assert re.findall(r'<figure id="([^"]+)"', text) == ["fig-a", "fig-a-2"] and "Figures</h2>" not in text


def test_a_figure_of_the_wrong_type_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="figures"):
        write_html_report(tmp_path / "r.html", title="t", markdown_text="", figures={"x.png": 3})


def test_the_page_renders_in_chromium(browser, page):
    start = time.perf_counter()
    check = browser.check(page)
    assert page_problems(check, figures=2) == []
    assert [(i["id"], i["name"]) for i in check.images] == [("fig-loss", "loss.png"), ("fig-bars", "bars.png")]
    # 4x3 inches: the Figure at FIGURE_DPI (110), the file as matplotlib saved it (100 dpi)
    assert [(i["width"], i["height"]) for i in check.images] == [(440, 330), (400, 300)]
    width, height = check.screenshot_size()
    assert width == 1280 and height > 900                                        # the whole page, past one screen
    (page.parent / "screenshot.png").write_bytes(check.screenshot_png)          # kept in pytest's tmp folder
    assert time.perf_counter() - start < 30


BAD_PAGES = {
    "broken image": ('<p>A page with text enough to see.</p><img src="missing.png" alt="gone">',
                     ["'missing.png'", "ERR_FILE_NOT_FOUND"]),
    "console error": ("<p>A page with text enough to see.</p><script>console.error('boom from the page')</script>",
                      ["console: boom from the page", "0 images on the page, expected 1"]),
    "exception": ("<p>A page with text enough to see.</p><script>null.f()</script>", ["uncaught TypeError"]),
}


@pytest.mark.parametrize("name", BAD_PAGES)
def test_the_checker_catches_a_bad_page(browser, tmp_path, name):
    body, expected = BAD_PAGES[name]
    bad = tmp_path / "bad.html"
    bad.write_text(f"<!DOCTYPE html><html><head><title>bad</title></head><body><h1>Bad page</h1>{body}</body></html>")
    problems = "\n".join(page_problems(browser.check(bad), figures=1))
    for fragment in expected:
        assert fragment in problems, problems


def test_the_checker_catches_a_blank_or_tiny_screenshot():
    def png(size, colour):
        buf = io.BytesIO()
        Image.new("RGB", size, colour).save(buf, format="PNG")
        return buf.getvalue()

    assert "blank" in screenshot_problems(png((1280, 900), "white"))[0]
    assert "under 400x300" in screenshot_problems(png((100, 50), "white"))[0]
    assert screenshot_problems(b"GIF89a") == ["the screenshot is not a PNG"]
    check = PageCheck("file:///x", png((1280, 900), "white"), [{"id": "", "name": "x.png", "alt": "", "complete": False,
                                                                 "width": 0, "height": 0, "shown_width": 0}])
    problems = page_problems(check, figures=2)
    assert len(problems) == 3 and "did not render" in problems[2] and "1 images on the page, expected 2" in problems[1]


def test_the_compare_report_page_renders(browser, tmp_path):
    result = compare(get_chip(), workloads=("dlrm",), gpus=("h20",), progress=lambda m: None)
    files = write_report(result, tmp_path / "cmp")
    page = tmp_path / "cmp" / "report.html"
    assert files["html"] == str(page)
    text = page.read_text()
    assert "<script" not in text and not re.findall(r'src="(?!data:)', text)
    check = browser.check(page)
    assert page_problems(check, figures=len(PLOTS)) == []
    assert [i["name"] for i in check.images] == list(PLOTS)
    assert check.screenshot_size()[1] > 2000                                     # tables and four plots


def test_the_decision_page_renders(browser, tmp_path):
    """``systolab decide``'s report.html in headless Chromium: a screenshot, every figure
    rendered, no console error."""
    from systolab.models.decision.compose import decide
    from systolab.models.decision.report import write_decision_report

    files = write_decision_report(decide(gpus=("h20", "h200-sxm"), draws=300, sobol_base=32), tmp_path / "dec")
    figures = [k for k in files if k not in ("report", "html", "json")]
    assert len(figures) == 6
    check = browser.check(tmp_path / "dec" / "report.html")
    assert page_problems(check, figures=len(figures)) == []
    (tmp_path / "dec" / "screenshot.png").write_bytes(check.screenshot_png)
    assert check.screenshot_size()[1] > 3000                    # the tables and six plots, one page
