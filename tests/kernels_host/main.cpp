// Host check of kernels/attention.cu, kernels/adamw.cu and kernels/cross_entropy.cu: runs the
// CUDA sources on the CPU (cuda_host.h) and compares them with textbook implementations in
// double precision. Prints
// one line per check and exits non-zero on any failure. Built and run by
// tests/cuda_kernels_host.rs.
#include <cstdio>
#include <random>
#include <vector>

#include "cuda_host.h"
#include "adamw.cu"
#include "attention.cu"
#include "cross_entropy.cu"

using Vec = std::vector<float>;

static int failures = 0;

// max |a - b| / max |b|: error relative to the tensor's scale.
static void expect_close(const char* what, const Vec& got, const std::vector<double>& want,
                         double tol) {
    double err = 0.0, scale = 0.0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double d = std::fabs((double)got[i] - want[i]);
        err = (d > err || std::isnan(d)) ? d : err;
        scale = std::fmax(scale, std::fabs(want[i]));
    }
    const double rel = err / scale;
    const bool ok = rel <= tol;  // false for NaN
    std::printf("%-40s relative error %.3e (tolerance %.0e) %s\n", what, rel, tol,
                ok ? "ok" : "FAILED");
    failures += !ok;
}

static Vec random_vec(std::mt19937& rng, size_t n, float std_dev) {
    std::normal_distribution<float> normal(0.0f, std_dev);
    Vec v(n);
    for (auto& x : v) x = normal(rng);
    return v;
}

struct AttentionReference {
    std::vector<double> out, lse, dq, dk, dv;
};

// Causal softmax attention and its gradients for loss = sum(dO * O), per head, in double.
static AttentionReference attention_reference(const Vec& qkv, const Vec& dout, size_t bh,
                                              size_t t, size_t hd) {
    const size_t plane = bh * t * hd;
    const double scale = 1.0 / std::sqrt((double)hd);
    AttentionReference r;
    r.out.assign(plane, 0.0);
    r.lse.assign(bh * t, 0.0);
    r.dq.assign(plane, 0.0);
    r.dk.assign(plane, 0.0);
    r.dv.assign(plane, 0.0);
    auto q = [&](size_t h, size_t i, size_t d) { return (double)qkv[(h * t + i) * hd + d]; };
    auto k = [&](size_t h, size_t j, size_t d) { return (double)qkv[plane + (h * t + j) * hd + d]; };
    auto v = [&](size_t h, size_t j, size_t d) { return (double)qkv[2 * plane + (h * t + j) * hd + d]; };
    auto g = [&](size_t h, size_t i, size_t d) { return (double)dout[(h * t + i) * hd + d]; };
    for (size_t h = 0; h < bh; ++h) {
        std::vector<double> p(t * t, 0.0);
        for (size_t i = 0; i < t; ++i) {
            double m = -INFINITY;
            std::vector<double> s(i + 1);
            for (size_t j = 0; j <= i; ++j) {
                s[j] = 0.0;
                for (size_t d = 0; d < hd; ++d) s[j] += q(h, i, d) * k(h, j, d);
                s[j] *= scale;
                m = std::fmax(m, s[j]);
            }
            double l = 0.0;
            for (size_t j = 0; j <= i; ++j) l += std::exp(s[j] - m);
            r.lse[h * t + i] = m + std::log(l);
            for (size_t j = 0; j <= i; ++j) p[i * t + j] = std::exp(s[j] - m) / l;
            for (size_t d = 0; d < hd; ++d)
                for (size_t j = 0; j <= i; ++j) r.out[(h * t + i) * hd + d] += p[i * t + j] * v(h, j, d);
        }
        for (size_t i = 0; i < t; ++i) {
            double big_d = 0.0;
            for (size_t d = 0; d < hd; ++d) big_d += g(h, i, d) * r.out[(h * t + i) * hd + d];
            for (size_t j = 0; j <= i; ++j) {
                double dp = 0.0;
                for (size_t d = 0; d < hd; ++d) dp += g(h, i, d) * v(h, j, d);
                const double ds = p[i * t + j] * (dp - big_d);
                for (size_t d = 0; d < hd; ++d) {
                    r.dq[(h * t + i) * hd + d] += scale * ds * k(h, j, d);
                    r.dk[(h * t + j) * hd + d] += scale * ds * q(h, i, d);
                    r.dv[(h * t + j) * hd + d] += p[i * t + j] * g(h, i, d);
                }
            }
        }
    }
    return r;
}

