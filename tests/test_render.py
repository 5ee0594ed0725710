"""`resdsl render`: the structure of what is drawn (boxes, shortcut arcs, rows), and real
`dot` renders of every format."""

import os
import re
import subprocess
import sys

import pytest

import resdsl
import resdsl.api as api
from resdsl.api import build, render
from resdsl.backends.figure.layout import layout
from tests.conftest import ARCHS

# No skip when `dot` is missing: CI installs graphviz (.ci/run), and these tests must
# prove that it renders there.


def _column(arch, collapse=False, **params):
    return layout(build(ARCHS / arch, **params), 0, collapse=collapse)


@pytest.mark.parametrize("arch, layers", [("vgg19.arch", 19), ("plain34.arch", 34),
                                          ("resnet34.arch", 34), ("resnet152.arch", 152)])
def test_one_box_per_layer(arch, layers):
    column = _column(arch)
    weighted = [b for b in column.boxes if b.op in ("conv", "fc")]
    assert len(weighted) == column.layers == layers
    pools = [b.label for b in column.boxes if b.op in ("maxpool", "avgpool")]
    assert pools == (["pool, /2"] * 5 if arch == "vgg19.arch" else ["pool, /2", "avg pool"])


def test_labels_as_the_paper_writes_them():
    labels = [b.label for b in _column("resnet34.arch").boxes]
    assert labels[:4] == ["image", "7x7 conv, 64, /2", "pool, /2", "3x3 conv, 64"]
    assert "3x3 conv, 128, /2" in labels and labels[-2:] == ["avg pool", "fc 1000"]
    assert [b.label for b in _column("vgg19.arch").boxes][-3:] == ["fc 4096", "fc 4096",
                                                                  "fc 1000"]


def test_resnet34_has_16_shortcuts_3_dotted_with_option_b():
    column = _column("resnet34.arch")
    assert len(column.arcs) == 16
    assert sum(a.increases_dimensions for a in column.arcs) == 3
    ids = [b.id for b in column.boxes]
    for arc in column.arcs:  # each skips the two convs of its unit
        assert ids.index(arc.head) - ids.index(arc.tail) == 2
    first = column.arcs[0]
    assert column.boxes[ids.index(first.tail)].label == "pool, /2"


def test_option_a_draws_its_zero_padding_dotted_and_plain_nets_draw_no_arcs():
    column = _column("cifar-resnet.arch")
    assert len(column.arcs) == 9 and sum(a.increases_dimensions for a in column.arcs) == 2
    assert _column("plain34.arch").arcs == [] and _column("vgg19.arch").arcs == []


def test_collapse_folds_repeated_units():
    column = _column("resnet152.arch", collapse=True)
    groups = [b for b in column.boxes if b.op == "group"]
    assert [g.repeat for g in groups] == [3, 8, 36, 3]
    assert groups[2].label == ("1x1 conv, 256\n3x3 conv, 256\n1x1 conv, 1024\n"
                               "×36 blocks, first /2 on the 1x1")
    v15 = [b for b in _column("resnet152-v1.5.arch", collapse=True).boxes if b.op == "group"]
    assert v15[2].label.endswith("×36 blocks, first /2 on the 3x3")
    assert v15[0].label.endswith("×3 blocks")  # conv2_x: the maxpool strides, not a unit
    assert column.layers == 152 and len(column.arcs) == 4
    assert all(ids_differ == 1 for ids_differ in _spans(column))
    big = _column("cifar-resnet.arch", collapse=True, n=200)
    assert [g.repeat for g in big.boxes if g.op == "group"] == [200, 200, 200]


def test_figure3_columns_and_rows_aligned_by_output_size():
    source = render().source
    for title in ("VGG-19", "34-layer plain", "34-layer residual"):
        assert f'label="{title}"' in source
    rows = re.findall(r"\{\s*rank=same\s*([^}]*)\}", source)
    by_size = {}
    for row in rows:
        names = row.split()
        size = next((n for n in names if n.startswith("size_") and n != "size_title"), None)
        if size:
            by_size[int(size[5:])] = names
    assert sorted(by_size, reverse=True) == [224, 112, 56, 28, 14, 7, 1]
    columns = [layout(build(ARCHS / f), i) for i, f in
               enumerate(["vgg19.arch", "plain34.arch", "resnet34.arch"])]
    for size, names in by_size.items():
        for column in columns:
            first = next((b for b in column.boxes if b.op != "image" and b.size == size), None)
            assert (first is None) == (not any(n.startswith(column.boxes[0].id[:3])
                                               for n in names))
            if first:
                assert first.id in names
    assert source.count("style=dotted") == 3
    assert source.count("constraint=false") == 16


