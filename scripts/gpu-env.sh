# Sourced by scripts/gpu-bench.sh and scripts/gpu-check.sh on a GPU machine: finds the CUDA
# build of syllabus and the CUDA 13 runtime libraries it links against, and the output folder.
#
# Environment (all optional):
#   SYLLABUS_BIN    the CUDA binary (default: target-cuda/dist/syllabus from scripts/build-cuda.sh,
#                   else target-cuda/release/syllabus, else target-cuda/carry/syllabus.gz (the
#                   copy to carry to a GPU machine) unpacked into $GPU_WORK_DIR/bin)
#   CUDA_LIB_DIR    folder with libcudart.so.13, libcublas.so.13 (+ libcublasLt.so.13) and
#                   libcurand.so.10 (default: the nvidia/cu13/lib folder of the
#                   Python environment that holds PyTorch); "none" for a dry run of the
#                   scripts with a CPU build on the CPU
#   PYTHON          that Python (default python3)
#   OUT             where the summary reports go (default runs/gpu); the device tool sets it
#   GPU_WORK_DIR    intermediate files and run directories (default runs/gpu)
PYTHON=${PYTHON:-python3}
OUT=${OUT:-runs/gpu}
WORK=${GPU_WORK_DIR:-runs/gpu}
mkdir -p "$OUT" "$WORK"
if [ -z "${SYLLABUS_BIN:-}" ]; then
  for candidate in target-cuda/dist/syllabus target-cuda/release/syllabus; do
    if [ -x "$candidate" ]; then SYLLABUS_BIN=$candidate; break; fi
  done
fi
if [ -z "${SYLLABUS_BIN:-}" ] && [ -f target-cuda/carry/syllabus.gz ]; then
  mkdir -p "$WORK/bin"
  gzip -dc target-cuda/carry/syllabus.gz >"$WORK/bin/syllabus.tmp" &&
    chmod +x "$WORK/bin/syllabus.tmp" && mv "$WORK/bin/syllabus.tmp" "$WORK/bin/syllabus" &&
    SYLLABUS_BIN=$WORK/bin/syllabus
fi
if [ -z "${SYLLABUS_BIN:-}" ] || [ ! -x "$SYLLABUS_BIN" ]; then
  echo "gpu: no CUDA build of syllabus found (build it with scripts/build-cuda.sh and carry" \
    "target-cuda/carry, or set SYLLABUS_BIN)" >&2
  exit 1
fi
if [ -z "${CUDA_LIB_DIR:-}" ]; then
  CUDA_LIB_DIR=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cu13/lib
fi
if [ "$CUDA_LIB_DIR" != none ]; then
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
    if [ ! -e "$CUDA_LIB_DIR/$lib" ]; then
      echo "gpu: $lib not found in CUDA_LIB_DIR=$CUDA_LIB_DIR (set CUDA_LIB_DIR)" >&2
      exit 1
    fi
  done
  export LD_LIBRARY_PATH=$CUDA_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
echo "gpu: binary $SYLLABUS_BIN, CUDA libraries from $CUDA_LIB_DIR, reports in $OUT" >&2
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader >&2 || true
