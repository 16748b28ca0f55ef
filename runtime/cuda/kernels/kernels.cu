// clockwork's own CUDA kernels, compiled by NVRTC at start-up (runtime/cuda/nvrtc.go) for the
// device's architecture and cached by the hash of this text, the options and the NVRTC version.
// No #include: NVRTC is given no headers, so fp16 goes through PTX cvt instructions.
// Layouts are NCHW fp32 unless a name says otherwise; element counts are long (64-bit).

#define CW_GRID_STRIDE(i, n) \
  for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long)blockDim.x * gridDim.x)

__device__ __forceinline__ float cw_act(float v, int op, float a, float b) {
  switch (op) {
  case 0: return v;                                      // identity
  case 1: return fmaxf(v, 0.0f);                         // relu
  case 2: return fminf(fmaxf(v, a), b);                  // clip(a, b): relu6 = clip(0, 6)
  case 3: return 1.0f / (1.0f + expf(-v));               // sigmoid
  case 4: return tanhf(v);                               // tanh
  case 5: return fminf(fmaxf(a * v + b, 0.0f), 1.0f);    // hardsigmoid(alpha a, beta b)
  case 6: return v * fminf(fmaxf(v / 6.0f + 0.5f, 0.0f), 1.0f); // hardswish
  case 7: return v >= 0.0f ? v : a * v;                  // leaky relu(a)
  case 8: return v / (1.0f + expf(-v));                  // silu (swish)
  }
  return __int_as_float(0x7fc00000); // unknown op: NaN, so a test sees it
}

// y[i] = act(x[i]); x and y may alias.
extern "C" __global__ void cw_unary(const float* x, float* y, long n, int op, float a, float b) {
  CW_GRID_STRIDE(i, n) { y[i] = cw_act(x[i], op, a, b); }
}

// y[i] = a[i] (op) b[i]; any of them may alias.
extern "C" __global__ void cw_binary(const float* a, const float* b, float* y, long n, int op) {
  CW_GRID_STRIDE(i, n) {
    float u = a[i], v = b[i], r;
    switch (op) {
    case 0: r = u + v; break;
    case 1: r = u * v; break;
    case 2: r = u - v; break;
    case 3: r = u / v; break;
    case 4: r = fmaxf(u, v); break;
    default: r = __int_as_float(0x7fc00000);
    }
    y[i] = r;
  }
}

// y = act(x + bias[c]) over NCHW with hw = H*W; x and y may alias. bias may be null (no add).
extern "C" __global__ void cw_bias_act(const float* x, const float* bias, float* y, long n, int c, long hw, int op, float a, float b) {
  CW_GRID_STRIDE(i, n) {
    float v = x[i];
    if (bias) v += bias[(i / hw) % c];
    y[i] = cw_act(v, op, a, b);
  }
}

// y = x * s[n*C + c] (squeeze-excitation scaling): s holds one value per (batch, channel).
extern "C" __global__ void cw_channel_scale(const float* x, const float* s, float* y, long n, long hw) {
  CW_GRID_STRIDE(i, n) { y[i] = x[i] * s[i / hw]; }
}

// One input of a concat: y[o, off + j] = x[o, j] for o < outer, j < inner. For NCHW channel
// concat: outer = N, inner = Cx*H*W, yInner = Cy*H*W, off = channel offset * H*W.
extern "C" __global__ void cw_concat(const float* x, float* y, long outer, long inner, long yInner, long off) {
  long n = outer * inner;
  CW_GRID_STRIDE(i, n) {
    long o = i / inner, j = i - o * inner;
    y[o * yInner + off + j] = x[i];
  }
}

// Row softmax over rows x cols, one block per row (blockDim.x a power of two ≤ 1024).
extern "C" __global__ void cw_softmax(const float* x, float* y, int rows, int cols) {
  __shared__ float red[1024];
  int row = blockIdx.x;
  if (row >= rows) return;
  const float* xr = x + (long)row * cols;
  float* yr = y + (long)row * cols;
  float m = -3.402823466e38f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
  red[threadIdx.x] = m;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
    __syncthreads();
  }
  m = red[0];
  __syncthreads();
  float sum = 0.0f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(xr[j] - m);
  red[threadIdx.x] = sum;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  float inv = 1.0f / red[0];
  for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = expf(xr[j] - m) * inv;
}