template <int HD>
static void check_attention(std::mt19937& rng) {
    const size_t bh = 3, t = 37;  // t not a multiple of the block: exercises the bounds check
    const size_t plane = bh * t * HD;
    const float scale = 1.0f / std::sqrt((float)HD);
    const Vec qkv = random_vec(rng, 3 * plane, 1.5f);
    const Vec dout = random_vec(rng, plane, 1.0f);
    const HostDim3 grid{(unsigned)((t + 15) / 16), (unsigned)bh, 1}, block{16, 1, 1};

    Vec out(bh * t * (HD + 1), NAN);
    launch(grid, block, [&] { attention_forward<HD>(qkv.data(), out.data(), t, scale); });
    // dod = [dO | D], D = rowsum(dO * O) from the kernel's own output (as the Rust side does).
    Vec dod(out.size());
    Vec o(plane), lse(bh * t);
    for (size_t r = 0; r < bh * t; ++r) {
        double big_d = 0.0;
        for (size_t d = 0; d < HD; ++d) {
            o[r * HD + d] = out[r * (HD + 1) + d];
            dod[r * (HD + 1) + d] = dout[r * HD + d];
            big_d += (double)dout[r * HD + d] * out[r * (HD + 1) + d];
        }
        lse[r] = out[r * (HD + 1) + HD];
        dod[r * (HD + 1) + HD] = (float)big_d;
    }
    Vec dqkv(3 * plane, NAN);
    launch(grid, block, [&] { attention_backward_dq<HD>(qkv.data(), out.data(), dod.data(), dqkv.data(), t, scale); });
    launch(grid, block, [&] { attention_backward_key_rows<HD, false>(qkv.data(), out.data(), dod.data(), dqkv.data(), t, scale); });
    launch(grid, block, [&] { attention_backward_key_rows<HD, true>(qkv.data(), out.data(), dod.data(), dqkv.data(), t, scale); });

    const AttentionReference want = attention_reference(qkv, dout, bh, t, HD);
    const Vec dq(dqkv.begin(), dqkv.begin() + plane), dk(dqkv.begin() + plane, dqkv.begin() + 2 * plane),
        dv(dqkv.begin() + 2 * plane, dqkv.end());
    char name[64];
    const char* parts[] = {"output", "log-sum-exp", "dq", "dk", "dv"};
    const Vec* got[] = {&o, &lse, &dq, &dk, &dv};
    const std::vector<double>* ref[] = {&want.out, &want.lse, &want.dq, &want.dk, &want.dv};
    for (int k = 0; k < 5; ++k) {
        std::snprintf(name, sizeof name, "attention head_dim %d: %s", HD, parts[k]);
        expect_close(name, *got[k], *ref[k], 2e-5);
    }
}

