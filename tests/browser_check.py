"""The widgets in a real browser: JupyterLab 4 + headless Chromium (Debian's), driven by Playwright.

``make test-browser`` runs this. For each notebook with a widget it opens JupyterLab, runs all cells,
moves every control of the explorer and asserts that

- every code cell ran without a traceback and no "Error displaying widget" appears,
- the explorer's figure (a PNG inside the widget) changes after each move,
- the rough edges stay fixed: an empty prompt shows its error inside the widget, a word the CLIP does
  not know is named there, the half-window slider is disabled for TFSTP,
- the page raises no JavaScript exception.

Screenshots go to ``--out`` (default ``outputs/browser/``). JupyterLab serves *copies* of the notebooks
(it autosaves outputs into what it runs) on 127.0.0.1 with a random token; at the end, whatever
happened, it is shut down through its API and every process it started is killed by PID.
Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``) and ``pip install playwright`` (its own
browser download is not used).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [  # the background-networking flags keep Chromium from calling out on a closed network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: JupyterLab settings for a scripted run: every cell in the DOM (no virtual scrolling), no news toast.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


#: The notebook on screen (JupyterLab hides the panels of other tabs).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on 127.0.0.1 with a random token, in its own process group."""

    def __init__(self, root: Path, work: Path, log_dir: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        settings = work / "settings"
        for name, value in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(value))
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(work / "ws"))
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
            "--LabApp.extension_manager=readonly",  # no PyPI lookups from a closed network
        ]  # fmt: skip
        if os.geteuid() == 0:  # CI containers run as root; the server refuses that unless told
            cmd.append("--allow-root")
        self.log = open(log_dir / "jupyterlab.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}; see {self.log.name}")
            try:
                urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within 120 s; see {self.log.name}")

    def shutdown_kernels(self) -> None:
        """End every kernel (through the API), so the next notebook has the CPU to itself."""
        with urllib.request.urlopen(f"{self.url}/api/kernels?token={self.token}", timeout=10) as r:
            kernels = json.load(r)
        for k in kernels:
            req = urllib.request.Request(f"{self.url}/api/kernels/{k['id']}?token={self.token}", method="DELETE")
            urllib.request.urlopen(req, timeout=30)

    def descendants(self) -> list[int]:
        """PIDs of every process under the server (kernels run in sessions of their own), from /proc."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found, todo = [], [self.proc.pid]
        while todo:
            kids = children.get(todo.pop(), [])
            found += kids
            todo += kids
        return found

    def stop(self) -> None:
        """Shut the server and its kernels down through the API, then kill what is left by PID (the
        server's process group and every process it started)."""
        leftovers = self.descendants() if self.proc.poll() is None else []
        if self.proc.poll() is None:
            try:
                req = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST")
                urllib.request.urlopen(req, timeout=10)
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # already gone: the API shut it down
        self.log.close()


def wait_for(check: Callable[[], object], what: str, timeout: float) -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Notebook:
    """One notebook open in JupyterLab, its first explorer widget located."""

    def __init__(self, page, lab: Lab, name: str, shots: Path):
        self.page, self.name, self.shots = page, name, shots
        page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")  # reset: no tabs of earlier notebooks
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        wait_for(lambda: self.kernel_idle(), f"{name}'s kernel to start", 120)

    def kernel_idle(self) -> bool:
        return self.page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelStatus[title*='Idle'], "
                                 ".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0  # fmt: skip

    def run_all(self, timeout: float) -> None:
        def started() -> bool:
            prompts = self.page.locator(PANEL + " .jp-CodeCell .jp-InputPrompt").all_inner_texts()
            return any(p.strip() not in ("", "[ ]:") for p in prompts)

        for _ in range(3):  # a click that lands before the notebook is wired up is lost: try again
            self.page.locator(PANEL + " .jp-Notebook").first.click()
            self.page.get_by_role("menuitem", name="Run", exact=True).click()
            self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            try:
                wait_for(started, "Run All to start", 20)
                break
            except AssertionError:
                continue

        errors = self.page.locator(PANEL + " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")

        def tracebacks() -> list[str]:
            return [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t.split("\n")[0]]

        idle_polls = [0]

        def finished() -> bool:  # every code cell numbered, or a cell failed (Run All stops there)
            # A cell whose source is hidden (the exercises' solutions) shows no prompt: the kernel going idle,
            # and staying idle, tells that it ran too.
            prompts = [p.strip() for p in self.page.locator(PANEL + " .jp-CodeCell .jp-InputPrompt").all_inner_texts()]
            shown = [p for p in prompts if p]
            if not shown or any("*" in p for p in shown):
                return False
            done = all(p.strip(":").strip("[]").isdigit() for p in shown) or bool(tracebacks())
            idle_polls[0] = idle_polls[0] + 1 if done and self.kernel_idle() else 0
            return idle_polls[0] >= 8  # two seconds of an idle kernel

        wait_for(finished, f"every cell of {self.name} to run", timeout)
        failed = tracebacks()
        assert not failed, f"{self.name}: a cell failed:\n{failed[0][:3000]}"
        shown = " ".join(self.page.locator(PANEL + " .jp-OutputArea-output").all_inner_texts())
        assert "Error displaying widget" not in shown, f"{self.name}: a widget failed to display"

    which = 0  # the explorer being checked (a notebook may have several)

    @property
    def widget(self):
        return self.page.locator(PANEL + " .jp-OutputArea-output .widget-vbox").nth(self.which)

    def figure(self) -> str:
        return self.widget.locator(".widget-output img").first.get_attribute("src") or ""

    def status(self) -> str:
        return " ".join(self.widget.locator(".widget-html").all_inner_texts())

    def changes_figure(self, action: Callable[[], None], what: str, timeout: float = 60) -> None:
        """Do ``action`` and assert that the widget's figure changes; screenshot the widget."""
        before = self.figure()
        action()
        wait_for(lambda: self.figure() != before, f"{self.name}: the figure to change after {what}", timeout)
        self.shot(what)

    def shot(self, what: str) -> None:
        slug = "".join(c if c.isalnum() else "_" for c in what).strip("_")
        self.widget.scroll_into_view_if_needed()
        self.widget.screenshot(path=str(self.shots / f"{Path(self.name).stem}__{slug}.png"))

    def drag_slider(self, index: int, dx: int = 40) -> None:
        handle = self.widget.locator(".noUi-handle").nth(index)
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x + dx, y, steps=5)
        self.page.mouse.up()

    def type_prompt(self, index: int, text: str) -> None:
        box = self.widget.locator(".widget-text input").nth(index)
        box.fill(text)
        box.press("Enter")


