#include "convert.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

size_t convert_sample_bytes(sc_format format)
{
    switch (format) {
    case SC_FLOAT32:
    case SC_INT32:
        return 4;
    case SC_INT24:
        return 3;
    case SC_INT16:
        return 2;
    case SC_INT8:
    case SC_UINT8:
        return 1;
    }
    return 0;
}

/* Scale, round and clip a float to a signed integer of `bits` bits. */
static inline int32_t quantize(float x, int bits)
{
    double scale = (double)(1u << (bits - 1));
    double v = nearbyint((double)x * scale);
    if (v != v)
        return 0;
    if (v >= scale)
        return (int32_t)(scale - 1);
    if (v < -scale)
        return (int32_t)-scale;
    return (int32_t)v;
}

void convert_to_float(float *dst, const void *src, sc_format format, size_t samples)
{
    const uint8_t *b = src;
    switch (format) {
    case SC_FLOAT32:
        memcpy(dst, src, samples * sizeof(float));
        break;
    case SC_INT32:
        for (size_t i = 0; i < samples; i++) {
            int32_t v;
            memcpy(&v, b + 4 * i, 4);
            dst[i] = (float)(v / 2147483648.0);
        }
        break;
    case SC_INT24:
        for (size_t i = 0; i < samples; i++) {
            const uint8_t *p = b + 3 * i;
            int32_t v = (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) >> 8;
            dst[i] = (float)(v / 8388608.0);
        }
        break;
    case SC_INT16:
        for (size_t i = 0; i < samples; i++) {
            int16_t v;
            memcpy(&v, b + 2 * i, 2);
            dst[i] = v / 32768.0f;
        }
        break;
    case SC_INT8:
        for (size_t i = 0; i < samples; i++)
            dst[i] = (int8_t)b[i] / 128.0f;
        break;
    case SC_UINT8:
        for (size_t i = 0; i < samples; i++)
            dst[i] = ((int)b[i] - 128) / 128.0f;
        break;
    }
}

void convert_from_float(void *dst, const float *src, sc_format format, size_t samples)
{
    uint8_t *b = dst;
    switch (format) {
    case SC_FLOAT32:
        memcpy(dst, src, samples * sizeof(float));
        break;
    case SC_INT32:
        for (size_t i = 0; i < samples; i++) {
            int32_t v = quantize(src[i], 32);
            memcpy(b + 4 * i, &v, 4);
        }
        break;
    case SC_INT24:
        for (size_t i = 0; i < samples; i++) {
            int32_t v = quantize(src[i], 24);
            b[3 * i] = (uint8_t)v;
            b[3 * i + 1] = (uint8_t)(v >> 8);
            b[3 * i + 2] = (uint8_t)(v >> 16);
        }
        break;
    case SC_INT16:
        for (size_t i = 0; i < samples; i++) {
            int16_t v = (int16_t)quantize(src[i], 16);
            memcpy(b + 2 * i, &v, 2);
        }
        break;
    case SC_INT8:
        for (size_t i = 0; i < samples; i++)
            b[i] = (uint8_t)(int8_t)quantize(src[i], 8);
        break;
    case SC_UINT8:
        for (size_t i = 0; i < samples; i++)
            b[i] = (uint8_t)(quantize(src[i], 8) + 128);
        break;
    }
}
