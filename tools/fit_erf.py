"""Fit erf(z) ~= z * P(z^2) / Q(z^2), Q(0) = 1, minimising the max absolute
error on [0, ZMAX] (Lawson-weighted, linearised Sanathanan-Koerner iteration)."""
import math
import numpy as np

NP, NQ, ZMAX = 6, 5, 3.92  # P degree NP-1 in t, Q degree NQ in t
z = np.linspace(0, ZMAX, 20001)
f = np.array([math.erf(v) for v in z])
t = z * z
A_P = np.stack([z * t**k for k in range(NP)], 1)
A_Q = np.stack([-f * t**k for k in range(1, NQ + 1)], 1)
A = np.hstack([A_P, A_Q])
q_prev = np.ones_like(z)
lw = np.ones_like(z)
for it in range(200):
    w = lw / q_prev
    coef, *_ = np.linalg.lstsq(A * w[:, None], f * w, rcond=None)
    p, q = coef[:NP], np.concatenate([[1.0], coef[NP:]])
    Q = np.polyval(q[::-1], t)
    R = z * np.polyval(p[::-1], t) / Q
    err = np.abs(R - f)
    q_prev = Q
    lw = lw * (err / err.max()) ** 0.3 + 1e-12
    lw /= lw.sum()
print("max abs err f64:", err.max())
print("P", [float(np.float32(c)) for c in p])
print("Q", [float(np.float32(c)) for c in q])
# evaluate with float32 coefficients in float32 arithmetic
p32 = p.astype(np.float32); q32 = q.astype(np.float32)
z32 = np.linspace(0, 4.5, 200001).astype(np.float32)
zc = np.minimum(z32, np.float32(ZMAX)); t32 = zc * zc
P = np.zeros_like(t32); Q = np.zeros_like(t32)
for c in p32[::-1]: P = P * t32 + c
for c in q32[::-1]: Q = Q * t32 + c
R = zc * P / Q
ref = np.array([math.erf(float(v)) for v in z32])
print("f32 max abs err:", np.abs(R - ref).max(), " max rel err (z<1):",
      (np.abs(R - ref) / np.maximum(ref, 1e-30))[z32 < 1][1:].max(), " R(ZMAX)=", repr(R[-1]))
for k, c in enumerate(p32): print(f"#define ERF_P{k} {c!r:}f".replace("np.float32(", "").replace(")f", "f"))
for k, c in enumerate(q32): print(f"#define ERF_Q{k} {c!r}f".replace("np.float32(", "").replace(")f", "f"))
zz = z32.astype(np.float64); zc = np.minimum(zz, ZMAX); tt = zc*zc
R64 = zc*np.polyval(p32.astype(np.float64)[::-1], tt)/np.polyval(q32.astype(np.float64)[::-1], tt)
e = np.abs(R64-ref); print("f32 coefs f64 arith:", e.max(), "at z", zz[e.argmax()])
e = np.abs(R-ref); print("f32 arith worst at z", zz[e.argmax()])
