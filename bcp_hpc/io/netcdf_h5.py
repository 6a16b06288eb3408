"""HDF5 files that xarray reads as datasets (h5netcdf engine): named dimensions via dimension scales."""
from __future__ import annotations

import numpy as np


class DimensionedWriter:
    """Write coordinates and variables with named dimensions into an open :class:`h5py.File`."""

    def __init__(self, h5):
        self.h = h5

    def dimension(self, name, values, units=None, **attrs):
        values = np.asarray(values)
        if values.dtype == object:
            import h5py
            values = np.asarray([str(x) for x in values], dtype=h5py.string_dtype())
        d = self.h.create_dataset(name, data=values)
        if units is not None:
            d.attrs["units"] = units
        for k, v in attrs.items():
            d.attrs[k] = v
        d.make_scale(name)
        return d

    def bare_dimension(self, name, size: int):
        """A dimension without coordinate values (netCDF-4's convention: an unwritten scale)."""
        d = self.h.create_dataset(name, shape=(int(size),), dtype="f4")
        d.make_scale("This is a netCDF dimension but not a netCDF variable.")
        return d

    def variable(self, name, data, dims, units=None, compress=True, **attrs):
        data = np.asarray(data)
        if data.dtype == object:
            import h5py
            data = np.asarray([str(x) for x in data.ravel()], dtype=h5py.string_dtype()).reshape(data.shape)
        kw = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compress and data.size > 4096 else {}
        d = self.h.create_dataset(name, data=data, **kw)
        if len(dims) != data.ndim:
            raise ValueError(f"{name}: {len(dims)} dimension names for a {data.ndim}-D array")
        for i, dim in enumerate(dims):
            d.dims[i].attach_scale(self.h[dim] if dim in self.h else self.h.file[dim])
        if units is not None:
            d.attrs["units"] = units
        for k, v in attrs.items():
            d.attrs[k] = v
        return d
