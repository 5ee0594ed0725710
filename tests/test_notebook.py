"""In Jupyter a summary shows as a table and a figure as a picture: the methods a
notebook calls, called here."""

from __future__ import annotations

import resdsl


def test_a_summary_shows_as_an_html_table():
    html = resdsl.count("resnet50")._repr_html_()
    assert html.startswith("<table><caption>resnet50 (")
    assert "shortcut B, stride on 1x1, 50 layers</caption>" in html
    rows = html.split("<tr>")[2:]  # after the header row
    assert [row.split("</td>")[0].removeprefix("<td>") for row in rows[:6]] == [
        "conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head"]
    assert ">28x28<" not in html and ">512x28x28<" in rows[2]
    assert rows[-1].startswith("<th>total</th>") and ">25,557,032<" in rows[-1]
    assert ">3,857,973,248<" in rows[-1] and "MACs: multiply-adds of conv and fc" in html


def test_file_names_are_escaped_in_html(write_arch):
    path = write_arch("input 3x8x8\nc1 : 3x3, 4\n", name="a<b>&c.arch")
    html = resdsl.count(path)._repr_html_()
    assert "a&lt;b&gt;&amp;c.arch" in html and "<b>" not in html


def test_a_figure_shows_as_svg_and_png():
    figure = resdsl.render("resnet18", "plain18", collapse=True)
    svg = figure._repr_mimebundle_()["image/svg+xml"]
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "7x7 conv, 64, /2" in svg and "×2 blocks, first /2 on the 3x3" in svg
    assert figure._repr_image_png().startswith(b"\x89PNG\r\n\x1a\n")