static void check_adamw(std::mt19937& rng) {
    const size_t n = 1000;
    const float beta1 = 0.9f, beta2 = 0.95f, scale = 0.5f, lr = 3e-3f, decay = 1.0f - 3e-4f;
    const float inv_bc1 = 1.0f / 0.1f, inv_bc2 = 1.0f / 0.05f, eps = 1e-8f;
    const Vec g = random_vec(rng, n, 1.0f), p0 = random_vec(rng, n, 0.02f);
    Vec mv = random_vec(rng, 2 * n, 0.01f), p = p0;
    for (size_t i = n; i < 2 * n; ++i) mv[i] = mv[i] * mv[i];  // v >= 0
    const Vec mv0 = mv;
    const HostDim3 grid{7, 1, 1}, block{32, 1, 1};  // fewer threads than n: grid-stride loop
    launch(grid, block, [&] { adamw_moments_f32(mv.data(), g.data(), n, beta1, beta2, scale); });
    launch(grid, block, [&] { adamw_apply_f32(p.data(), mv.data(), n, lr, decay, inv_bc1, inv_bc2, eps); });
    std::vector<double> want_m(n), want_v(n), want_p(n);
    for (size_t i = 0; i < n; ++i) {
        const double gi = (double)g[i] * scale;
        want_m[i] = beta1 * (double)mv0[i] + (1.0 - beta1) * gi;
        want_v[i] = beta2 * (double)mv0[n + i] + (1.0 - beta2) * gi * gi;
        want_p[i] = decay * (double)p0[i] -
                    lr * (want_m[i] * inv_bc1) / (std::sqrt(want_v[i] * inv_bc2) + eps);
    }
    expect_close("adamw: m", Vec(mv.begin(), mv.begin() + n), want_m, 1e-6);
    expect_close("adamw: v", Vec(mv.begin() + n, mv.end()), want_v, 1e-6);
    expect_close("adamw: parameter", p, want_p, 1e-6);
}

// Per-row NLL and its in-place gradient; row 3 holds a NaN, row 4 an out-of-range target.
static void check_cross_entropy(std::mt19937& rng) {
    const unsigned int n = 5, v = 1000;  // v not a multiple of the block: partial last stride
    Vec logits = random_vec(rng, n * v, 3.0f);
    logits[3 * v + 17] = NAN;
    std::vector<unsigned int> targets = {7, 999, 0, 5, v};
    const Vec upstream = {0.5f, -1.0f, 2.0f, 1.0f, 1.0f};
    Vec nll(n, 0.0f);
    const HostDim3 grid{n, 1, 1}, block{128, 1, 1};
    launch_threads(grid, block, [&] { token_nll_f32(logits.data(), targets.data(), nll.data(), v); });
    Vec stats(2 * n);
    for (unsigned int r = 0; r < n; ++r) {
        stats[r] = nll[r];
        stats[n + r] = upstream[r];
    }
    Vec grad = logits;
    launch_threads(grid, block, [&] { token_nll_grad_f32(grad.data(), targets.data(), stats.data(), n, v); });

    const unsigned int good = 3;  // rows 0..2 are finite with valid targets
    std::vector<double> want_nll(good), want_grad(good * v);
    for (unsigned int r = 0; r < good; ++r) {
        double m = -INFINITY, l = 0.0;
        for (unsigned int j = 0; j < v; ++j) m = std::fmax(m, logits[r * v + j]);
        for (unsigned int j = 0; j < v; ++j) l += std::exp(logits[r * v + j] - m);
        const double lse = m + std::log(l);
        want_nll[r] = lse - logits[r * v + targets[r]];
        for (unsigned int j = 0; j < v; ++j)
            want_grad[r * v + j] =
                upstream[r] * (std::exp(logits[r * v + j] - lse) - (j == targets[r] ? 1.0 : 0.0));
    }
    expect_close("cross-entropy: nll", Vec(nll.begin(), nll.begin() + good), want_nll, 1e-6);
    expect_close("cross-entropy: gradient", Vec(grad.begin(), grad.begin() + good * v), want_grad, 1e-6);
    const bool nan_ok = std::isnan(nll[3]) && std::isnan(nll[4]);
    std::printf("%-40s %s\n", "cross-entropy: NaN logit, bad target", nan_ok ? "NaN loss ok" : "FAILED");
    failures += !nan_ok;
}

int main() {
    std::mt19937 rng(7);
    check_attention<32>(rng);
    check_attention<64>(rng);
    check_adamw(rng);
    check_cross_entropy(rng);
    std::printf("%s\n", failures ? "FAILED" : "all kernel checks passed");
    return failures ? 1 : 0;
}
