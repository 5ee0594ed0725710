"""`resdsl compile`: a standalone file that needs only torch, equals `resdsl.load`, is
deterministic, and cannot be made to run code by the names in an .arch file."""

import ast
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import resdsl  # noqa: E402
from tests.conftest import ARCHS  # noqa: E402

# Runs in a fresh interpreter where importing resdsl fails: the file must need torch only.
STANDALONE = """
import importlib.util, sys
sys.modules["resdsl"] = None
import torch
spec = importlib.util.spec_from_file_location("generated", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = getattr(module, sys.argv[2])()
model.load_state_dict(torch.load(sys.argv[3]))
x = torch.load(sys.argv[4])
model.eval()
with torch.no_grad():
    torch.save(model(x), sys.argv[5])
model.train()  # and it trains: one SGD step moves the weights
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
before = [p.detach().clone() for p in model.parameters()]
torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 2])).backward()
optimizer.step()
assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
"""


@pytest.mark.parametrize("arch, naming, set_", [("resnet34.arch", "arch", []),
                                                ("resnet50-v1.5.arch", "torchvision", []),
                                                ("cifar-resnet.arch", "arch", ["n=2"])])
def test_compiled_file_needs_only_torch_and_equals_load(cli, tmp_path, arch, naming, set_):
    target = tmp_path / "net.py"
    args = [f"--set={s}" for s in set_]
    code, _, err = cli("compile", ARCHS / arch, "-o", target, "--naming", naming, *args)
    assert code == 0 and "wrote" in err
    params = dict(s.split("=") for s in set_)
    params = {k: int(v) for k, v in params.items()}
    model = resdsl.load(ARCHS / arch, naming=naming, **params).eval()
    summary = resdsl.count(ARCHS / arch, **params)
    x = torch.randn(2, *summary.input)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.save(x, tmp_path / "x.pt")
    class_name = type(model).__name__
    subprocess.run([sys.executable, "-c", STANDALONE, str(target), class_name,
                    str(tmp_path / "weights.pt"), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
                   check=True, cwd=tmp_path)
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "y.pt"), model(x))


def test_forward_reads_like_the_figure():
    text = resdsl.source(ARCHS / "resnet34.arch")
    assert "class BasicBlock(nn.Module):" in text
    assert "identity = self.shortcut(x)\n        out += identity\n" in text
    assert 'BasicBlock(64, (128, 128), stride=2, shortcut="projection")' in text
    tree = ast.parse(text)
    imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    imports |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imports == {"torch", "torch.nn.functional", "collections"}


def test_same_input_same_bytes_across_runs_and_hash_seeds(tmp_path):
    outputs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run([sys.executable, "-m", "resdsl", "compile",
                                 str(ARCHS / "resnet50.arch")], env=env, check=True,
                                capture_output=True)
        outputs.add(result.stdout)
    outputs.add(resdsl.source(ARCHS / "resnet50.arch").encode())
    assert len(outputs) == 1


def test_names_from_the_file_cannot_inject_code(tmp_path):
    folder = tmp_path / 'x"""\nimport os; os.system("echo pwned")\n"""'
    folder.mkdir()
    path = folder / "net.arch"
    path.write_text("network evil-net.v2\ninput 3x8x8\nshortcut A\n"
                    "conv1 8x8 : 3x3, 4\nbody 8x8 : [3x3, 4; 3x3, 4] x 1\n"
                    "head 1x1 : avgpool, fc 2\n")
    text = resdsl.source(path)
    tree = ast.parse(text)  # still valid Python
    top = [type(node).__name__ for node in tree.body]
    assert top == ["Expr", "ImportFrom", "Import", "Import", "ImportFrom", "ClassDef",
                   "ClassDef"]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "os"]
    assert 'os.system(?echo pwned?)' in ast.get_docstring(tree)  # inert text, quotes gone
    assert "class EvilNetV2(nn.Module):" in text


@pytest.mark.parametrize("stage", ["eval", "_hidden", "to"])
def test_a_stage_name_that_would_clash_in_pytorch_is_an_error_at_its_line(write_arch, cli, stage):
    path = write_arch(f"network n\ninput 3x8x8\nshortcut none\n{stage} 8x8 : 3x3, 4\n"
                      "head 1x1 : avgpool, fc 2\n")
    code, out, err = cli("compile", path)
    assert code == 1 and out == ""
    assert f"{path}:4:1: error[E703]: the stage name '{stage}'" in err