def check_sensor(nb: Notebook) -> None:
    nb.changes_figure(lambda: nb.drag_slider(0, -60), "light slider")
    nb.changes_figure(lambda: nb.drag_slider(1, 40), "threshold slider")
    nb.changes_figure(lambda: nb.widget.locator("select").first.select_option("low_light"), "noise menu")


def check_window(nb: Notebook) -> None:
    nb.changes_figure(lambda: nb.drag_slider(0, 40), "key frame slider")
    nb.changes_figure(lambda: nb.drag_slider(1, -40), "half window slider")
    nb.changes_figure(lambda: nb.widget.get_by_role("button", name="tfi", exact=True).click(), "TFI button")
    nb.changes_figure(lambda: nb.widget.get_by_role("button", name="tfstp", exact=True).click(), "TFSTP button")
    wait_for(lambda: nb.widget.locator(".noUi-target[disabled]").count() == 1, "the half window to be disabled", 10)
    assert "half-window slider is off" in nb.status(), nb.status()


def check_prompt(nb: Notebook) -> None:
    nb.changes_figure(lambda: nb.type_prompt(0, "image of a car"), "prompt box")
    nb.changes_figure(lambda: nb.type_prompt(1, "image of a ring"), "contrast box")
    assert "press Enter" in nb.widget.inner_text(), "the text boxes carry no hint that Enter updates them"
    before = nb.figure()
    nb.type_prompt(0, "")
    wait_for(lambda: "ValueError" in nb.status(), "the empty prompt's error inside the widget", 30)
    assert nb.figure() == before, "the figure changed although the prompt was rejected"
    nb.shot("empty prompt error")
    nb.changes_figure(lambda: nb.type_prompt(0, "a photo of a dog"), "unknown word")
    wait_for(lambda: "does not know" in nb.status() and "'dog'" in nb.status(), "the unknown-word warning", 30)


def check_tradeoffs(nb: Notebook) -> None:
    nb.which = 0  # λ / defences explorer over cached runs
    nb.changes_figure(lambda: nb.widget.get_by_role("button", name="10", exact=True).click(), "lambda 10")
    nb.changes_figure(lambda: nb.widget.get_by_role("button", name="100", exact=True).click(), "lambda 100")
    nb.changes_figure(lambda: nb.widget.get_by_role("checkbox").click(), "defences off")
    before = nb.figure()
    nb.widget.get_by_role("button", name="1", exact=True).click()  # λ = 1 without defences: not trained
    wait_for(lambda: "KeyError" in nb.status(), "the missing run named inside the widget", 30)
    assert nb.figure() == before
    nb.which = 1  # before/after split
    nb.changes_figure(lambda: nb.drag_slider(1, -50), "split slider")
    nb.changes_figure(lambda: nb.drag_slider(0, 60), "scene slider")


