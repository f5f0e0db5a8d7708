"""Painting detail at full resolution (`quality: high` with `output: original`):
the working-size result upsampled, as `output: original` did, against the
same result painted on at the paint size (worker.pipeline.paint_full).

    .venv/bin/python -m benchmarks.paint_full [--working 256] [--side 512] [--refine 30]
        [--sheet-side 1024] [--no-pairs]

Per photo x painting (3 x 2): the default recipe at the working size, then at
the paint size the guided upsampling of it and the painted image, each
measured there: stroke frequency (worker.pipeline.measures), the judge's
style distance (worker.pipeline.judge: VGG layers the loss never sees) to the
painting as the paint path sizes it, and its content distance to the photo;
the paint's seconds and the process's peak RSS. Median and worst over pairs
of painted / upsampled. On the first pair, tiles (a budget of a quarter of
the picture) against none.

Last (alone with --no-pairs), the contact sheet docs/full_resolution_paint.jpg:
kite_and_cold.jpg enlarged to 4000 x 3000 (12 MP), stylized at the working
size, painted at --sheet-side, and composited by composite_full from each; a
640 px crop of the 12 MP results side by side, with a third panel painted
with the painting enlarged with the picture (the rule not taken), each
measured at the paint size (against the painting as the rule sizes it, and
enlarged) and on the 12 MP crop (against it at its own pixels).

On a 2-core CPU the sizes are small (working 256 -> paint 512, the sheet
256 -> 1024; the service paints 512 -> 2048): `make gpu-check` times that.
"""

import argparse
import json
import resource
import statistics
import time
from typing import Any

import cv2
import numpy as np

from benchmarks.common import REPO, feature_net, machine, write_json
from worker.pipeline.contact_sheet import contact_sheet

PHOTOS = ("grace_hopper.png", "parrot.jpg", "kite_and_cold.jpg")
PAINTINGS = ("starry.jpg", "waves.jpg")
SHEET = REPO / "docs" / "full_resolution_paint.jpg"


def _rgb(folder: str, name: str) -> np.ndarray:
    from tests.conftest import SHARED, read_rgb

    return read_rgb(SHARED / "images" / folder / name)


def _measures(judge_net: Any, photo: np.ndarray, painting: np.ndarray,
              image: np.ndarray) -> dict[str, float]:  # fmt: skip
    from worker.pipeline.judge import judge
    from worker.pipeline.measures import stroke_frequency

    j = judge(judge_net, photo, [(painting, 1.0)], image)
    return {"stroke_frequency": round(stroke_frequency(image), 4), "judge_style": round(j.style, 2),
            "judge_content": round(j.content, 1)}  # fmt: skip


def _as_painted(painting: np.ndarray, side: int, working: int) -> np.ndarray:
    """The painting at the size the paint path gives it at the paint size."""
    from worker.pipeline.paint_full import painting_side, paintings_at

    at = painting_side(max(painting.shape[:2]), 1.0, side, working)
    return np.asarray(paintings_at([(painting, 1.0)], at)[0][0])


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _stylized(net: Any, small: np.ndarray, painting: np.ndarray, iterations: int) -> np.ndarray:
    """The default recipe at the working size (device L-BFGS, as the workers)."""
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams

    params = StyleParams(iterations=iterations)
    last = list(stylize(small, [(painting, 1.0)], params, net, lbfgs_every=10))[-1]
    assert last.image is not None
    return last.image


def _painted(net: Any, photo: np.ndarray, stylized: np.ndarray, painting: np.ndarray,
             **paint: Any) -> tuple[np.ndarray, float]:  # fmt: skip
    """The paint path, and its seconds."""
    from worker.pipeline.paint_full import PaintParams, paint_full
    from worker.pipeline.style_params import StyleParams

    enlarge = paint.pop("enlarge_paintings", False)
    started = time.perf_counter()
    image = paint_full(photo, stylized, [(painting, 1.0)], StyleParams(), PaintParams(**paint),
                       net, lbfgs_every=10, enlarge_paintings=enlarge)  # fmt: skip
    return image, round(time.perf_counter() - started, 1)


