import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# pytest-xdist already keeps both cores busy: a second compiling process per model would
# only compete with the other test worker (test_parallel_compile.py turns it on).
os.environ.setdefault("NNGRAPH_COMPILE_JOBS", "1")