#: A notebook that must fail: its hidden (collapsed) last cell raises. The check proves on it, first, that
#: a failure in a cell whose source is hidden (as the exercises' solutions are) is caught.
SELF_CHECK = "_browser_self_check.ipynb"
SELF_CHECK_NB = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "id": "a",
         "source": ["import time\n", "time.sleep(1)\n", "x = 1"]},
        {"cell_type": "code", "execution_count": None, "metadata": {"jupyter": {"source_hidden": True}},
         "outputs": [], "id": "b", "source": ["assert x == 2, 'the hidden cell fails on purpose'"]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}  # fmt: skip


def self_check(page, lab: Lab, shots: Path) -> None:
    nb = Notebook(page, lab, SELF_CHECK, shots)
    try:
        nb.run_all(120)
    except AssertionError as err:
        if "a cell failed" in str(err) and "on purpose" in str(err):
            return
        raise
    raise AssertionError("the self-check notebook's hidden failing cell went unnoticed")


#: notebook → what to do with its explorer
CHECKS = {
    "01_spike_camera_physics.ipynb": check_sensor,
    "02_tfp_tfi_baselines.ipynb": check_window,
    "03_clip_primer.ipynb": check_prompt,
    "05_prompt_learning.ipynb": check_prompt,
    "06_fine_reconstruction.ipynb": check_tradeoffs,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "outputs" / "browser"), help="screenshots go here")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="the browser (Debian's package)")
    ap.add_argument("--only", nargs="*", default=None, help="notebook names (default: all with a widget)")
    ap.add_argument("--cell-timeout", type=float, default=900, help="seconds for Run All of one notebook")
    args = ap.parse_args(argv)
    if not Path(args.chromium).exists():
        sys.exit(f"no browser at {args.chromium}: apt-get install -y chromium (Debian's package), or pass --chromium")
    from playwright.sync_api import sync_playwright

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` or a timeout still runs the clean-up below
    shots = Path(args.out)
    shots.mkdir(parents=True, exist_ok=True)
    names = args.only or list(CHECKS)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="spikeclip-browser-") as tmp:
        # JupyterLab autosaves a running notebook with its outputs: serve copies, never the committed files.
        # ../outputs is the repository's (stages cached by `make test` are reused), ../docs for the links.
        work = Path(tmp)
        shutil.copytree(ROOT / "notebooks", work / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        (work / "outputs").symlink_to(ROOT / "outputs", target_is_directory=True)
        (work / "docs").symlink_to(ROOT / "docs", target_is_directory=True)
        (ROOT / "outputs").mkdir(exist_ok=True)
        (work / "notebooks" / SELF_CHECK).write_text(json.dumps(SELF_CHECK_NB))
        lab = Lab(work / "notebooks", work, shots)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                self_check(page, lab, shots)  # raises (and fails the run) if a hidden cell's failure is missed
                page.close()
                lab.shutdown_kernels()
                print("ok   self-check: a failing cell with hidden source is caught", flush=True)
                for name in names:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    js_errors: list[str] = []
                    page.on("pageerror", lambda e, errs=js_errors: errs.append(str(e)))
                    t0 = time.time()
                    try:
                        nb = Notebook(page, lab, name, shots)
                        nb.run_all(args.cell_timeout)
                        CHECKS[name](nb)
                        assert not js_errors, f"{name}: JavaScript exceptions: {js_errors[:3]}"
                        print(f"ok   {name} ({time.time() - t0:.0f} s)", flush=True)
                    except Exception as err:  # noqa: BLE001 - collected, reported, and the run fails
                        page.screenshot(path=str(shots / f"{Path(name).stem}__FAILED.png"), full_page=True)
                        failures.append(f"{name}: {type(err).__name__}: {err}")
                        print(f"FAIL {failures[-1]}", flush=True)
                    finally:
                        page.close()
                        lab.shutdown_kernels()
                browser.close()
        finally:
            lab.stop()
    print(f"screenshots in {shots}")
    if failures:
        print("\n".join(["browser check failed:", *failures]))
        return 1
    print(f"browser check passed: {len(names)} notebooks, every control moved")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