// 2-D pooling over NCHW. mode 0: max (padding never wins); 1: average counting padding;
// 2: average over the valid window only.
extern "C" __global__ void cw_pool2d(const float* x, float* y, int nc, int h, int w, int oh, int ow,
                                     int kh, int kw, int sh, int sw, int ph, int pw, int mode) {
  long n = (long)nc * oh * ow;
  CW_GRID_STRIDE(i, n) {
    int ox = i % ow;
    int oy = (i / ow) % oh;
    long p = i / ((long)ow * oh);
    const float* xp = x + p * h * w;
    int y0 = oy * sh - ph, x0 = ox * sw - pw;
    float acc = mode == 0 ? -3.402823466e38f : 0.0f;
    int cnt = 0;
    for (int ky = 0; ky < kh; ky++) {
      int yy = y0 + ky;
      if (yy < 0 || yy >= h) continue;
      for (int kx = 0; kx < kw; kx++) {
        int xx = x0 + kx;
        if (xx < 0 || xx >= w) continue;
        float v = xp[yy * w + xx];
        if (mode == 0) acc = fmaxf(acc, v); else acc += v;
        cnt++;
      }
    }
    if (mode == 1) acc /= (float)(kh * kw);
    if (mode == 2) acc = cnt > 0 ? acc / (float)cnt : 0.0f;
    y[i] = acc;
  }
}

// Global average pool: y[p] = mean(x[p*hw : (p+1)*hw]) for p < nc; one warp per p.
extern "C" __global__ void cw_global_avgpool(const float* x, float* y, int nc, int hw) {
  int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x & 31;
  if (warp >= nc) return;
  const float* xp = x + (long)warp * hw;
  float s = 0.0f;
  for (int j = lane; j < hw; j += 32) s += xp[j];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) y[warp] = s / (float)hw;
}

// Layout transforms between NCHW and NHWC (hw = H*W).
extern "C" __global__ void cw_nchw_to_nhwc(const float* x, float* y, int n, int c, long hw) {
  long total = (long)n * c * hw;
  CW_GRID_STRIDE(i, total) { // i indexes y (NHWC)
    int ci = i % c;
    long r = i / c;
    long s = r % hw, b = r / hw;
    y[i] = x[(b * c + ci) * hw + s];
  }
}

extern "C" __global__ void cw_nhwc_to_nchw(const float* x, float* y, int n, int c, long hw) {
  long total = (long)n * c * hw;
  CW_GRID_STRIDE(i, total) { // i indexes y (NCHW)
    long s = i % hw;
    long r = i / hw;
    int ci = r % c;
    long b = r / c;
    y[i] = x[(b * hw + s) * c + ci];
  }
}

// fp32 <-> fp16 (IEEE binary16, round to nearest even).
extern "C" __global__ void cw_f32_to_f16(const float* x, unsigned short* y, long n) {
  CW_GRID_STRIDE(i, n) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x[i]));
    y[i] = h;
  }
}

extern "C" __global__ void cw_f16_to_f32(const unsigned short* x, float* y, long n) {
  CW_GRID_STRIDE(i, n) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x[i]));
    y[i] = f;
  }
}

// Spins for ns nanoseconds of the GPU's global timer in every thread: filler work that keeps
// the clocks up during idle gaps (runtime/cuda Device.Warm).
extern "C" __global__ void cw_spin(long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < (unsigned long long)ns);
}

// Does nothing; the launch-overhead benchmark times it.
extern "C" __global__ void cw_noop() {}

// Per-channel affine with activation over NCHW (inference BatchNormalization, folded at
// prepare): y = act(x * s[c] + t[c]), c = (i / hw) % C. x and y may alias.
extern "C" __global__ void cw_affine(const float* x, const float* s, const float* t, float* y, long n, int c, long hw, int op, float a, float b) {
  CW_GRID_STRIDE(i, n) {
    int ch = (i / hw) % c;
    y[i] = cw_act(x[i] * s[ch] + t[ch], op, a, b);
  }
}

// General strided gather (Transpose, Slice, Split, Pad, Expand, copies): y is contiguous with
// ndim ≤ 8 dims; d holds 5 longs per dim of y: size, x stride, start, step, x bound. The x index
// along dim k is start + i_k * step; one outside [0, bound) reads pad instead.
extern "C" __global__ void cw_gather(const float* x, float* y, long n, int ndim, const long* d, float pad) {
  CW_GRID_STRIDE(i, n) {
    long r = i, off = 0;
    bool in = true;
    for (int k = ndim - 1; k >= 0; k--) {
      const long* dk = d + 5 * k;
      long ik = r % dk[0];
      r /= dk[0];
      long xk = dk[2] + ik * dk[3];
      if (xk < 0 || xk >= dk[4]) in = false;
      off += xk * dk[1];
    }
    y[i] = in ? x[off] : pad;
  }
}