def test_shapes_and_rankdir():
    source = render(str(ARCHS / "resnet18.arch"), shapes=True, rankdir="LR").source
    assert "rankdir=LR" in source and 'label=" 64x56x56"' in source
    assert "tailport=s" in source


@pytest.mark.parametrize("ext, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"),
                                        ("pdf", b"%PDF"), ("dot", b"digraph")])
def test_every_format_renders(cli, tmp_path, ext, magic):
    target = tmp_path / f"figure.{ext}"
    code, _, err = cli("render", "-o", target)
    assert code == 0 and f"wrote {target}" in err
    assert target.read_bytes().startswith(magic)


def test_rendering_is_deterministic(cli, tmp_path):
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    cli("render", ARCHS / "resnet50.arch", "--collapse", "-o", a)
    cli("render", ARCHS / "resnet50.arch", "--collapse", "-o", b)
    assert a.read_bytes() == b.read_bytes()


def test_missing_dot_is_a_clear_error_and_still_writes_the_source(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no dot on this PATH
    target = tmp_path / "figure.png"
    result = subprocess.run([sys.executable, "-m", "resdsl", "render", "-o", str(target)],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "graphviz's `dot` program was not found" in result.stderr
    assert "apt-get install graphviz" in result.stderr
    assert not target.exists()
    assert (tmp_path / "figure.dot").read_text().startswith("digraph")


def test_unknown_format_is_a_usage_error(cli, tmp_path):
    code, _, err = cli("render", "-o", tmp_path / "figure.jpg")
    assert code == 2 and "use .svg, .png, .pdf or .dot" in err
    assert not (tmp_path / "figure.jpg").exists()


def test_without_output_the_dot_source_goes_to_stdout(cli):
    code, out, _ = cli("render", ARCHS / "cifar-resnet.arch")
    assert code == 0 and out.startswith("digraph resdsl {")


def test_bad_input_is_an_input_error(cli, write_arch):
    path = write_arch("network n\ninput 3x8x8\nconv1 8x8 : 3x3\n")
    code, out, err = cli("render", path)
    assert code == 1 and out == "" and f"{path}:3:" in err


def test_api_returns_a_digraph_for_notebooks():
    figure = resdsl.render(str(ARCHS / "resnet18.arch"))
    assert type(figure).__name__ == "Digraph" and hasattr(figure, "_repr_mimebundle_")
    with pytest.raises(ValueError, match="titles"):
        api.render(str(ARCHS / "resnet18.arch"), titles=["a", "b"])


def _spans(column):
    ids = [b.id for b in column.boxes]
    return [ids.index(arc.head) - ids.index(arc.tail) for arc in column.arcs]


def test_the_familys_units_draw_their_groups_gates_order_and_pooled_shortcuts():
    resnext = layout(build(ARCHS / "resnext50-32x4d.arch"), 0)
    assert "3x3 conv, 128, C=32" in [box.label for box in resnext.boxes]
    se = layout(build(ARCHS / "se-resnet50.arch"), 0)
    assert len(se.sides) == 16 and se.sides[0].box.label == "SE gate\n256 → 16 → 256"
    assert se.sides[0].anchor == next(b.id for b in se.boxes if b.label == "1x1 conv, 256")
    assert se.layers == 50  # the gates' convs are not layers of the depth
    v2 = layout(build(ARCHS / "resnet50-v2.arch"), 0)
    assert [b.label for b in v2.boxes[1:4]] == ["7x7 conv, 64, /2", "pool, /2",
                                                "BN-ReLU\n1x1 conv, 64"]
    d = layout(build(ARCHS / "resnet50-d.arch"), 0)
    assert [arc.label for arc in d.arcs if arc.label] == ["avg pool /2"] * 3
    highway = layout(build(ARCHS / "highway-cifar.arch"), 0)
    assert {arc.label for arc in highway.arcs} == {"gate"}


def test_resnext101_collapses_to_one_page(cli, tmp_path):
    """Stem, pool, four stage boxes, pool, fc: a figure of nine boxes, drawn by dot."""
    column = layout(build(ARCHS / "resnext101-32x8d.arch"), 0, collapse=True)
    assert len(column.boxes) == 9 and "×23 blocks, first /2 on the 3x3" in column.boxes[5].label
    out = tmp_path / "resnext.svg"
    code, _, err = cli("render", ARCHS / "resnext101-32x8d.arch", "--collapse", "-o", out)
    assert code == 0, err
    height = float(re.search(r'<svg[^>]* height="([0-9.]+)pt"', out.read_text()).group(1))
    assert height < 11 * 72  # fits a letter page's height
