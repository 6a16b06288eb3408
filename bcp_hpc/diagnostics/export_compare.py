"""Export at 100 m compared with independent estimates (spec §6.4-6.5).

* Henson et al. (2011) empirical export ``f100 = NPP * 0.23 * exp(-0.08 SST)`` (mg C m-2 d-1;
  NPP in mg C m-2 d-1, SST in deg C), for any NPP product;
* sediment-trap stations (ALOHA, BATS, OSP, CARIACO): each station's Martin curve
  ``F(z) = F100 (z/100)^-b`` fitted by least squares in log-log to the trap fluxes of its model
  column, or of the 3 x 3 block of columns around it when the column has fewer than two trap
  depths (our choices, spec §6.5), against the model's ``f100`` in that column;
* Taylor statistics over the stations: standard deviations of model and observations, Pearson
  ``r`` and the centred RMS difference ``E'`` (population statistics, ``ddof = 0``, so that
  ``E'^2 = s_m^2 + s_o^2 - 2 s_m s_o r`` holds exactly; spec §8.16 leaves n vs n-1 open).
"""
from __future__ import annotations

import numpy as np

#: station -> (latitude deg N, longitude deg E), spec §6.5
STATIONS = {"ALOHA": (22.75, 202.0), "BATS": (31.67, 295.83), "OSP": (50.02, 215.85), "CARIACO": (10.5, 295.33)}


def henson_f100(npp_mg_c_m2_d: np.ndarray, sst_c: np.ndarray) -> np.ndarray:
    """Henson et al. (2011) POC export at 100 m (mg C m-2 d-1) per column."""
    return np.asarray(npp_mg_c_m2_d, dtype=float) * 0.23 * np.exp(-0.08 * np.asarray(sst_c, dtype=float))


def total_pg_c_per_yr(map_mg_c_m2_d: np.ndarray, area2d: np.ndarray) -> float:
    """Area integral of a column flux map (mg C m-2 d-1) in Pg C yr-1 (NaN treated as 0)."""
    return float(np.nansum(map_mg_c_m2_d * area2d) * 365.0 * 1e-18)


def station_column(grid, lat: float, lon: float):
    """(i_lat, i_lon, distance in columns) of the wet column containing the point, or the nearest wet one."""
    surf = grid.mask[:, :, 0]
    i = int(np.argmin(np.abs(grid.lat - lat)))
    dlon = np.abs((grid.lon - lon + 180.0) % 360.0 - 180.0)
    j = int(np.argmin(dlon))
    if surf[i, j]:
        return i, j, 0
    ii, jj = np.nonzero(surf)
    dj = np.minimum(np.abs(jj - j), surf.shape[1] - np.abs(jj - j))
    d = np.hypot(ii - i, dj)
    k = int(np.argmin(d))
    return int(ii[k]), int(jj[k]), float(d[k])


def fit_martin(depth_m: np.ndarray, flux: np.ndarray):
    """Least-squares fit of ``log F = log F100 - b log(z/100)``; returns (F100, b)."""
    z = np.asarray(depth_m, dtype=float)
    f = np.asarray(flux, dtype=float)
    ok = np.isfinite(f) & (f > 0) & (z > 0)
    if ok.sum() < 2 or np.unique(z[ok]).size < 2:
        raise ValueError("a Martin fit needs fluxes at two or more depths")
    A = np.vstack([np.ones(ok.sum()), -np.log(z[ok] / 100.0)]).T
    coef, *_ = np.linalg.lstsq(A, np.log(f[ok]), rcond=None)
    return float(np.exp(coef[0])), float(coef[1])


def station_f100(trap3d: np.ndarray, grid, stations: dict | None = None) -> dict:
    """Observed F100 per station from the trap fluxes (nlat, nlon, nz; NaN = none) of its column;
    stations whose column has fewer than two trap depths are reported with ``None``."""
    out = {}
    for name, (lat, lon) in (stations or STATIONS).items():
        i, j, dist = station_column(grid, lat, lon)
        col = np.asarray(trap3d[i, j, :], dtype=float)
        z = grid.zt[: col.size]
        rec = {"i_lat": i, "i_lon": j, "distance_columns": dist, "n_depths": int(np.isfinite(col).sum()),
               "block": "column"}
        if rec["n_depths"] < 2:
            # a station on a column edge (ALOHA at 202 E on OCIM2's grid): the 3 x 3 block around it
            ii = np.arange(max(i - 1, 0), min(i + 2, trap3d.shape[0]))
            jj = np.arange(j - 1, j + 2) % trap3d.shape[1]
            blk = np.asarray(trap3d[np.ix_(ii, jj)], dtype=float).reshape(-1, col.size)
            col = blk.ravel()
            z = np.tile(grid.zt[: blk.shape[1]], blk.shape[0])
            rec.update(n_depths=int(np.isfinite(col).sum()), block="3x3")
        try:
            rec["f100_mg_c_m2_d"], rec["b"] = fit_martin(z, col)
        except ValueError:
            rec["f100_mg_c_m2_d"], rec["b"] = None, None
        out[name] = rec
    return out


def taylor_statistics(model: np.ndarray, obs: np.ndarray) -> dict:
    """Taylor-diagram statistics of ``model`` against ``obs`` (same stations)."""
    m = np.asarray(model, dtype=float)
    o = np.asarray(obs, dtype=float)
    sm, so = float(m.std()), float(o.std())
    r = float(np.corrcoef(m, o)[0, 1]) if sm > 0 and so > 0 else float("nan")
    e = float(np.sqrt(np.mean(((m - m.mean()) - (o - o.mean())) ** 2)))
    return {"n": int(m.size), "std_model": sm, "std_obs": so, "r": r, "crmsd": e}


def compare_with_traps(f100_map: np.ndarray, trap3d: np.ndarray, grid) -> dict:
    """Model f100 at the stations vs their trap F100; Taylor statistics over the stations that have both."""
    st = station_f100(trap3d, grid)
    used = [k for k, v in st.items() if v["f100_mg_c_m2_d"] is not None and np.isfinite(f100_map[v["i_lat"], v["i_lon"]])]
    for k in st:
        st[k]["model_f100_mg_c_m2_d"] = float(f100_map[st[k]["i_lat"], st[k]["i_lon"]])
    out = {"stations": st, "used": used}
    if len(used) >= 2:
        out["taylor"] = taylor_statistics([st[k]["model_f100_mg_c_m2_d"] for k in used],
                                          [st[k]["f100_mg_c_m2_d"] for k in used])
    return out
