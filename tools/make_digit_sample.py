"""Draw the digit sample bundled for LeNet-5 (cnnengine/data/digit4.png).

    python tools/make_digit_sample.py

LeNet-5 (tools/train_lenet5.py) learned scikit-learn's 8x8 digits: white ink
on black, the digit filling the frame's height and about three quarters of
its width, strokes about a quarter of the frame thick. This draws a "4" the
same way from Pillow's built-in scalable font (Aileron Regular, CC0; no
download, no system font), 128x128 px, and checks that the bundled LeNet-5
reads it as a 4 before writing it.
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "cnnengine", "data", "digit4.png")
DIGIT, SIZE, STROKE = "4", 128, 4
BOX = (1.25, 0.25, 6.75, 7.75)       # where the ink goes, in units of 1/8 of the image (left, top, right, bottom)


def draw(digit=DIGIT, size=SIZE, stroke=STROKE, box=BOX):
    from PIL import Image, ImageDraw, ImageFont

    big = Image.new("L", (256, 256), 0)
    d = ImageDraw.Draw(big)
    font = ImageFont.load_default(size=204)
    d.text((128, 128), digit, fill=255, font=font, anchor="mm", stroke_width=stroke * 4, stroke_fill=255)
    glyph = big.crop(big.getbbox())
    x0, y0, x1, y1 = (int(v * size / 8) for v in box)
    out = Image.new("L", (size, size), 0)
    out.paste(glyph.resize((x1 - x0, y1 - y0), Image.LANCZOS), (x0, y0))
    return out


def main():
    import cnnengine as ce
    from cnnengine.preprocess import load_image

    img = draw()
    model = ce.load("lenet5")
    logits = np.asarray(model.run(load_image(img, model.preprocess))).reshape(-1)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    top = int(np.argmax(p))
    if model.labels[top] != DIGIT:
        sys.exit(f"LeNet-5 reads the drawn {DIGIT} as {model.labels[top]} ({p[top]:.2f}); not written")
    img.save(OUT, optimize=True)
    print(f"wrote {OUT}: LeNet-5 reads {model.labels[top]} with p = {p[top]:.3f}")


if __name__ == "__main__":
    main()
