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

C_SOURCES = sorted(
    glob.glob("csrc/core/*.c") + glob.glob("csrc/ops/*.c") + glob.glob("csrc/x86/*.c")
)
CFLAGS = ["-O3", "-std=gnu11", "-fopenmp", "-fno-math-errno", "-Wall", "-Wno-unused-function"]


class ParallelBuildExt(build_ext):
    """Compile the many small C files of one extension concurrently."""

    def build_extensions(self):
        compiler = self.compiler
        original = compiler.compile

        def compile_parallel(sources, *args, **kwargs):
            jobs = int(os.environ.get("CNNENGINE_BUILD_JOBS", os.cpu_count() or 1))
            if jobs <= 1 or len(sources) <= 1:
                return original(sources, *args, **kwargs)
            with ThreadPoolExecutor(jobs) as pool:
                parts = pool.map(lambda s: original([s], *args, **kwargs), sources)
                return [obj for part in parts for obj in part]

        compiler.compile = compile_parallel
        super().build_extensions()


ext = Extension(
    "cnnengine._kernels",
    ["cnnengine/_kernels.pyx"] + C_SOURCES,
    include_dirs=["csrc/include", "csrc/core", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=CFLAGS,
    extra_link_args=["-fopenmp", "-lm"],
)

setup(
    ext_modules=cythonize(
        [ext],
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False},
    ),
    cmdclass={"build_ext": ParallelBuildExt},
)
