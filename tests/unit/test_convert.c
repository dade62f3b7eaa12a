/* Sample format conversion in the client library: exact values at the
 * scale points, clipping, NaN, the packed 24-bit layout, and round trips. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "convert.h"

static void test_sizes(void)
{
    CHECK(convert_sample_bytes(SC_FLOAT32) == 4 && convert_sample_bytes(SC_INT32) == 4);
    CHECK(convert_sample_bytes(SC_INT24) == 3 && convert_sample_bytes(SC_INT16) == 2);
    CHECK(convert_sample_bytes(SC_INT8) == 1 && convert_sample_bytes(SC_UINT8) == 1);
    CHECK(convert_sample_bytes((sc_format)99) == 0);
}

static void test_int16(void)
{
    const float in[] = { 0.0f, 0.5f, -0.5f, -1.0f, 1.0f, 1.5f, -7.0f, NAN };
    const int16_t want[] = { 0, 16384, -16384, -32768, 32767, 32767, -32768, 0 };
    int16_t out[8];
    convert_from_float(out, in, SC_INT16, 8);
    CHECK(memcmp(out, want, sizeof(want)) == 0);
    float back[8];
    convert_to_float(back, want, SC_INT16, 8);
    CHECK(back[1] == 0.5f && back[3] == -1.0f && back[4] == 32767 / 32768.0f);
}

static void test_int24_layout(void)
{
    const float in[] = { 0.5f, -1.0f, -1.0f / 8388608 };
    uint8_t out[9];
    convert_from_float(out, in, SC_INT24, 3);
    const uint8_t want[] = { 0x00, 0x00, 0x40, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff };
    CHECK(memcmp(out, want, sizeof(want)) == 0);
    float back[3];
    convert_to_float(back, want, SC_INT24, 3);
    CHECK(back[0] == 0.5f && back[1] == -1.0f && back[2] == -1.0f / 8388608);
}

static void test_int32_and_bytes(void)
{
    const float in[] = { 0.25f, -1.0f, 1.0f };
    int32_t i32[3];
    convert_from_float(i32, in, SC_INT32, 3);
    CHECK(i32[0] == 536870912 && i32[1] == INT32_MIN && i32[2] == INT32_MAX);
    int8_t i8[3];
    convert_from_float(i8, in, SC_INT8, 3);
    CHECK(i8[0] == 32 && i8[1] == -128 && i8[2] == 127);
    uint8_t u8[3];
    convert_from_float(u8, in, SC_UINT8, 3);
    CHECK(u8[0] == 160 && u8[1] == 0 && u8[2] == 255);
    float back;
    const uint8_t mid = 128;
    convert_to_float(&back, &mid, SC_UINT8, 1);
    CHECK(back == 0.0f);
}

/* Float -> format -> float stays within half a step of the format. */
static void test_round_trips(void)
{
    const sc_format formats[] = { SC_FLOAT32, SC_INT32, SC_INT24, SC_INT16, SC_INT8, SC_UINT8 };
    const double step[] = { 0, 1.0 / 2147483648.0, 1.0 / 8388608, 1.0 / 32768, 1.0 / 128, 1.0 / 128 };
    enum { N = 1001 };
    float ramp[N], back[N];
    uint8_t raw[N * 4];
    for (int i = 0; i < N; i++)
        ramp[i] = -0.99f + 1.98f * i / (N - 1);  /* inside every format's range */
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
        convert_from_float(raw, ramp, formats[f], N);
        convert_to_float(back, raw, formats[f], N);
        double worst = 0;
        for (int i = 0; i < N; i++)
            worst = fmax(worst, fabs((double)back[i] - ramp[i]));
        if (!(worst <= step[f] / 2 + 1e-7))
            fprintf(stderr, "format %d: worst error %g, step %g\n", (int)formats[f], worst, step[f]);
        CHECK(worst <= step[f] / 2 + 1e-7);
    }
}

int main(void)
{
    test_sizes();
    test_int16();
    test_int24_layout();
    test_int32_and_bytes();
    test_round_trips();
    return check_summary();
}
