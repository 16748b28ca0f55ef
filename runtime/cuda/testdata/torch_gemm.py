# GEMM 4096^3 in PyTorch on the same GPU, the baseline for BenchmarkGemm4096: median of 30
# event-timed matmuls after 5 warm-ups, random data, fp32 (TF32 off), tf32 and fp16.
import torch

m = 4096
torch.manual_seed(0)
dev = "cuda"
a32 = torch.rand(m, m, device=dev) * 2 - 1
b32 = torch.rand(m, m, device=dev) * 2 - 1


def tflops(f):
    for _ in range(5):
        f()
    ts = []
    for _ in range(30):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        f()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return 2 * m**3 / (ts[len(ts) // 2] * 1e-3) / 1e12


torch.backends.cuda.matmul.allow_tf32 = False
fp32 = tflops(lambda: a32 @ b32)
torch.backends.cuda.matmul.allow_tf32 = True
tf32 = tflops(lambda: a32 @ b32)
a16, b16 = a32.half(), b32.half()
fp16 = tflops(lambda: a16 @ b16)
print(f"torch {torch.__version__} {torch.cuda.get_device_name()}: "
      f"fp32 {fp32:.1f} tf32 {tf32:.1f} fp16 {fp16:.1f} TFLOP/s")
