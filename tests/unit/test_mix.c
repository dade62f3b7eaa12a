/* The RT cycle's inner loops (daemon/mix.c): mix_add for every channel
 * mapping, gain, peak and clip counting, non-finite source samples;
 * mix_copy_channels for capture; mix_clip on the card buffer. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "mix.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int near(float a, float b)
{
    return fabsf(a - b) <= 1e-6f;
}

static void test_add_equal_channels(void)
{
    enum { FRAMES = 4, CH = 2 };
    const float src[FRAMES * CH] = { 0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f, 0.7f, -0.8f };
    float dst[FRAMES * CH], before[FRAMES * CH];
    for (int i = 0; i < FRAMES * CH; i++)
        dst[i] = before[i] = 0.01f * (float)i;  /* mix_add adds: what is there stays */
    uint64_t clipped = 0;
    float peak = mix_add(dst, CH, src, CH, FRAMES, 0.5f, &clipped);
    int ok = 1;
    for (int i = 0; i < FRAMES * CH; i++)
        ok &= near(dst[i], before[i] + 0.5f * src[i]);
    CHECK(ok);
    CHECK(near(peak, 0.4f));
    CHECK(clipped == 0);

    /* Gain 1 on silence: adds exactly, peak 0. */
    float zero[FRAMES * CH] = { 0 };
    float d2[FRAMES * CH] = { 0 };
    CHECK(mix_add(d2, CH, zero, CH, FRAMES, 1.0f, &clipped) == 0.0f);
    /* Zero frames touch nothing. */
    d2[0] = 3.0f;
    CHECK(mix_add(d2, CH, src, CH, 0, 1.0f, &clipped) == 0.0f && d2[0] == 3.0f && clipped == 0);
}

/* A run long enough for mix_add's eight-lane loop and its tail (1001
 * samples), against the plain definition: NaN, Inf and huge values in
 * lanes and tail, the peak in one lane, samples beyond [-1, 1] counted in
 * every lane. */
static void test_add_long_run(void)
{
    enum { N = 1001 };
    static float src[N], dst[N], want[N];
    uint32_t seed = 7;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        src[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 1.2f;  /* -0.6 .. 0.6 */
        dst[i] = want[i] = 0.001f * (float)(i % 17);
    }
    const int odd[] = { 3, 8, 13, 64, 500, 999, 1000 };  /* lanes and the tail */
    const float odd_value[] = { NAN, INFINITY, -INFINITY, 3e38f, -NAN, 2e30f, NAN };
    for (size_t k = 0; k < COUNT(odd); k++)
        src[odd[k]] = odd_value[k];
    src[421] = -0.95f;  /* the peak, times the gain: 1.9 */
    const float gain = 2.0f;
    float want_peak = 0.0f;
    uint64_t want_clipped = 0;
    for (int i = 0; i < N; i++) {
        float x = isfinite(src[i]) ? fminf(fmaxf(src[i], -1048576.0f), 1048576.0f) : 0.0f;
        float v = gain * x;
        want[i] += v;
        if (fabsf(v) > want_peak)
            want_peak = fabsf(v);
        want_clipped += fabsf(v) > 1.0f;
    }
    uint64_t clipped = 0;
    float peak = mix_add(dst, 1, src, 1, N, gain, &clipped);
    int same = 1;
    for (int i = 0; i < N; i++)
        same &= dst[i] == want[i];
    CHECK(same);
    CHECK(peak == want_peak && peak == 2.0f * 1048576.0f);  /* the bounded huge values */
    CHECK(clipped == want_clipped && clipped > 100);
    /* Without the huge values the peak is the one planted in a lane. */
    for (size_t k = 0; k < COUNT(odd); k++)
        src[odd[k]] = 0.0f;
    clipped = 0;
    CHECK(mix_add(dst, 1, src, 1, N, gain, &clipped) == 1.9f);
}

static void test_add_mono_broadcast(void)
{
    enum { FRAMES = 3, CH = 2 };
    const float src[FRAMES] = { 0.25f, -0.5f, 0.75f };
    float dst[FRAMES * CH] = { 0 };
    dst[1] = 0.125f;
    uint64_t clipped = 0;
    float peak = mix_add(dst, CH, src, 1, FRAMES, 1.0f, &clipped);
    CHECK(dst[0] == 0.25f && dst[1] == 0.375f);
    CHECK(dst[2] == -0.5f && dst[3] == -0.5f);
    CHECK(dst[4] == 0.75f && dst[5] == 0.75f);
    CHECK(peak == 0.75f);
    CHECK(clipped == 0);

    /* Mono onto a four-channel card: every channel. */
    float quad[FRAMES * 4] = { 0 };
    mix_add(quad, 4, src, 1, FRAMES, 2.0f, &clipped);
    int ok = 1;
    for (int f = 0; f < FRAMES; f++)
        for (int c = 0; c < 4; c++)
            ok &= quad[f * 4 + c] == 2.0f * src[f];
    CHECK(ok);
    /* Clipping is counted per source sample (one per mono frame), not per
     * destination channel: only 0.75*2 = 1.5 is beyond 1. */
    CHECK(clipped == 1);
}

