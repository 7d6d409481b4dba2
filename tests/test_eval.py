"""`evaluate(cfg)` end to end: the real configs composed with Hydra, the sample data, a generated
checkpoint in the released layout; outputs checked against an independent run of the protocol."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT
from helpers.configs import EVAL_FRAMES, EVAL_SMALL, compose_eval, eval_data
from original_color import original_lab2rgb, original_multi_sampling, original_one_sampling

from tcvc import metrics
from tcvc.color import lab_normalized_to_rgb, rgb_float_to_uint8, rgb_to_lab_normalized
from tcvc.data import TCVCDataModule
from tcvc.errors import UserError
from tcvc.evaluation import flow_at_resolution, idc_ab
from tcvc.inference import colorize_frames, run_at_resolution
from tcvc.io import VideoReader, read_frames
from tcvc.nets import TCVCNet
from tcvc.nets.checkpoints import CheckpointError, load_backbone
from tcvc.nets.idc import IDC
from tcvc.tasks.evaluate import evaluate
from tcvc.tasks.train import build_datamodule


@pytest.fixture(scope="module")
def net(original_checkpoint) -> TCVCNet:
    return TCVCNet.from_pretrained(original_checkpoint)


@pytest.fixture(scope="module")
def one_run(sample_dir, original_checkpoint, tmp_path_factory) -> Path:
    """One sampling at interval 2 (clips 0–3, 3–5), frames and a comparison video saved."""
    out = tmp_path_factory.mktemp("eval_one")
    cfg = compose_eval(
        [f"ckpt={original_checkpoint}", f"paths.output_dir={out}", "inference.interval=2"]
        + ["eval.save_frames=true", "eval.num_comparison_videos=1"]
        + EVAL_SMALL
        + eval_data(sample_dir)
    )
    evaluate(cfg)
    return out


def first_video(sample_dir: Path) -> np.ndarray:
    return read_frames(sample_dir / "val" / "bigbuckbunny", max_frames=EVAL_FRAMES)


def test_eval_writes_every_output(one_run, sample_dir, capsys):
    report = json.loads((one_run / "metrics.json").read_text())
    assert report["methods"] == ["tcvc_2", "idc", "gray", "gt"]
    assert list(report["videos"]) == ["val/bigbuckbunny"]
    video = report["videos"]["val/bigbuckbunny"]
    assert (video["num_frames"], video["height"], video["width"]) == (EVAL_FRAMES, 300, 300)
    scores = video["scores"]
    for method in ("tcvc_2", "idc", "gray"):
        assert set(scores[method]) == {"psnr", "ssim", "lpips", "colorfulness", "cdc", "warp_error"}
        assert 10 < scores[method]["psnr"] < 60 and 0 < scores[method]["ssim"] <= 1
        assert scores[method]["cdc"] >= 0 and scores[method]["warp_error"] >= 0
    assert set(scores["gt"]) == {"colorfulness", "cdc", "warp_error"}  # no gt-vs-gt scores
    assert scores["gray"]["colorfulness"] < 1 < scores["gt"]["colorfulness"]
    assert report["mean"]["tcvc_2"]["psnr"] == pytest.approx(scores["tcvc_2"]["psnr"])
    assert report["timing"]["inference_s"] > 0 and report["timing"]["total_s"] > 0

    rows = (one_run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "video,method,psnr,ssim,lpips,colorfulness,cdc,warp_error,fid"
    assert len(rows) == 1 + 2 * 4  # (one video + the mean) × four methods
    table = (one_run / "table.md").read_text()
    assert "| TCVC (interval 2) |" in table and "| IDC |" in table and "| gray |" in table
    assert (one_run / "plots" / "per_video.png").stat().st_size > 1000
    assert not (one_run / "plots" / "cdc_vs_interval.png").exists()  # no sweep
    assert (one_run / "config.yaml").is_file()

    saved = sorted((one_run / "frames" / "tcvc_2" / "val" / "bigbuckbunny").glob("*.png"))
    assert len(saved) == EVAL_FRAMES
    with VideoReader(one_run / "comparison" / "val__bigbuckbunny.mp4") as reader:
        comparison = reader.read_all()
    # gray | IDC | TCVC | ground truth under a 20-pixel label strip
    assert comparison.shape == (EVAL_FRAMES, 20 + 300, 4 * 300, 3)
    gt = first_video(sample_dir)
    assert np.abs(comparison[:, 20:, 900:].astype(int) - gt).mean() < 3  # H.264, crf 15


def test_eval_follows_the_protocol_and_its_metrics(one_run, sample_dir, net):
    """The saved frames are the protocol's output computed here independently, and the reported
    numbers are the metrics of those frames."""
    gt = first_video(sample_dir)
    rgb = torch.from_numpy(gt).permute(0, 3, 1, 2).float() / 255
    L, _ = rgb_to_lab_normalized(rgb)
    with torch.no_grad():
        ab = colorize_frames(net.colorize_clip, L, interval=2, resolution=64)
    expected = rgb_float_to_uint8(lab_normalized_to_rgb(L, ab))
    saved = read_frames(one_run / "frames" / "tcvc_2" / "val" / "bigbuckbunny")
    assert np.abs(saved.astype(int) - expected).max() <= 1  # float round-off at .5
    # ... and what the original's test script writes for them (its own Lab -> RGB arithmetic)
    original = original_one_sampling(original_lab2rgb(L.numpy(), ab.numpy()))
    assert np.abs(saved.astype(int) - original).max() <= 1
    scores = json.loads((one_run / "metrics.json").read_text())["videos"]["val/bigbuckbunny"]
    assert scores["scores"]["tcvc_2"]["psnr"] == pytest.approx(metrics.psnr(saved, gt), abs=0.05)
    assert scores["scores"]["tcvc_2"]["cdc"] == pytest.approx(metrics.cdc(saved), rel=0.05)
    assert scores["scores"]["gt"]["cdc"] == pytest.approx(metrics.cdc(gt), rel=1e-9)


@pytest.mark.slow  # two evaluations of the clip, ~40 s on 2 cores
def test_multi_sampling_averages_two_intervals_and_differs(
    one_run, sample_dir, original_checkpoint, net, tmp_path
):
    cfg = compose_eval(
        [f"ckpt={original_checkpoint}", f"paths.output_dir={tmp_path}", "inference.interval=2"]
        + ["inference.sampling=multi", "eval.save_frames=true", "eval.num_comparison_videos=0"]
        + ["eval.baselines=[gray]", "eval.metrics=[psnr,cdc]"]
        + EVAL_SMALL
        + eval_data(sample_dir)
    )
    means = evaluate(cfg)
    assert set(means) == {"tcvc_2+4/psnr", "tcvc_2+4/cdc", "gray/psnr", "gray/cdc"}
    one = read_frames(one_run / "frames" / "tcvc_2" / "val" / "bigbuckbunny")
    multi = read_frames(tmp_path / "frames" / "tcvc_2+4" / "val" / "bigbuckbunny")
    assert np.abs(multi.astype(int) - one).max() > 10  # clips 0–3, 3–5 vs 0–5: other colours
    gt = first_video(sample_dir)
    L, _ = rgb_to_lab_normalized(torch.from_numpy(gt).permute(0, 3, 1, 2).float() / 255)
    with torch.no_grad():
        runs = [colorize_frames(net.colorize_clip, L, interval=i, resolution=64) for i in (2, 4)]
    # the original's arithmetic: the mean of the unclipped RGB, then clipped and truncated
    expected = original_multi_sampling([original_lab2rgb(L.numpy(), ab.numpy()) for ab in runs])
    assert np.abs(multi.astype(int) - expected).max() <= 1
    assert not (tmp_path / "comparison").exists()


def test_idc_only_from_the_tcvc_checkpoint_matches_the_idc_baseline(
    one_run, sample_dir, original_checkpoint, tmp_path
):
    cfg = compose_eval(
        ["method=idc", f"ckpt={original_checkpoint}", f"paths.output_dir={tmp_path}"]
        + ["eval.num_comparison_videos=0", "eval.metrics=[psnr,ssim,warp_error]"]
        + EVAL_SMALL
        + eval_data(sample_dir)
    )
    means = evaluate(cfg)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["methods"] == ["idc", "gray", "gt"]
    baseline = json.loads((one_run / "metrics.json").read_text())["mean"]["idc"]
    # the same IDC weights (inside 80000_G.pth), the same protocol; the warp error's FlowNet2
    # also comes from the checkpoint
    for metric in ("psnr", "ssim", "warp_error"):
        assert means[f"idc/{metric}"] == pytest.approx(baseline[metric], rel=1e-6)


def test_idc_only_load_rules(sample_dir, original_checkpoint, tmp_path):
    base = [f"paths.output_dir={tmp_path}", "method=idc", *EVAL_SMALL, *eval_data(sample_dir)]
    with pytest.raises(UserError, match="needs IDC weights"):
        evaluate(compose_eval(base))
    with pytest.raises(UserError, match="not both"):
        evaluate(
            compose_eval(
                [*base, f"ckpt={original_checkpoint}", f"model.idc_weights={original_checkpoint}"]
            )
        )
    head_only = tmp_path / "head.pth"
    torch.save({f"head.{k}": v for k, v in TCVCNet().head.state_dict().items()}, head_only)
    with pytest.raises(CheckpointError, match="holds no idc weights"):
        load_backbone(head_only, "idc", IDC())
    idc_file = tmp_path / "siggraph17.pth"
    torch.manual_seed(1)
    torch.save(IDC().state_dict(), idc_file)
    idc = load_backbone(idc_file, "idc", IDC())
    assert torch.equal(idc.model1[0].weight, torch.load(idc_file)["model1.0.weight"])
    assert load_backbone(idc_file, "flownet", TCVCNet().flownet, required=False) is None


@pytest.mark.slow  # ~25 s on 2 cores
def test_interval_sweep_plots_cdc_and_logs_to_wandb(
    sample_dir, original_checkpoint, tmp_path, monkeypatch
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_eval(
        [f"ckpt={original_checkpoint}", f"paths.output_dir={tmp_path}", "logger=wandb"]
        + ["inference.interval=[1,3]", "eval.baselines=[gray]", "eval.metrics=[psnr,cdc]"]
        + ["eval.num_comparison_videos=1"]
        + EVAL_SMALL
        + eval_data(sample_dir)
    )
    means = evaluate(cfg)
    assert {"tcvc_1/cdc", "tcvc_3/cdc", "gray/cdc"} <= set(means)
    assert means["tcvc_1/cdc"] != means["tcvc_3/cdc"]
    assert (tmp_path / "plots" / "cdc_vs_interval.png").stat().st_size > 1000
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    logged = list(runs[0].rglob("*.table.json")) + list(runs[0].rglob("*.mp4"))
    assert any(p.name.endswith(".table.json") for p in logged)
    assert any(p.suffix == ".mp4" for p in logged)


def test_missing_test_roots_and_bad_options_are_user_errors(tmp_path):
    base = ["ckpt=x.pth", f"paths.output_dir={tmp_path}"]
    with pytest.raises(UserError, match="data.test_roots"):
        evaluate(compose_eval([*base, "data=folder"]))
    with pytest.raises(UserError, match="inference.sampling"):
        evaluate(compose_eval([*base, "inference.sampling=three"]))
    with pytest.raises(UserError, match="unknown eval.metrics"):
        evaluate(compose_eval([*base, "eval.metrics=[psnr,niqe]"]))


@pytest.mark.parametrize(
    ("data", "root"), [("davis30", "DAVIS30"), ("videvo20", "videvo20"), ("sample", "sample/val")]
)
def test_data_configs_name_test_roots_and_still_build_the_datamodule(data, root):
    cfg = compose_eval(["ckpt=x.pth", f"data={data}"])
    assert [Path(r) for r in cfg.data.test_roots] == [ROOT / "data" / root]
    assert isinstance(build_datamodule(cfg.data), TCVCDataModule)  # training leaves test_roots
    assert cfg.inference.interval == 17 and cfg.inference.resolution == 256
    assert cfg.inference.sampling == "single" and cfg.inference.gamut == "clip"


def test_flow_at_resolution_rescales_the_flow():
    seen = []

    def constant_flow(a, b):  # u = 1, v = 2 pixels at the working size
        seen.append(tuple(a.shape))
        flow = torch.zeros(a.shape[0], 2, *a.shape[2:])
        flow[:, 0], flow[:, 1] = 1.0, 2.0
        return flow

    frames = torch.rand(3, 3, 100, 256)
    flow = flow_at_resolution(constant_flow, resolution=64)(frames, frames)
    assert seen == [(3, 3, 64, 64)]
    assert flow.shape == (3, 2, 100, 256)
    torch.testing.assert_close(flow[:, 0], torch.full((3, 100, 256), 4.0))  # 256 / 64
    torch.testing.assert_close(flow[:, 1], torch.full((3, 100, 256), 2.0 * 100 / 64))
    native = flow_at_resolution(constant_flow, resolution="native")(frames, frames)
    assert seen[-1] == (3, 3, 128, 256) and native.shape == (3, 2, 100, 256)
    assert math.isclose(native[0, 0, 0, 0].item(), 1.0)


def test_idc_baseline_runs_frame_by_frame_at_the_working_size(net):
    L = torch.rand(5, 1, 96, 80) - 0.5
    with torch.no_grad():
        rgb = lab_normalized_to_rgb(L, idc_ab(net.idc, L, resolution=64, batch_size=2))
        ab = run_at_resolution(
            lambda clip: net.idc(clip.flatten(0, 1))[0].unflatten(0, clip.shape[:2]),
            L[None],
            resolution=64,
        )[0]
    torch.testing.assert_close(rgb, lab_normalized_to_rgb(L, ab), atol=1e-5, rtol=0)


def test_the_exemplar_protocol_gives_the_first_frame_and_writes_its_table(
    one_run, sample_dir, original_checkpoint, tmp_path
):
    """references=first: each video's ground-truth frame 0 is given to IDC as dense hints;
    the run has its own name and label, its table is written, and frame 0 changes (the
    automatic run's frame 0 is IDC's guess). method=idc with references is refused."""
    cfg = compose_eval(
        [f"ckpt={original_checkpoint}", f"paths.output_dir={tmp_path}", "inference.interval=2"]
        + ["references=first", "eval.save_frames=true", "eval.num_comparison_videos=0"]
        + ["eval.metrics=[psnr,ssim]", "eval.baselines=[]"]
        + EVAL_SMALL
        + eval_data(sample_dir)
    )
    means = evaluate(cfg)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["methods"] == ["tcvc_2_ref_first"]
    assert "first frame given" in (tmp_path / "table.md").read_text()
    automatic = json.loads((one_run / "metrics.json").read_text())["mean"]["tcvc_2"]
    assert means["tcvc_2_ref_first/psnr"] != pytest.approx(automatic["psnr"], rel=1e-6)
    guided = sorted((tmp_path / "frames" / "tcvc_2_ref_first").rglob("00000.png"))
    plain = sorted((one_run / "frames" / "tcvc_2").rglob("00000.png"))
    assert guided and len(guided) == len(plain)
    assert not np.array_equal(read_frames(guided[0].parent)[0], read_frames(plain[0].parent)[0])

    with pytest.raises(UserError, match="references=first: the exemplar protocols colour with"):
        evaluate(compose_eval(["method=idc", "references=first", *EVAL_SMALL]))
