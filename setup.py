"""Build the C kernels and the Cython binding as one extension module.

csrc/x86/*.c carry `#pragma GCC target("avx2,fma")` themselves, so every file
can share one set of flags; nothing outside csrc/x86 sees AVX2, and the
choice between the two is made at run time (csrc/core/platform.c).
Never -march=native: the result must run on any x86-64.
"""
import glob
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

C_SOURCES = sorted(
    glob.glob("csrc/core/*.c") + glob.glob("csrc/ops/*.c") + glob.glob("csrc/x86/*.c")
)
# -g1 (after Python's -g): line tables for profilers, without the variable
# locations that cost a third of the compile time of the big tile files.
CFLAGS = ["-O3", "-g1", "-std=gnu11", "-fopenmp", "-fno-math-errno", "-Wall",
          "-Wno-unused-function"]
LDFLAGS = ["-fopenmp", "-lm"]
# CNNENGINE_SANITIZE=address,undefined: the C code under ASan/UBSan
# (tools/sanitize.sh builds and tests so, preloading the runtime).
if os.environ.get("CNNENGINE_SANITIZE"):
    SAN = ["-fsanitize=" + os.environ["CNNENGINE_SANITIZE"], "-fno-omit-frame-pointer"]
    CFLAGS += SAN
    LDFLAGS += SAN

# Compile seconds at -O3 -g on this 2-core box: the tile files dominate
# (the other 35 files take 10 s together).
SLOW_FIRST = [
    "csrc/x86/nchwc_avx512.c",   # 118 s
    "csrc/x86/nchwc_avx2.c",     # 46 s
    "cnnengine/_kernels.c",      # 12 s (Cython output)
    "csrc/x86/depthwise_avx2.c", # 10 s
    "csrc/x86/depthwise_avx512.c",
]


class ParallelBuildExt(build_ext):
    """Compile the C files of one extension concurrently, one compiler
    process per core (CNNENGINE_BUILD_JOBS overrides)."""

    def build_extensions(self):
        compiler = self.compiler
        original = compiler.compile

        def compile_parallel(sources, *args, **kwargs):
            jobs = int(os.environ.get("CNNENGINE_BUILD_JOBS", os.cpu_count() or 1))
            if jobs <= 1 or len(sources) <= 1:
                return original(sources, *args, **kwargs)
            # Slowest first (SLOW_FIRST), so none of them starts last and runs alone.
            rank = {path: r for r, path in enumerate(SLOW_FIRST)}
            order = sorted(range(len(sources)),
                           key=lambda i: rank.get(sources[i].replace(os.sep, "/"), len(rank)))
            with ThreadPoolExecutor(jobs) as pool:
                parts = dict(zip(order, pool.map(lambda i: original([sources[i]], *args, **kwargs),
                                                 order)))
            # objects in the sources' order: the link line stays the same
            return [obj for i in range(len(sources)) for obj in parts[i]]

        compiler.compile = compile_parallel
        super().build_extensions()


ext = Extension(
    "cnnengine._kernels",
    ["cnnengine/_kernels.pyx"] + C_SOURCES,
    include_dirs=["csrc/include", "csrc/core", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=CFLAGS,
    extra_link_args=LDFLAGS,
)

class BuildPyWithCudaSources(build_py):
    """Installs csrc/cuda's kernel sources as package data of the CUDA
    backend (compiled at run time by NVRTC, so they ship as text)."""

    def run(self):
        super().run()
        import shutil
        dest = os.path.join(self.build_lib, "cnnengine", "backend", "cuda", "csrc")
        os.makedirs(dest, exist_ok=True)
        for path in glob.glob("csrc/cuda/*.cu") + glob.glob("csrc/cuda/*.cuh"):
            shutil.copy(path, dest)


setup(
    ext_modules=cythonize(
        [ext],
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False},
    ),
    cmdclass={"build_ext": ParallelBuildExt, "build_py": BuildPyWithCudaSources},
)
