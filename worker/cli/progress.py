"""Progress bars for `backdrop run` and `backdrop demo`: one bar per stage."""

from typing import Any

from tqdm import tqdm

from worker.pipeline.style import StyleProgress

STAGES = ("intake", "segment", "dial", "stylize", "composite")


class StageBars:
    """A ProgressFn for run_local that draws a tqdm bar per stage on stderr."""

    def __init__(self, label: str = "") -> None:
        self._label = label
        self._bar: Any = None
        self._stage = ""

    def __call__(self, stage: str, progress: StyleProgress | None) -> None:
        if stage != self._stage:
            self._close()
            self._stage = stage
            total = progress.total if progress else 1
            self._bar = tqdm(total=total, desc=f"{self._label}{stage:<9}", unit="it", leave=True)
        if progress is not None:
            self._bar.set_postfix(loss=f"{progress.losses['total']:.3g}", refresh=False)
            self._bar.update(progress.iteration - self._bar.n)

    def _close(self, completed: bool = True) -> None:
        if self._bar is not None:
            if completed and self._stage != "stylize":
                self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()
            self._bar = None

    def finish(self, completed: bool = True) -> None:
        """Close the last bar; a failed stage's bar stays where it stopped."""
        self._close(completed)
