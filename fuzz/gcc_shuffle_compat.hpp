// Forced into src/image/resize.cpp in the clang fuzz build only: GCC's __builtin_shuffle (which
// resize.cpp's vector kernels use) does not exist in clang, and clang's __builtin_shufflevector
// takes its indices as separate constants. This lane-by-lane equivalent is slower but gives the
// same results, which is all the fuzzer needs; release builds keep GCC's.
#pragma once
#if defined(__clang__)
template <class V, class M>
inline V qt_gcc_shuffle(V a, M m) {
    constexpr int n = sizeof(V) / sizeof(a[0]);
    V r;
    for (int i = 0; i < n; ++i) r[i] = a[m[i] & (n - 1)];
    return r;
}
template <class V, class M>
inline V qt_gcc_shuffle(V a, V b, M m) {
    constexpr int n = sizeof(V) / sizeof(a[0]);
    V r;
    for (int i = 0; i < n; ++i) {
        const int k = m[i] & (2 * n - 1);
        r[i] = k < n ? a[k] : b[k - n];
    }
    return r;
}
#define __builtin_shuffle qt_gcc_shuffle
#endif
