#!/bin/bash
# The 18th session's first device call (one H100): the GEMM GPU tests (the zoo's einsums and the
# linear on a copy), then the A/B of the four problems the GEMM changes move (einsum lowered,
# linear on a copy, large tiles at half a wave): OLD from HEAD~1's generate_sources, NEW from HEAD's.
#   OUT=$OUT bash bench/session18/first_device.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 240 python3 -m pytest -q -m gpu tests/test_gemm.py > "$OUT/gpu_test_gemm.log" 2>&1
tail -3 "$OUT/gpu_test_gemm.log"
P="suite/level1/008_matmul_transposed_a.py suite/level1/012_matmul_4d_tensor_matrix.py suite/level3/011_transformer_encoder_layer.py suite/level3/012_multi_head_attention.py"
timeout 300 python3 scripts/ab_generated.py abx/old abx/new $P --rounds 7 --trials 30 --json "$OUT/ab_gemm_forms_h100.json" 2>&1 | tail -12
