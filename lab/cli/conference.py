"""``facelab conference``: send a camera clip through the whole codec path and report its rates and quality."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from lab.codec.composition import COMPOSITION_METHODS
    from lab.conference.sender import GATE_MODES

    p = sub.add_parser(
        "conference",
        help="the paper's codec path on a clip: sender (crop, encoder, gate, motion bits) -> server (decoder, "
        "full-resolution composition) -> H.264/H.265 downlink; kbps and quality",
        description="Runs lab.conference.call.run_conference on a camera clip (full frame, upper body; 'demo' = the "
        "embedded 512x512 astronaut clip). Writes downlink.mp4 (what the receiver gets), anchor.mp4 (the camera "
        "video coded the same way: a conventional call), side_by_side.mp4 (camera | received), per_frame.csv "
        "and summary.json to --out.",
    )
    p.add_argument("input", help="camera clip (video, frame folder) or 'demo'")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default="ultralight")
    p.add_argument("--checkpoint", default="default", help="weights path (default: the model's own file)")
    p.add_argument("--gate", default="landmarks", choices=GATE_MODES, help="quality-gate features")
    p.add_argument("--composition", default="feather", choices=COMPOSITION_METHODS)
    p.add_argument("--codec", default="libx264", choices=("libx264", "libx265"), help="downlink codec")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--crf", type=float, default=23.0, help="downlink constant quality")
    rate.add_argument("--bit-rate", type=int, help="downlink target bit rate in bit/s (instead of --crf)")
    p.add_argument("--quant-factor", type=float, default=64.0, help="motion quantisation factor")
    p.add_argument("--max-frames", type=int, default=100)
    p.add_argument("--no-crop", action="store_true", help="the input is already the face crop")
    live = p.add_argument_group(
        "live call (--realtime)",
        "lab.conference.realtime.run_realtime: the clip plays as a camera (frames offered at its frame rate by the "
        "wall clock, "
        "frame 0 the reference); each frame goes sender (crop, encoder, gate, bitstream) -> server (decoder, "
        "composition) as it arrives; frames that arrive while one is processed are dropped and counted. Reports "
        "the frames/s achieved end to end, uplink kbps, dropped frames and per-stage ms; writes realtime.mp4 "
        "(what the receiver saw, at the camera rate), realtime_frames.csv and realtime_summary.json. No downlink "
        "coding in this mode.",
    )
    live.add_argument("--realtime", action="store_true", help="run the clip as a live call")
    live.add_argument("--runtime", default="torch", help="inference runtime of encoder and decoder "
                      "(torch, onnxruntime, openvino where installed: lab.deploy.runtimes)")
    live.add_argument("--precision", default="fp32", help="runtime precision (fp32; bf16/int8 where offered)")
    live.add_argument("--threads", type=int, help="inference threads (default: the runtime's)")
    live.add_argument("--gate-redetect-every", type=int, default=5, metavar="N",
                      help="landmark gate: detect the face every N frames, track it with the landmark predictor "
                      "in between (1: detect every frame, as the offline path does)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.realtime:
        return run_realtime(args)
    import json
    from pathlib import Path

    import pandas as pd

    from datasets.video import write_video
    from lab.conference.call import ConferenceConfig, preview_grid, run_conference
    from lab.core.animate import load_animator
    from lab.core.progress import cli_progress

    frames, fps = _camera_clip(args)
    config = ConferenceConfig(model=args.model, checkpoint=args.checkpoint, crop=not args.no_crop, gate=args.gate,
                              composition=args.composition, downlink_codec=args.codec,
                              downlink_crf=None if args.bit_rate else args.crf, downlink_bit_rate=args.bit_rate,
                              quant_factor=args.quant_factor)
    out = Path(args.out)
    with cli_progress() as progress:
        res = run_conference(frames, fps, config, loaded=load_animator(args.model, args.checkpoint), work_dir=out,
                             progress=progress)
    write_video(out / "side_by_side.mp4", preview_grid(frames, res.received), fps=fps, crf=18)
    pd.DataFrame(res.per_frame).to_csv(out / "per_frame.csv", index=False)
    (out / "summary.json").write_text(json.dumps({"summary": res.summary, "provenance": res.provenance},
                                                 indent=2, default=str))
    s = res.summary
    print(f"{s['frames']} frames {s['camera_size']} at {s['fps']:g} fps, model {s['model']} ({s['weights']})")
    print(f"uplink:   motion {s['uplink_motion_kbps']:.2f} kbps ({s['frames_sent']} frames sent, "
          f"{s['frames_dropped_by_gate']} dropped by the gate) + reference {s['uplink_reference_kbit']:.1f} kbit once")
    if s["anchor_kbps"] is not None:
        print(f"anchor:   the camera video with {s['downlink_codec']}: {s['anchor_kbps']:.1f} kbps "
              f"(PSNR {s['anchor_psnr']:.2f} dB)")
    print(f"downlink: {s['downlink_codec']} {s['downlink_kbps']:.1f} kbps; received vs camera PSNR {s['psnr']:.2f} dB, "
          f"SSIM {s['ssim']:.4f}; head L1 {s['l1_head']:.4f}")
    print(f"wrote {out}/downlink.mp4, side_by_side.mp4, per_frame.csv, summary.json")
    return 0


def _camera_clip(args: argparse.Namespace):
    """``(frames, fps)`` of ``--input`` (a clip or 'demo') up to ``--max-frames``; says when the limit cut it."""
    from datasets.uploads import frames_used_note
    from datasets.video import open_media
    from lab.conference.call import load_camera_clip

    media = args.input if args.input == "demo" else open_media(args.input, max_frames=args.max_frames)
    frames, fps = load_camera_clip(media, max_frames=args.max_frames)
    used = None if args.input == "demo" else frames_used_note(media, len(frames))
    if used:
        print(f"note: {used} (--max-frames {args.max_frames})")
    return frames, fps


def run_realtime(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    import pandas as pd
    import torch

    from datasets.video import write_video
    from lab.conference.live import LiveConfig, LiveSession
    from lab.conference.measure import STAGES
    from lab.conference.realtime import run_realtime
    from lab.core.animate import load_animator
    from lab.core.progress import cli_progress

    if args.threads and args.runtime == "torch":
        torch.set_num_threads(args.threads)
    config = LiveConfig(model=args.model, checkpoint=args.checkpoint, runtime=args.runtime, precision=args.precision,
                        threads=args.threads, crop=not args.no_crop, gate=args.gate, composition=args.composition,
                        quant_factor=args.quant_factor, gate_redetect_every=args.gate_redetect_every)
    # settings, weights and runtime checked before the clip is read
    session = LiveSession(config, loaded=load_animator(args.model, args.checkpoint))
    frames, fps = _camera_clip(args)
    load = os.getloadavg()[0]
    with cli_progress() as progress:
        rep = run_realtime(frames, fps, session, keep_outputs=True, progress=progress)
    rep.summary["load_average_1min"] = [load, os.getloadavg()[0]]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # what the receiver saw at each camera frame: the last output produced by then (frozen while frames drop)
    shown, j, last = [], 0, session.reference_full
    for row in rep.per_frame:
        if row["processed"]:
            last, j = rep.outputs[j], j + 1
        shown.append(last)
    write_video(out / "realtime.mp4", shown, fps=fps, crf=18)
    pd.DataFrame(rep.per_frame).to_csv(out / "realtime_frames.csv", index=False)
    (out / "realtime_summary.json").write_text(json.dumps(rep.summary, indent=2, default=str))
    s = rep.summary
    print(f"{s['clip_frames']} frames {s['camera_size']} played as a {s['camera_fps']:g} frames/s camera; model "
          f"{s['model']} ({s['weights']}), runtime {s['runtime']} {s['precision']}, {torch.get_num_threads()} torch "
          f"threads")
    print(f"set-up (once): face box {s['setup_s_face_box']:.2f} s, reference {s['uplink_reference_kbit']:.1f} kbit "
          f"coded in {s['setup_s_reference_coding']:.2f} s, source features {s['setup_s_source_features']:.2f} s")
    print(f"achieved: {s['fps']:.2f} frames/s end to end over {s['seconds']:.2f} s "
          f"({s['frames_processed']} of {s['frames_offered']} camera frames processed, {s['frames_dropped']} dropped "
          f"late); latency {s['latency_ms_recent']:.0f} ms (recent mean)")
    print(f"uplink:   motion {s['uplink_motion_kbps']:.3f} kbps ({s['frames_sent']} frames sent, "
          f"{s['frames_rejected_by_gate']} rejected by the {s['gate']} gate) + reference once")
    print("per stage, ms per processed frame: " + ", ".join(f"{st} {s[f'ms_{st}']:.1f}" for st in STAGES))
    print(f"machine:  this process used {s['loop_cpu_seconds']:.1f} CPU s in {s['loop_wall_seconds']:.1f} s of the "
          f"loop; 1-min load average {s['load_average_1min'][0]:.1f} before, {s['load_average_1min'][1]:.1f} after "
          f"({os.cpu_count()} cores)")
    print(f"bottleneck: {s['bottleneck']}")
    print(f"wrote {out}/realtime.mp4, realtime_frames.csv, realtime_summary.json")
    return 0
