"""One small device per standard for the DRAM tests (values of the standards' speed
bins in cycles, few channels so that each test runs in milliseconds)."""

from __future__ import annotations

from hwmodels.dram import DramSpec

COMMON = {"refresh": "none", "mapping": "rorabacobgch"}

DEVICES = {
    "DDR4": dict(standard="DDR4", channels=1, ranks=2, bank_groups=4, banks_per_group=4,
                 rows=65536, columns=1024, device_width=8, bus_width=64, burst_length=8,
                 tCK="0.625 ns", CL=22, CWL=16, tRCD=22, tRP=22, tRAS=52, tRC=74, tCCD_S=4,
                 tCCD_L=8, tRRD_S=4, tRRD_L=8, tFAW=34, tWTR_S=4, tWTR_L=12, tWR=24, tRTP=12,
                 tRTRS=2, tRFC=560, tREFI=12480),
    "DDR5": dict(standard="DDR5", channels=1, pseudo_channels=2, bank_groups=8,
                 banks_per_group=4, rows=65536, columns=1024, device_width=8, bus_width=32,
                 burst_length=16, tCK="0.416 ns", CL=40, CWL=38, tRCD=40, tRP=40, tRAS=77,
                 tRC=117, tCCD_S=8, tCCD_L=12, tCCD_L_WR=48, tRRD_S=8, tRRD_L=12, tFAW=32,
                 tWTR_S=6, tWTR_L=24, tWR=72, tRTP=18, tRTRS=2, tRFC=708, tREFI=9360,
                 tRFCpb=312, tREFIpb=292),
    "HBM2e": dict(standard="HBM2e", channels=2, pseudo_channels=2, bank_groups=4,
                  banks_per_group=4, rows=16384, columns=128, device_width=64, bus_width=64,
                  burst_length=4, tCK="0.625 ns", CL=23, CWL=8, tRCD=23, tRCDWR=16, tRP=23,
                  tRAS=53, tRC=76, tCCD_S=2, tCCD_L=4, tRRD_S=4, tRRD_L=6, tFAW=24, tWTR_S=4,
                  tWTR_L=12, tWR=24, tRTP=6, tRTRS=1, tRFC=560, tREFI=6240, tRFCpb=256,
                  tREFIpb=390),
    "HBM3": dict(standard="HBM3", channels=2, pseudo_channels=2, bank_groups=4,
                 banks_per_group=4, rows=32768, columns=256, device_width=32, bus_width=32,
                 burst_length=8, tCK="0.3125 ns", CL=48, CWL=16, tRCD=48, tRCDWR=32, tRP=48,
                 tRAS=106, tRC=154, tCCD_S=4, tCCD_L=8, tRRD_S=8, tRRD_L=12, tFAW=48,
                 tWTR_S=8, tWTR_L=24, tWR=48, tRTP=12, tRTRS=2, tRFC=1120, tREFI=12480,
                 tRFCpb=512, tREFIpb=780),
    "HBM3e": dict(standard="HBM3e", channels=2, pseudo_channels=2, bank_groups=4,
                  banks_per_group=4, rows=32768, columns=256, device_width=32, bus_width=32,
                  burst_length=8, tCK="0.2083 ns", CL=72, CWL=24, tRCD=72, tRCDWR=48, tRP=72,
                  tRAS=160, tRC=232, tCCD_S=4, tCCD_L=8, tRRD_S=12, tRRD_L=18, tFAW=72,
                  tWTR_S=12, tWTR_L=36, tWR=72, tRTP=18, tRTRS=2, tRFC=1680, tREFI=18720,
                  tRFCpb=768, tREFIpb=1170),
}


def device_spec(standard: str, **overrides) -> DramSpec:
    """The test device of ``standard`` (no refresh, bank group in the low address bits)."""
    return DramSpec(**{**DEVICES[standard], **COMMON, **overrides})
