"""During a study, third-party INFO records (Dask's scheduler, ...) go to ``study.log``, not the terminal."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from graphtickets.study.runner import _study_logging


@pytest.fixture
def console() -> io.StringIO:
    """A root handler like the CLI's ``logging.basicConfig`` (format and WARNING level)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_third_party_info_reaches_the_study_log_only(console: io.StringIO, tmp_path: Path) -> None:
    dask = logging.getLogger("distributed.scheduler")
    before = dask.level
    dask.setLevel(logging.INFO)  # what distributed's own logging config sets
    try:
        with _study_logging(tmp_path):
            dask.info("State start")
            dask.warning("a worker was lost")
            logging.getLogger("graphtickets.study").info("done random")
            logging.getLogger("graphtickets.study").warning("a cell failed")
        dask.info("after the study")  # the routing ends with the study
    finally:
        dask.setLevel(before)
    shown = console.getvalue()
    assert "State start" not in shown and "done random" not in shown
    assert "WARNING distributed.scheduler: a worker was lost" in shown and "a cell failed" in shown
    assert "INFO distributed.scheduler: after the study" in shown
    log = (tmp_path / "study.log").read_text()
    for text in ("INFO distributed.scheduler: State start", "WARNING distributed.scheduler: a worker was lost",
                 "INFO graphtickets.study: done random", "WARNING graphtickets.study: a cell failed"):
        assert log.count(text) == 1, text  # once: graphtickets' records are not written twice
    assert "after the study" not in log