// Broadcasting binary op: y contiguous with ndim ≤ 8 dims; d holds 3 longs per dim: size,
// stride of a, stride of b (0 where broadcast). Ops as cw_binary; the result goes through
// cw_act (op2 and its a2, b2).
extern "C" __global__ void cw_binary_bcast(const float* a, const float* b, float* y, long n, int ndim, const long* d, int op, int op2, float a2, float b2) {
  CW_GRID_STRIDE(i, n) {
    long r = i, oa = 0, ob = 0;
    for (int k = ndim - 1; k >= 0; k--) {
      const long* dk = d + 3 * k;
      long ik = r % dk[0];
      r /= dk[0];
      oa += ik * dk[1];
      ob += ik * dk[2];
    }
    float u = a[oa], v = b[ob], q;
    switch (op) {
    case 0: q = u + v; break;
    case 1: q = u * v; break;
    case 2: q = u - v; break;
    case 3: q = u / v; break;
    case 4: q = fmaxf(u, v); break;
    default: q = __int_as_float(0x7fc00000);
    }
    y[i] = cw_act(q, op2, a2, b2);
  }
}

// Same-shape binary op followed by an activation (residual Add + ReLU in one pass).
extern "C" __global__ void cw_binary_act(const float* a, const float* b, float* y, long n, int op, int op2, float a2, float b2) {
  CW_GRID_STRIDE(i, n) {
    float u = a[i], v = b[i], q;
    switch (op) {
    case 0: q = u + v; break;
    case 1: q = u * v; break;
    case 2: q = u - v; break;
    case 3: q = u / v; break;
    case 4: q = fmaxf(u, v); break;
    default: q = __int_as_float(0x7fc00000);
    }
    y[i] = cw_act(q, op2, a2, b2);
  }
}

// Depthwise 2-D convolution (groups = C = K) with bias and activation fused: one thread per
// output element over NCHW; w is C×1×KH×KW; bias may be null. Used where prepare measured it
// faster than cuDNN's algorithms (batch-1 depthwise layers of MobileNets and EfficientNets).
extern "C" __global__ void cw_dwconv(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ y,
                                     int nc, int c, int h, int wd, int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw,
                                     int op, float a, float b) {
  long n = (long)nc * oh * ow;
  CW_GRID_STRIDE(i, n) {
    int ox = i % ow;
    int oy = (i / ow) % oh;
    long p = i / ((long)ow * oh);
    int ch = p % c;
    const float* xp = x + p * h * wd;
    const float* wp = w + (long)ch * kh * kw;
    int y0 = oy * sh - ph, x0 = ox * sw - pw;
    float acc = 0.0f;
    for (int ky = 0; ky < kh; ky++) {
      int yy = y0 + ky;
      if (yy < 0 || yy >= h) continue;
      for (int kx = 0; kx < kw; kx++) {
        int xx = x0 + kx;
        if (xx < 0 || xx >= wd) continue;
        acc = fmaf(__ldg(xp + yy * wd + xx), __ldg(wp + ky * kw + kx), acc);
      }
    }
    if (bias) acc += __ldg(bias + ch);
    y[i] = cw_act(acc, op, a, b);
  }
}

// Concat of many inputs in one launch: blockIdx.y picks input t, whose row of inner elements
// goes to y[o * yInner + off_t + j]. tab holds 4 longs per input: base (0: a, 1: b), offset
// from that base in floats, inner, off. (The inputs' addresses are a base passed as an argument
// plus a constant offset, so re-pointing a graph needs only the two arguments.)
extern "C" __global__ void cw_concat_multi(const float* a, const float* b, const long* tab, float* y, long outer, long yInner) {
  const long* t = tab + 4 * blockIdx.y;
  const float* x = (t[0] == 0 ? a : b) + t[1];
  long inner = t[2], off = t[3];
  long n = outer * inner;
  for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)blockDim.x * gridDim.x) {
    long o = i / inner, j = i - o * inner;
    y[o * yInner + off + j] = x[i];
  }
}
