// Single-thread pointer-chase latency probe used to measure the unloaded
// load-to-use latency quoted in hwmodels/presets/*.yaml.
// Build: nvcc -O3 -arch=sm_90 pchase.cu -o pchase ; run: ./pchase
// One GPU thread follows a random cyclic permutation (one node per 256 B,
// so every hop touches a new 32 B sector and a new 128 B line); each load
// depends on the previous one, so time per hop = unloaded read latency.
#include <cstdio>
#include <vector>
#include <numeric>
#include <random>
#include <algorithm>
#include <cuda_runtime.h>
#define CK(x) do{cudaError_t e=(x); if(e!=cudaSuccess){printf("CUDA %s line %d\n",cudaGetErrorString(e),__LINE__); return 1;}}while(0)
typedef unsigned long long u64;
static const size_t STRIDE = 256; // bytes per node

__global__ void chase(const u64* p, long iters, u64* out, long long* cyc) {
  u64 i = 0;
  long long t0 = clock64();
  for (long k = 0; k < iters; k++) i = p[i];
  long long t1 = clock64();
  *out = i; *cyc = t1 - t0;
}

static void fill(u64* buf, size_t bytes, unsigned seed) {
  size_t n = bytes / STRIDE, w = STRIDE / 8;
  std::vector<unsigned> perm(n);
  std::iota(perm.begin(), perm.end(), 0u);
  std::mt19937 g(seed);
  std::shuffle(perm.begin() + 1, perm.end(), g);   // cycle starts at node 0
  for (size_t k = 0; k < n; k++) buf[(size_t)perm[k] * w] = (u64)perm[(k + 1) % n] * w;
}

static int run(const char* what, const u64* dptr, size_t bytes, long iters) {
  u64* out; long long* cyc; CK(cudaMalloc(&out, 8)); CK(cudaMalloc(&cyc, 8));
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  chase<<<1, 1>>>(dptr, iters, out, cyc); CK(cudaDeviceSynchronize()); // warm-up (TLB, clocks)
  for (int rep = 0; rep < 3; rep++) {
    cudaEventRecord(a); chase<<<1, 1>>>(dptr, iters, out, cyc); cudaEventRecord(b);
    CK(cudaEventSynchronize(b));
    float ms; cudaEventElapsedTime(&ms, a, b); long long c; CK(cudaMemcpy(&c, cyc, 8, cudaMemcpyDeviceToHost));
    double ns = ms * 1e6 / iters, cy = (double)c / iters;
    printf("%-6s %10.1f MiB  rep %d  %8.1f ns/load  %7.1f cycles/load  (implied SM clock %.0f MHz)\n",
           what, bytes / 1048576.0, rep, ns, cy, cy / ns * 1000.0);
  }
  cudaFree(out); cudaFree(cyc); return 0;
}

int main() {
  cudaDeviceProp pr; CK(cudaGetDeviceProperties(&pr, 0));
  printf("device %s, %d SMs, L2 %d MiB, mem %.1f GiB\n", pr.name, pr.multiProcessorCount,
         pr.l2CacheSize >> 20, pr.totalGlobalMem / 1073741824.0);
  size_t dsz[] = {size_t(8) << 20, size_t(256) << 20, size_t(2) << 30, size_t(8) << 30};
  for (size_t bytes : dsz) {
    std::vector<u64> h(bytes / 8); fill(h.data(), bytes, 1);
    u64* d; CK(cudaMalloc(&d, bytes)); CK(cudaMemcpy(d, h.data(), bytes, cudaMemcpyHostToDevice));
    if (run("HBM", d, bytes, 200000)) return 1;
    cudaFree(d);
  }
  size_t hsz[] = {size_t(256) << 20, size_t(2) << 30};
  for (size_t bytes : hsz) {   // pinned host memory read directly by the GPU (zero-copy over the host link)
    u64* h; CK(cudaHostAlloc((void**)&h, bytes, cudaHostAllocMapped)); fill(h, bytes, 2);
    u64* d; CK(cudaHostGetDevicePointer((void**)&d, h, 0));
    if (run("HOST", d, bytes, 20000)) return 1;
    cudaFreeHost(h);
  }
  return 0;
}