def pair(nets: tuple[Any, Any], photo_name: str, painting_name: str,
         args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # fmt: skip
    """One photo and painting: upsampled against painted, at the paint size."""
    from worker.pipeline.full_resolution import upsample_stylized
    from worker.pipeline.intake import to_working_size

    net, judge_net = nets
    upload, painting = _rgb("photos", photo_name), _rgb("styles", painting_name)
    photo, small = to_working_size(upload, args.side), to_working_size(upload, args.working)
    stylized = _stylized(net, small, painting, args.iterations)
    upsampled = upsample_stylized(small, stylized, photo)
    painted, seconds = _painted(net, photo, stylized, painting, iterations=args.refine)
    target = _as_painted(painting, args.side, args.working)
    result = {"pair": f"{photo_name} + {painting_name}", "shape": list(photo.shape[:2]),
              "upsampled": _measures(judge_net, photo, target, upsampled),
              "painted": _measures(judge_net, photo, target, painted),
              "paint_seconds": seconds, "peak_rss_mb": _peak_mb()}  # fmt: skip
    pictures = {"photo": photo, "stylized": stylized, "painting": painting,
                "upsampled": upsampled, "painted": painted}  # fmt: skip
    return result, pictures


def tiled(nets: tuple[Any, Any], pictures: dict[str, np.ndarray],
          args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """The first pair again in tiles of a quarter of the picture, against none."""
    from worker.pipeline.paint_full import PaintParams, tile_boxes

    photo, painted = pictures["photo"], pictures["painted"]
    pixels = photo.shape[0] * photo.shape[1] // 4
    budget = {"tile_pixels": pixels, "tile_overlap": min(32, int(pixels**0.5) // 4)}
    image, seconds = _painted(nets[0], photo, pictures["stylized"], pictures["painting"],
                              iterations=args.refine, **budget)  # fmt: skip
    target = _as_painted(pictures["painting"], args.side, args.working)
    blur = lambda im: cv2.GaussianBlur(im.astype(np.float32), (0, 0), 2)  # noqa: E731
    apart = float(np.abs(blur(image) - blur(painted)).mean())
    return {"tiles": len(tile_boxes(photo.shape, PaintParams(**budget))), "seconds": seconds,
            "peak_rss_mb": _peak_mb(), "tiled": _measures(nets[1], photo, target, image),
            "untiled": _measures(nets[1], photo, target, painted),
            "blurred_difference_levels": round(apart, 2)}  # fmt: skip


def summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Painted over upsampled per pair: median and worst of each ratio."""

    def ratios(key: str) -> list[float]:
        return [p["painted"][key] / p["upsampled"][key] for p in pairs]

    style, strokes, content = (ratios(k) for k in ("judge_style", "stroke_frequency",
                                                   "judge_content"))  # fmt: skip
    seconds = [p["paint_seconds"] for p in pairs]
    return {"style_ratio_median": round(statistics.median(style), 3),
            "style_ratio_worst": round(max(style), 3),
            "stroke_ratio_median": round(statistics.median(strokes), 3),
            "stroke_ratio_worst": round(min(strokes), 3),
            "content_ratio_median": round(statistics.median(content), 3),
            "content_ratio_worst": round(max(content), 3),
            "paint_seconds_median": round(statistics.median(seconds), 1)}  # fmt: skip


def sheet(nets: tuple[Any, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A 12 MP photo stylized at the working size and painted at --sheet-side
    (the painting kept at its own pixels, the rule; and enlarged with the
    picture): measured at the paint size and on a crop of each 12 MP
    composite, the crops side by side."""
    from worker.pipeline.full_resolution import upsample_stylized
    from worker.pipeline.intake import to_working_size

    net, judge_net = nets
    kite = _rgb("photos", "kite_and_cold.jpg")
    upload = cv2.resize(kite[:, : kite.shape[0] * 4 // 3], (4000, 3000),
                        interpolation=cv2.INTER_CUBIC)  # 4:3, 12 MP  # fmt: skip
    side, painting = args.sheet_side, _rgb("styles", "starry.jpg")
    small, photo = to_working_size(upload, args.working), to_working_size(upload, side)
    stylized = _stylized(net, small, painting, args.iterations)
    images = {"upsampled": upsample_stylized(small, stylized, photo)}
    images["painted"], seconds = _painted(net, photo, stylized, painting, iterations=args.refine)
    images["enlarged"], _ = _painted(net, photo, stylized, painting, iterations=args.refine,
                                     enlarge_paintings=True)  # fmt: skip
    own, enlarged = _as_painted(painting, side, args.working), _as_painted(painting, side, side)
    report: dict[str, Any] = {"side": side, "paint_seconds": seconds, "peak_rss_mb": _peak_mb()}
    for name, image in images.items():
        report[name] = {**_measures(judge_net, photo, own, image), "judge_style_vs_enlarged":
                        _measures(judge_net, photo, enlarged, image)["judge_style"]}  # fmt: skip
    crops = _crops_12mp(upload, (small, stylized), (photo, images), report)
    report["crop_12mp"] = {name: _measures(judge_net, upload[CROP], painting, crop)
                           for name, crop in crops.items()}  # fmt: skip
    labels = {"upsampled": f"upsampled from {args.working} px",
              "painted": f"painted at {side} px",
              "enlarged": f"painting enlarged to {side} px"}  # fmt: skip
    picture = contact_sheet([(labels[name], crop) for name, crop in crops.items()], height=640)
    cv2.imwrite(str(SHEET), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])  # fmt: skip
    report["sheet"] = str(SHEET.relative_to(REPO))
    return report


CROP = (slice(1980, 2620), slice(180, 820))  # the two people, 640 px at 1:1


def _crops_12mp(upload: np.ndarray, working: tuple[np.ndarray, np.ndarray],
                painted: tuple[np.ndarray, dict[str, np.ndarray]],
                report: dict[str, Any]) -> dict[str, np.ndarray]:  # fmt: skip
    """Each picture composited at 12 MP by composite_full (the composite
    step's path: the painted ones guided by the photo at the paint size)."""
    from worker.pipeline.full_resolution import composite_full
    from worker.pipeline.stages import CompositeParams

    mask = np.ones(working[0].shape[:2], np.float32)
    photo, images = painted
    started = time.perf_counter()
    _, full = composite_full(upload, working[0], mask, working[1], "full", CompositeParams())
    report["composite_12mp_seconds"] = round(time.perf_counter() - started, 1)
    crops = {"upsampled": full[CROP]}
    for name in ("painted", "enlarged"):
        _, full = composite_full(upload, photo, mask, images[name], "full", CompositeParams())
        crops[name] = full[CROP]
    return crops


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.conftest import MODELS
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.judge import JUDGE_LAYERS

    nets = (feature_net(), load_feature_net(JUDGE_LAYERS, MODELS))
    report: dict[str, Any] = {"machine": machine(), **vars(args)}
    if not args.no_pairs:
        report.update(_pairs(nets, args, report))
    if args.sheet_side:
        report["sheet"] = sheet(nets, args)
        print(json.dumps(report["sheet"]), flush=True)
    return report


def _pairs(nets: tuple[Any, Any], args: argparse.Namespace,
           report: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    pairs, first = [], None
    for photo_name in PHOTOS:
        for painting_name in PAINTINGS:
            result, pictures = pair(nets, photo_name, painting_name, args)
            pairs.append(result)
            first = first or pictures
            print(json.dumps(result), flush=True)
            # Kept after every pair: a run cut off still leaves what it measured.
            write_json("paint_full.partial", {**report, "pairs": pairs})
    done = {"pairs": pairs, "summary": summary(pairs)}
    print(json.dumps(done["summary"]), flush=True)
    assert first is not None
    done["tiles"] = tiled(nets, first, args)
    print(json.dumps(done["tiles"]), flush=True)
    write_json("paint_full.partial", {**report, **done})
    return done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--working", type=int, default=256, help="working size")
    parser.add_argument("--side", type=int, default=512, help="paint size of the pairs")
    parser.add_argument("--iterations", type=int, default=100, help="at the working size")
    parser.add_argument("--refine", type=int, default=30, help="paint iterations")
    parser.add_argument("--sheet-side", type=int, default=1024, help="0: no contact sheet")
    parser.add_argument("--no-pairs", action="store_true", help="the contact sheet only")
    args = parser.parse_args()
    print(write_json("paint_full_sheet" if args.no_pairs else "paint_full", run(args)))


if __name__ == "__main__":
    main()