def test_check_on_cpu_reports_shapes_params_and_memory(cli):
    code, out, _ = cli("compile", ARCHS / "cifar-resnet.arch", "--check", "--batch", "3")
    assert code == 0
    assert "cifar-resnet on cpu (" in out and ", batch 3" in out
    assert "conv3_x      3x32x16x16" in out
    assert "params       269,722 (static count 269,722)" in out
    assert "memory       estimated 6.4 MiB (weights 1.0 MiB" in out and "from the IR" in out
    assert "measured " in out and "rise in this process's peak resident memory" in out
    assert out.rstrip().endswith("ok")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_check_on_cuda_without_cuda_is_a_clear_error(cli):
    code, out, err = cli("compile", ARCHS / "cifar-resnet.arch", "--check", "--device", "cuda")
    assert code == 1 and out == ""
    assert "CUDA is not available" in err and "--device cpu" in err
    assert "Traceback" not in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_check_on_cuda(cli):
    code, out, _ = cli("compile", ARCHS / "resnet50-v1.5.arch", "--check", "--device", "cuda")
    assert code == 0 and "torch.cuda.max_memory_allocated" in out and out.rstrip().endswith("ok")


def test_usage_errors(cli):
    assert cli("compile", ARCHS / "resnet18.arch", "--check", "--batch", "0")[0] == 2
    assert cli("compile", ARCHS / "resnet18.arch", "--naming", "keras")[0] == 2
    code, _, err = cli("compile", ARCHS / "resnet18.arch", "--check", "--device", "tpu9")
    assert code == 1 and "unknown device 'tpu9'" in err


def test_a_failed_compile_leaves_the_old_output_untouched(cli, write_arch, tmp_path):
    target = tmp_path / "out.py"
    target.write_text("previous contents\n")
    bad = write_arch("network n\ninput 3x8x8\nconv1 8x8 : 3x3\n")
    code, _, err = cli("compile", bad, "-o", target)
    assert code == 1 and "no channel count" in err
    assert target.read_text() == "previous contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.arch", "out.py"]


def test_fold_bn_source_takes_trained_weights(tmp_path):
    text = resdsl.source(ARCHS / "cifar-resnet.arch", fold_bn=True)
    assert "nn.BatchNorm2d(" not in text
    assert "def from_unfolded(cls, state_dict)" in text
    assert '("conv2_x.0.conv1", "conv2_x.0.bn1"),' in text


def test_compile_writes_an_onnx_model_that_onnxruntime_runs(cli, tmp_path):
    """`-o model.onnx`: the same bytes every time, the weights of `resdsl.load` under seed
    0, any batch size, outputs equal to torch's in eval mode."""
    ort = pytest.importorskip("onnxruntime")
    path, again = tmp_path / "model.onnx", tmp_path / "again.onnx"
    for output in (path, again):
        torch.manual_seed(len(output.name))  # torch's global state does not matter
        code, out, err = cli("compile", ARCHS / "cifar-resnet.arch", "--set", "n=1", "-o", output)
        assert code == 0 and out == "" and f"wrote {output}: ONNX opset 18" in err
    assert path.read_bytes() == again.read_bytes()
    torch.manual_seed(0)  # the file's weights: a fresh network from seed 0
    model = resdsl.load(ARCHS / "cifar-resnet.arch", n=1).eval()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("image", ["batch", 3, 32, 32])]
    x = torch.randn(3, 3, 32, 32)
    (logits,) = session.run(["logits"], {"image": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), model(x), rtol=1e-4, atol=1e-4)


def test_onnx_without_its_packages_is_a_clear_error(tmp_path):
    """As on a machine without the `onnx` extra: the import fails, the error says what to
    install, and no file is left behind."""
    script = ("import sys; sys.modules['onnxscript'] = None\n"
              "from resdsl.cli import main\n"
              "sys.exit(main(['compile', 'resnet18', '-o', sys.argv[1]]))\n")
    path = tmp_path / "model.onnx"
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "error[E708]: writing ONNX needs the 'onnxscript' package" in proc.stderr
    assert "pip install 'resdsl[onnx]'" in proc.stderr and list(tmp_path.iterdir()) == []


def test_compile_refuses_an_output_format_it_cannot_tell(cli, tmp_path):
    code, _, err = cli("compile", "resnet18", "-o", tmp_path / "model.h5")
    assert code == 2 and "use .py (PyTorch source) or .onnx" in err
