"""The app's Graph tab, timed offscreen: the layered layout (once per model),
building the scene, and the time of one repaint while zooming and panning at
several scales (a frame under ~30 ms reads as fluid), as a wheel or a drag
does it (drawn without antialiasing while moving), and the smooth repaint
once the motion stops.

    python benchmarks/app_graph.py [MODEL] [--frames 40]

Without MODEL it uses a DenseNet-121 exported with torch (random weights, the
torch-only definition in tests/models/archs.py), ~370 layers and ~900 edges.
Load matters on a shared machine: the script prints os.getloadavg().
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def densenet121(path):
    import torch
    from tests.models.archs import DenseNet
    m = DenseNet(growth=32, blocks=(6, 12, 24, 16), init=64, bn_size=4, num_classes=1000).eval()
    torch.onnx.export(m, torch.randn(1, 3, 64, 64), path, opset_version=13, dynamo=False)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--frames", type=int, default=40)
    args = ap.parse_args(argv)
    model = args.model or densenet121(os.path.join(tempfile.mkdtemp(), "densenet121.onnx"))

    from cnnengine.viewer import session
    from cnnengine.viewer.app import make_app
    from cnnengine.viewer.widgets.graph_view import GraphView, node_sizes

    app = make_app()
    bundle = session.open_model(model)
    rows = [-1] + list(range(len(bundle.summary)))
    t0 = time.perf_counter()
    lay = session.graph_layout(bundle, node_sizes(rows))
    t_layout = time.perf_counter() - t0
    view = GraphView()
    view.resize(1000, 850)
    view.show()
    app.processEvents()
    t0 = time.perf_counter()
    view.set_graph(bundle.summary, bundle.edges, bundle.merges, bundle.model, lay)
    t_scene = time.perf_counter() - t0
    mid = len(bundle.summary) // 2
    view.set_current(mid)
    app.processEvents()
    print(f"{os.path.basename(model)}: {len(bundle.summary)} layers, {len(lay.paths)} edges, "
          f"{sum(len(r) for r in lay.order)} nodes+dummies, {len(lay.order)} levels, "
          f"{lay.crossings()} crossings, {lay.width:.0f}x{lay.height:.0f} px")
    print(f"layout {t_layout * 1e3:.0f} ms, scene {t_scene * 1e3:.0f} ms   load {os.getloadavg()[0]:.1f}")

    vp = view.view.viewport()
    for scale in (1.0, 0.3, 0.08):
        view.set_scale(scale)
        vp.repaint()
        zoom, pan = [], []
        for k in range(args.frames):
            t0 = time.perf_counter()
            view.view.moving()                      # what a wheel event does first
            view.view.zoom(1.1 if k % 2 else 1 / 1.1)
            vp.repaint()
            zoom.append(time.perf_counter() - t0)
        bar = view.view.verticalScrollBar()
        for k in range(args.frames):
            t0 = time.perf_counter()
            view.view.moving()                      # what a drag does
            bar.setValue(bar.value() + (40 if k % 10 < 5 else -40))
            vp.repaint()
            pan.append(time.perf_counter() - t0)
        view.view._smooth.stop()
        t0 = time.perf_counter()
        view.view._settle_smooth()
        vp.repaint()
        smooth = time.perf_counter() - t0
        print(f"scale {scale:4.2f}: zoom step + repaint median {statistics.median(zoom) * 1e3:5.1f} ms "
              f"(max {max(zoom) * 1e3:5.1f}), pan step + repaint median {statistics.median(pan) * 1e3:5.1f} ms "
              f"(max {max(pan) * 1e3:5.1f}), smooth repaint after {smooth * 1e3:5.1f} ms"
              f"   load {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    view.fit()
    vp.repaint()
    print(f"fit whole graph + repaint {1e3 * (time.perf_counter() - t0):.1f} ms")


if __name__ == "__main__":
    main()
