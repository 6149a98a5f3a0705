// Single-thread CPU pointer chase over a buffer far larger than the LLC:
// measures the idle (unloaded) load-to-use latency of host DRAM.
// Build: gcc -O2 cpu_pchase.c -o cpu_pchase ; run: ./cpu_pchase
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+1e-9*t.tv_nsec;}
static void test(size_t bytes, int huge){
  size_t line=64, n=bytes/line, w=line/8;
  uint64_t *b = mmap(NULL, bytes, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  if (b==MAP_FAILED){perror("mmap"); return;}
  madvise(b, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  uint32_t *p = malloc(n*sizeof *p);
  for (size_t i=0;i<n;i++) p[i]=i;
  srand(1);
  for (size_t i=n-1;i>1;i--){ size_t j=1+((size_t)rand()*(RAND_MAX+1ull)+rand())%i; uint32_t t=p[i];p[i]=p[j];p[j]=t; }
  for (size_t k=0;k<n;k++) b[(size_t)p[k]*w]=(uint64_t)p[(k+1)%n]*w;
  free(p);
  for (int rep=0; rep<3; rep++){
    long it=20000000; uint64_t i=0; double t0=now();
    for (long k=0;k<it;k++) i=b[i];
    double t1=now();
    printf("%s pages %8.0f MiB rep %d: %6.1f ns/load (sink %llu)\n", huge?"2M-THP":"4K", bytes/1048576.0, rep, (t1-t0)*1e9/it, (unsigned long long)i);
  }
  munmap(b, bytes);
}
int main(void){ test((size_t)1<<30,1); test((size_t)4<<30,1); test((size_t)1<<30,0); return 0; }
