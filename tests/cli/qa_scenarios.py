"""Small valid scenarios that the bad-input tests break one field at a time."""

TRAINING = """name: qa
workload: {kind: training, model: gpt2, seq_len: 1024, global_batch: 16, micro_batch: 2, steps: 10}
cluster: {hardware: a100-sxm4-80gb, devices: 8}
parallelism: {tp: 2, pp: 2}
"""
INFERENCE = """name: inf
workload: {kind: inference, model: gpt2, prompt_tokens: 128, output_tokens: 32, batch: 4, dtype: fp16}
cluster: {hardware: a100-sxm4-80gb, devices: 1}
serving:
  arrivals: {kind: poisson, rate_per_s: 5}
  prompt_tokens: 128
  output_tokens: 32
  duration_s: 20
"""
