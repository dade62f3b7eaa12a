"""The devices and host APIs soundcardd offers, as PySoundCard's dicts.

soundcardd shares one card, so there is one "host API" (soundcard) and the
device list is the daemon's (on the dummy card: one device).  The dicts carry
both PySoundCard 0.4's keys (device_index, input_channels, sample_format...)
and the later ones (max_input_channels, default_samplerate...).
"""

import numpy as np

from ._lib import check, ffi, lib, open_client

API_NAME = "soundcard"


def _device_dict(info, index):
    return {
        "struct_version": 2,
        "name": ffi.string(info.name).decode(errors="ignore"),
        "device_index": index,
        "host_api_index": 0,
        "hostapi": 0,
        "card_api": ffi.string(info.api).decode(errors="ignore"),
        "input_channels": info.max_input_channels,
        "output_channels": info.max_output_channels,
        "max_input_channels": info.max_input_channels,
        "max_output_channels": info.max_output_channels,
        "default_low_input_latency": info.default_low_input_latency,
        "default_low_output_latency": info.default_low_output_latency,
        "default_high_input_latency": info.default_high_input_latency,
        "default_high_output_latency": info.default_high_output_latency,
        "default_sample_rate": info.default_samplerate,
        "default_samplerate": info.default_samplerate,
        "input_latency": info.default_low_input_latency,
        "output_latency": info.default_low_output_latency,
        "sample_format": np.float32,
        "interleaved_data": True,
        "is_default_input": bool(info.is_default_input),
        "is_default_output": bool(info.is_default_output),
    }


def _all_devices(socket=None):
    client = open_client(socket, "pysoundcard-devices")
    try:
        count = check(lib.sc_device_count(client), "devices")
        info = ffi.new("sc_device_info *")
        found = []
        for index in range(count):
            check(lib.sc_get_device_info(client, index, info), "device %d" % index)
            found.append(_device_dict(info, index))
        return found
    finally:
        lib.sc_client_close(client)


def devices(socket=None):
    """Yield a dict for each device of the daemon's card."""
    return iter(_all_devices(socket))


def device_info(index=None, socket=None):
    """The dict of device `index`; without an index, a generator of all."""
    if index is None:
        return devices(socket)
    for device in _all_devices(socket):
        if device["device_index"] == index:
            return device
    raise RuntimeError("Invalid device %r: soundcardd offers %d" % (index, len(_all_devices(socket))))


def _default(key, what, socket):
    listed = _all_devices(socket)
    for device in listed:
        if device[key]:
            return device
    if listed:
        return listed[0]
    raise RuntimeError("No default %s device available" % what)


def default_input_device(socket=None):
    """The default input device's dict."""
    return _default("is_default_input", "input", socket)


def default_output_device(socket=None):
    """The default output device's dict."""
    return _default("is_default_output", "output", socket)


def apis(socket=None):
    """Yield one dict: soundcardd is the only host API."""
    listed = _all_devices(socket)
    ins = [d["device_index"] for d in listed if d["is_default_input"]] or [0]
    outs = [d["device_index"] for d in listed if d["is_default_output"]] or [0]
    yield {
        "struct_version": 1,
        "type": 0,
        "name": API_NAME,
        "api_idx": 0,
        "device_count": len(listed),
        "default_input_device_index": ins[0],
        "default_output_device_index": outs[0],
        "default_input_device": ins[0],
        "default_output_device": outs[0],
    }


def hostapi_info(index=None, socket=None):
    """The host API's dict (index 0); without an index, a generator."""
    if index is None:
        return apis(socket)
    if index != 0:
        raise RuntimeError("Invalid host API %r: soundcardd is host API 0" % (index,))
    return next(apis(socket))


def default_api(socket=None):
    """PySoundCard 0.4: the default host API's dict."""
    return next(apis(socket))


def default_hostapi():
    """The default host API's index."""
    return 0