static void test_add_three_to_two(void)
{
    enum { FRAMES = 2 };
    /* Channel 2 is loud: it has no card channel, so it is neither mixed nor
     * measured. */
    const float src[FRAMES * 3] = { 0.1f, 0.2f, 9.0f, -0.3f, -0.4f, -9.0f };
    float dst[FRAMES * 2] = { 0 };
    uint64_t clipped = 0;
    float peak = mix_add(dst, 2, src, 3, FRAMES, 1.0f, &clipped);
    CHECK(dst[0] == 0.1f && dst[1] == 0.2f && dst[2] == -0.3f && dst[3] == -0.4f);
    CHECK(peak == 0.4f);
    CHECK(clipped == 0);

    /* Two onto three (source not mono): channel i to i, channel 2 untouched. */
    const float st[FRAMES * 2] = { 0.5f, -0.5f, 0.25f, -0.25f };
    float d3[FRAMES * 3] = { 0, 0, 7.0f, 0, 0, 7.0f };
    mix_add(d3, 3, st, 2, FRAMES, 1.0f, &clipped);
    CHECK(d3[0] == 0.5f && d3[1] == -0.5f && d3[2] == 7.0f);
    CHECK(d3[3] == 0.25f && d3[4] == -0.25f && d3[5] == 7.0f);
}

static void test_gain_peak_clipped(void)
{
    enum { FRAMES = 4, CH = 2 };
    /* With gain 2: |2x| > 1 for 0.6, -0.6, 0.51, -0.75; exactly 1.0 (0.5) is not beyond. */
    const float src[FRAMES * CH] = { 0.4f, 0.6f, -0.6f, 0.5f, 0.51f, -0.5f, 0.0f, -0.75f };
    float dst[FRAMES * CH] = { 0 };
    uint64_t clipped = 10;  /* mix_add adds to the caller's count */
    float peak = mix_add(dst, CH, src, CH, FRAMES, 2.0f, &clipped);
    CHECK(clipped == 10 + 4);
    CHECK(peak == 1.5f);
    int ok = 1;
    for (int i = 0; i < FRAMES * CH; i++)
        ok &= dst[i] == 2.0f * src[i];  /* the mix itself is not clipped: the card's is */
    CHECK(ok);

    /* Gain 0 (mute): nothing added, nothing measured. */
    float d0[FRAMES * CH] = { 0 };
    clipped = 0;
    CHECK(mix_add(d0, CH, src, CH, FRAMES, 0.0f, &clipped) == 0.0f);
    ok = 1;
    for (int i = 0; i < FRAMES * CH; i++)
        ok &= d0[i] == 0.0f;
    CHECK(ok && clipped == 0);

    /* Peak is |gain*x| for a negative maximum too, in the mono path. */
    const float mono[3] = { 0.1f, -0.9f, 0.2f };
    float dm[3 * CH] = { 0 };
    clipped = 0;
    CHECK(near(mix_add(dm, CH, mono, 1, 3, 0.5f, &clipped), 0.45f) && clipped == 0);
}

static void test_non_finite_is_silence(void)
{
    const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
    /* Equal channels. */
    {
        const float src[8] = { NAN, 0.25f, INFINITY, -0.125f, -INFINITY, -NAN, 0.0f, NAN };
        float dst[8] = { 0.5f, 0, 0, 0, 0, 0, 0, 0 };
        uint64_t clipped = 0;
        float peak = mix_add(dst, 2, src, 2, 4, 4.0f, &clipped);
        CHECK(dst[0] == 0.5f && dst[1] == 1.0f && dst[2] == 0.0f && dst[3] == -0.5f);
        CHECK(dst[4] == 0.0f && dst[5] == 0.0f && dst[6] == 0.0f && dst[7] == 0.0f);
        CHECK(peak == 1.0f);  /* from 0.25*4; the infinities are not the peak */
        CHECK(clipped == 0);  /* nor clipped */
    }
    /* Mono broadcast. */
    {
        float dst[8] = { 0 };
        uint64_t clipped = 0;
        float peak = mix_add(dst, 2, bad, 1, COUNT(bad), 1.0f, &clipped);
        int ok = 1;
        for (int i = 0; i < 8; i++)
            ok &= dst[i] == 0.0f;
        CHECK(ok && peak == 0.0f && clipped == 0);
    }
    /* 3 -> 2. */
    {
        const float src[6] = { INFINITY, NAN, NAN, 0.5f, -INFINITY, INFINITY };
        float dst[4] = { 0 };
        uint64_t clipped = 0;
        float peak = mix_add(dst, 2, src, 3, 2, 1.0f, &clipped);
        CHECK(dst[0] == 0.0f && dst[1] == 0.0f && dst[2] == 0.5f && dst[3] == 0.0f);
        CHECK(peak == 0.5f && clipped == 0);
    }
}

