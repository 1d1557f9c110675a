"""The app's Occlusion tab, timed offscreen: seconds from Run to the first
whole heatmap row on screen, the whole map, and how many dragged-patch
updates a second reach the screen while a timer moves the patch faster
than probes can follow (so the coalescing is what is measured).

    python benchmarks/app_occlusion.py [MODEL] [--layer NAME ...] [--seconds 5]

Issue 20's targets: the first rows of a ResNet-18 map within 2 s, and 10 or
more drag updates a second on ResNet-18 on a 2-core machine. Load matters on
a shared machine: the script prints `os.getloadavg()` beside each number.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache", "resnet18.onnx")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=CACHE if os.path.exists(CACHE) else "efficientnet_lite0")
    ap.add_argument("--image", default=None)
    ap.add_argument("--layer", action="append", default=None,
                    help="layer selected while dragging (repeat; default: the first layer and one halfway)")
    ap.add_argument("--seconds", type=float, default=5.0, help="drag time per layer")
    ap.add_argument("--mode", default="incremental")
    ap.add_argument("--no-map", action="store_true", help="skip the heatmap run")
    args = ap.parse_args(argv)

    import cnnengine as ce
    from PyQt6.QtCore import QEventLoop, QSettings, QTimer
    from cnnengine.viewer.app import MainWindow, make_app

    app = make_app()
    win = MainWindow(settings=QSettings(os.devnull, QSettings.Format.IniFormat), interactive=False)
    win.resize(1500, 950)
    win.show()

    def wait(signal, ms=600_000):
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def load():
        return "load %.2f %.2f %.2f" % os.getloadavg()

    win.open_model(args.model, image=args.image or ce.sample_image("cat"))
    wait(win.ready)
    panel = win.occlusion
    print(f"{win.bundle.name}: input {tuple(win.image.x.shape)}, model threads {win.bundle.model.threads} "
          f"(0 = all {os.cpu_count()} cores) · {load()}")
    win.set_tab("occlusion")
    while not panel.is_idle() or panel.probe_result is None:
        app.processEvents()
        time.sleep(0.002)
    if not args.no_map:
        panel.mode.setCurrentText(args.mode)
        t0 = time.perf_counter()
        panel.run()
        wait(panel.finished)
        r = panel.result
        print(f"map {r.heatmap.shape[0]}x{r.heatmap.shape[1]} {r.mode}: first row on screen "
              f"{panel.first_rows_s:.2f} s, whole map {time.perf_counter() - t0:.2f} s "
              f"({r.timings['ms_per_position']:.1f} ms/position, setup {r.timings['setup_s']:.2f} s) · {load()}")
    layers = args.layer or [win.bundle.summary[0].name, win.bundle.summary[len(win.bundle.summary) // 2].name]
    h, w = win.image.x.shape[2:]
    p = panel.patch.value()
    for layer in layers:
        win.navigator.select(win.bundle.index[layer])
        while not panel.is_idle():
            app.processEvents()
            time.sleep(0.002)
        moves, shown0 = [0], panel.probes_shown
        t_end = time.perf_counter() + args.seconds

        def step():     # a diagonal sweep, one pixel every 5 ms: faster than any probe
            k = moves[0] = moves[0] + 1
            panel.move_patch((k * 3) % (h - p), (k * 2) % (w - p))
        timer = QTimer()
        timer.timeout.connect(step)
        t0 = time.perf_counter()
        timer.start(5)
        while time.perf_counter() < t_end:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        secs = time.perf_counter() - t0
        shown = panel.probes_shown - shown0
        probes = panel.probe_log[-shown:] if shown else []
        mean_ms = 1e3 * sum(s for _, s in probes) / max(1, len(probes))
        print(f"drag over {layer}: {shown / secs:.1f} updates/s ({shown} shown for {moves[0]} moves "
              f"in {secs:.1f} s, probe {mean_ms:.0f} ms) · {load()}")
        if not shown:
            print(f"  nothing shown: {panel.probe_info.text()}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
