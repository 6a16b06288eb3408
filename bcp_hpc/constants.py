"""Unit conversions used across the package."""
SECONDS_PER_DAY = 86400.0
SECONDS_PER_YEAR = 365.0 * SECONDS_PER_DAY
MG_C_PER_MMOL = 12.0                                   #: mg C per mmol C
PGC_PER_MMOLC_S = SECONDS_PER_YEAR * 12.0 * 1e-18      #: Pg C yr-1 per mmol C s-1
MGC_M2_D_PER_MMOLC_M2_S = 12.0 * SECONDS_PER_DAY       #: mg C m-2 d-1 per mmol C m-2 s-1