/* The engine mixes every stream into the card buffer with mix_add and then
 * runs mix_clip over it: whatever finite samples and allowed gains (the
 * protocol accepts 0..16, MSG_MAX_GAIN) the streams bring, the card must get
 * finite samples in [-1, 1]. */
static void test_mix_then_clip_stays_finite(void)
{
    const float pos[2] = { FLT_MAX, 3e38f };   /* finite: mix_add accepts them */
    const float neg[2] = { -FLT_MAX, -3e38f };
    float card[4] = { 0 };
    uint64_t clipped = 0;
    float peak = mix_add(card, 2, pos, 2, 1, 16.0f, &clipped);  /* one stream, gain 16 */
    CHECK(isfinite(peak));  /* stats and the shm peak are numbers, never Inf */
    mix_add(card, 2, neg, 2, 1, 16.0f, &clipped);  /* another stream, gain 16 */
    mix_add(card + 2, 2, pos, 2, 1, 1.0f, &clipped);
    mix_add(card + 2, 2, pos, 2, 1, 1.0f, &clipped);  /* sum overflows to +inf */
    mix_clip(card, 4);
    /* gain*x overflows to +inf and -inf, and inf + -inf is NaN: mix_clip
     * must turn it into silence, never pass it to the card. */
    CHECK(isfinite(card[0]) && card[0] >= -1.0f && card[0] <= 1.0f);
    CHECK(isfinite(card[1]) && card[1] >= -1.0f && card[1] <= 1.0f);
    /* A sum that overflows to +inf alone is clipped to 1. */
    CHECK(card[2] == 1.0f && card[3] == 1.0f);
}

static void test_copy_channels(void)
{
    enum { FRAMES = 3 };
    const float stereo[FRAMES * 2] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f };
    float mono[FRAMES] = { 9, 9, 9 };
    mix_copy_channels(mono, 1, stereo, 2, FRAMES);
    CHECK(mono[0] == 0.1f && mono[1] == 0.3f && mono[2] == 0.5f);

    const float src1[FRAMES] = { -0.1f, -0.2f, -0.3f };
    float st[FRAMES * 2] = { 9, 9, 9, 9, 9, 9 };  /* stale data is overwritten */
    mix_copy_channels(st, 2, src1, 1, FRAMES);
    CHECK(st[0] == -0.1f && st[2] == -0.2f && st[4] == -0.3f);
    CHECK(st[1] == 0.0f && st[3] == 0.0f && st[5] == 0.0f);  /* missing channel silent */

    float same[FRAMES * 2] = { 0 };
    mix_copy_channels(same, 2, stereo, 2, FRAMES);
    int ok = 1;
    for (int i = 0; i < FRAMES * 2; i++)
        ok &= same[i] == stereo[i];
    CHECK(ok);

    /* It copies, it does not add: a second copy gives the same result. */
    mix_copy_channels(same, 2, stereo, 2, FRAMES);
    CHECK(same[5] == 0.6f);
}

static void test_clip(void)
{
    float buf[] = { 0.5f, 1.0f, -1.0f, 1.5f, -2.0f, INFINITY, -INFINITY, 0.0f, 1.0000001f, -0.999f };
    uint64_t n = mix_clip(buf, COUNT(buf));
    CHECK(n == 5);  /* 1.5, -2, +inf, -inf, 1.0000001; exactly +-1 is not beyond */
    CHECK(buf[0] == 0.5f && buf[1] == 1.0f && buf[2] == -1.0f);
    CHECK(buf[3] == 1.0f && buf[4] == -1.0f && buf[5] == 1.0f && buf[6] == -1.0f);
    CHECK(buf[7] == 0.0f && buf[8] == 1.0f && buf[9] == -0.999f);
    /* Nothing beyond: nothing changed, zero counted. */
    CHECK(mix_clip(buf, COUNT(buf)) == 0 && buf[9] == -0.999f);
    CHECK(mix_clip(buf, 0) == 0);
}

int main(void)
{
    test_add_equal_channels();
    test_add_long_run();
    test_add_mono_broadcast();
    test_add_three_to_two();
    test_gain_peak_clipped();
    test_non_finite_is_silence();
    test_mix_then_clip_stays_finite();
    test_copy_channels();
    test_clip();
    return check_summary();
}
