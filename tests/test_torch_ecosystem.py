"""Generated modules work with what PyTorch users reach for: channels_last, autocast,
torch.compile without graph breaks, torch.fx, and CUDA when present (ONNX export is
`resdsl compile -o model.onnx`, in test_compile.py)."""

import copy

import pytest

torch = pytest.importorskip("torch")

import resdsl  # noqa: E402
from tests.conftest import ARCHS  # noqa: E402

NETWORKS = {  # small enough for CPU tests, and covering options A and B, fold and names
    "cifar-resnet A": dict(path=ARCHS / "cifar-resnet.arch", n=1),
    "resnet18 B torchvision": dict(path=ARCHS / "resnet18.arch", naming="torchvision"),
    "cifar-resnet folded": dict(path=ARCHS / "cifar-resnet.arch", n=1, fold_bn=True),
}


@pytest.fixture(params=list(NETWORKS), scope="module")
def network(request):
    """(model in eval mode, input batch)."""
    torch.manual_seed(0)
    options = dict(NETWORKS[request.param])
    path = options.pop("path")
    model = resdsl.load(path, **options).eval()
    size = 32 if "cifar" in request.param else 64
    return model, torch.randn(2, 3, size, size)


def test_channels_last(network):
    model, x = network
    expected = model(x)
    model.to(memory_format=torch.channels_last)
    try:
        out = model(x.to(memory_format=torch.channels_last))
    finally:
        model.to(memory_format=torch.contiguous_format)  # the fixture is shared
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast(network, dtype):
    model, x = network
    expected = model(x)
    with torch.autocast("cpu", dtype=dtype):
        out = model(x)
    assert out.dtype == dtype
    assert (out.float() - expected).abs().max() < 0.05 * expected.abs().max()


def test_torch_compile_fullgraph_without_graph_breaks(network):
    model, x = network
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), model(x))


def test_torch_fx_symbolic_trace(network):
    model, x = network
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), model(x))


def test_training_step_under_compile():
    torch.manual_seed(0)
    model = resdsl.load(ARCHS / "cifar-resnet.arch", n=1)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(compiled(x), y).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_and_backward_match_cpu():
    """The agreement promised between a GPU and the CPU. In strict fp32 (TF32 off) only the
    order of summation differs: logits within 1e-4 of the largest logit, gradients within
    1e-3 of the largest gradient. With TF32, which PyTorch lets cuDNN use for convolutions
    by default, products are rounded to 10 mantissa bits: logits within 1e-2. A wrong
    weight, padding or stride anywhere is far outside either bound."""
    torch.manual_seed(0)
    model = resdsl.load(ARCHS / "resnet18.arch").eval()
    x = torch.randn(2, 3, 64, 64)
    expected = model(x)
    expected.sum().backward()
    expected_grad = model.conv1.conv.weight.grad.clone()
    scale = expected.abs().max()
    gpu = copy.deepcopy(model).cuda()
    gpu.zero_grad()
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            out = gpu(x.cuda())
            out.sum().backward()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    assert (out.detach().cpu() - expected).abs().max() <= 1e-4 * scale
    grad = gpu.conv1.conv.weight.grad.cpu()
    assert (grad - expected_grad).abs().max() <= 1e-3 * expected_grad.abs().max()
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=True), torch.no_grad():
        tf32 = gpu(x.cuda()).cpu()
    assert (tf32 - expected.detach()).abs().max() <= 1e-2 * scale
