//! Element-wise math for the CPU kernels, compiled for the widest vector unit the CPU has.
//!
//! The release binary targets baseline x86-64 so it runs on any x86-64 machine (a binary built
//! here is also carried to other hosts). Baseline means SSE2: 4 f32 lanes, no FMA. The loops
//! below are plain slice code in `#[inline(always)]` bodies; [`simd_kernel!`] compiles each one
//! three times (AVX-512, AVX2 + FMA, baseline) and picks the widest the CPU supports, detected
//! once at first use. Every variant gives bit-identical results, so which one runs does not
//! change a training run: rustc never contracts `a * b + c` into a fused multiply-add, and where
//! a kernel asks for one (`f32::mul_add`), the baseline build computes the same correctly rounded
//! result in software (slowly; every x86-64 CPU of the last decade takes an FMA path).

use std::sync::OnceLock;

/// The instruction-set level the kernels run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Avx512,
    Avx2,
    Baseline,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2",
            Level::Baseline => "baseline",
        }
    }
}

/// The level detected on this CPU (cached).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") && has!("fma") {
        Level::Avx512
    } else if has!("avx2") && has!("fma") {
        Level::Avx2
    } else {
        Level::Baseline
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Baseline
}

/// Defines a function whose body is compiled for each [`Level`] and dispatched at run time.
macro_rules! simd_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                match $crate::kernels::simd::level() {
                    // SAFETY: `level()` detected these features on this CPU.
                    $crate::kernels::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::simd::Level::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use simd_kernel;

/// Lanes of the hand-unrolled reductions: independent accumulators let the compiler vectorise
/// loops that would otherwise be one serial floating-point chain. Fixed in the source, so the
/// summation order (and the result) is the same at every [`Level`].
pub const LANES: usize = 16;

/// exp(x), branch-free so that loops over it vectorise (`f32::exp` is a libm call per
/// element). Cephes `expf` scheme: x = n ln2 + r with |r| <= ln2/2, degree-6 polynomial for
/// e^r (Horner steps as fused multiply-adds), 2^n built in the exponent bits. Relative error
/// ~2e-7 (a few ulp). Inputs are clamped to [-87.3, 88.3]: below, the result is ~1e-38 instead
/// of 0 or a denormal (irrelevant after a softmax's max-subtraction). NaN propagates.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let x = if x < -87.3 { -87.3 } else { x };
    let x = if x > 88.3 { 88.3 } else { x };
    let m = x.mul_add(LOG2E, MAGIC);
    let n = m - MAGIC;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let er = (p * r).mul_add(r, r + 1.0);
    // m's bit pattern is MAGIC's plus n (two's complement), so this is (n + 127) << 23.
    let pow2n = f32::from_bits(m.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    er * pow2n
}

/// tanh(x) = 1 - 2 / (exp(2x) + 1), saturating to ±1 for |x| > 9 (where f32 tanh is ±1).
/// Absolute error ~2e-7.
#[inline(always)]
pub fn tanh_fast(x: f32) -> f32 {
    let x = if x > 9.0 { 9.0 } else { x };
    let x = if x < -9.0 { -9.0 } else { x };
    1.0 - 2.0 / (exp_fast(2.0 * x) + 1.0)
}

/// sqrt(2 / pi), the tanh-GELU constant.
const GELU_C: f32 = 0.797_884_6;
const GELU_A: f32 = 0.044_715;

/// GELU with the tanh approximation (GPT-2's `gelu_new`, PyTorch's `approximate="tanh"`):
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + tanh_fast(GELU_C * (x + GELU_A * x * x * x)))
}

/// d gelu(x) / dx for [`gelu`].
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    let t = tanh_fast(GELU_C * (x + GELU_A * x * x * x));
    let dinner = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dinner
}

simd_kernel! {
    /// `y = gelu(u)`, element-wise.
    pub fn gelu_forward(u: &[f32], y: &mut [f32]) {
        for (y, &u) in y.iter_mut().zip(u) {
            *y = gelu(u);
        }
    }
}

simd_kernel! {
    /// `g *= gelu'(u)`, element-wise: turns dL/dy into dL/du in place.
    pub fn gelu_backward(u: &[f32], g: &mut [f32]) {
        for (g, &u) in g.iter_mut().zip(u) {
            *g *= gelu_grad(u);
        }
    }
}

simd_kernel! {
    /// Row maximum. NaNs are skipped here but still propagate through [`exp_fast`] to a sum.
    pub fn row_max(row: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a = if x > *a { x } else { *a };
            }
        }
        let tail_max = tail.iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
        acc.iter().fold(tail_max, |m, &x| if x > m { x } else { m })
    }
}

simd_kernel! {
    /// sum(exp(x - shift)) over `row` in f32 lanes. Callers keep rows to a few thousand
    /// elements and add the partial sums in f64 (a flat 50257-term f32 sum loses ~1e-5).
    pub fn sum_exp(row: &[f32], shift: f32) -> f32 {
        let mut acc = [0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a += exp_fast(x - shift);
            }
        }
        let tail_sum: f32 = tail.iter().map(|&x| exp_fast(x - shift)).sum();
        acc.iter().sum::<f32>() + tail_sum
    }
}

simd_kernel! {
    /// `row = exp(row - shift) * scale`, in place.
    pub fn exp_scale_in_place(row: &mut [f32], shift: f32, scale: f32) {
        for x in row.iter_mut() {
            *x = exp_fast(*x - shift) * scale;
        }
    }
}

simd_kernel! {
    /// `x = exp(x - shift)` in place; returns the sum (f32 lanes, as [`sum_exp`]).
    pub fn exp_shifted_sum(x: &mut [f32], shift: f32) -> f32 {
        let mut acc = [0f32; LANES];
        let mut chunks = x.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
                *v = exp_fast(*v - shift);
                *a += *v;
            }
        }
        let mut tail = 0f32;
        for v in chunks.into_remainder() {
            *v = exp_fast(*v - shift);
            tail += *v;
        }
        acc.iter().sum::<f32>() + tail
    }
}

simd_kernel! {
    /// `acc += x * scale`, element-wise.
    pub fn add_scaled(acc: &mut [f32], x: &[f32], scale: f32) {
        for (a, &x) in acc.iter_mut().zip(x) {
            *a += x * scale;
        }
    }
}

simd_kernel! {
    /// Dot product in [`LANES`] independent accumulators.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in ca.zip(cb) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        acc.iter().sum::<f32>() + tail
    }
}

simd_kernel! {
    /// Sum of squares in f32 lanes; callers keep slices short and add partials in f64.
    pub fn sum_squares(x: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
        for c in chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += v * v;
            }
        }
        acc.iter().sum::<f32>() + tail
    }
}

simd_kernel! {
    /// `acc += x`, element-wise.
    pub fn add_assign(acc: &mut [f32], x: &[f32]) {
        for (a, &x) in acc.iter_mut().zip(x) {
            *a += x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_is_accurate_over_the_softmax_range() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 87.0 * i as f32 / 200_000.0;
            let (got, want) = (exp_fast(x) as f64, (x as f64).exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 5e-7, "max relative error {worst}");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(f32::NAN).is_nan());
        assert!(exp_fast(100.0).is_finite());
    }

    #[test]
    fn tanh_and_gelu_match_f64_references() {
        let (mut worst_t, mut worst_g, mut worst_d) = (0f64, 0f64, 0f64);
        for i in 0..=40_000 {
            let x = -12.0 + 24.0 * i as f64 / 40_000.0;
            worst_t = worst_t.max((tanh_fast(x as f32) as f64 - x.tanh()).abs());
            let inner = 0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x);
            let want = 0.5 * x * (1.0 + inner.tanh());
            worst_g = worst_g.max((gelu(x as f32) as f64 - want).abs() / (1.0 + want.abs()));
            let h = 1e-4;
            let fd = |x: f64| {
                let i = 0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x);
                0.5 * x * (1.0 + i.tanh())
            };
            let d = (fd(x + h) - fd(x - h)) / (2.0 * h);
            worst_d = worst_d.max((gelu_grad(x as f32) as f64 - d).abs());
        }
        assert!(worst_t < 5e-7, "tanh error {worst_t}");
        assert!(worst_g < 1e-6, "gelu error {worst_g}");
        assert!(worst_d < 3e-5, "gelu grad error {worst_d}");
        assert!(gelu(f32::NAN).is_nan());
    }

    #[test]
    fn reductions_match_scalar_sums() {
        let x: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.5)
            .collect();
        let y: Vec<f32> = (0..1000)
            .map(|i| ((i * 53) % 97) as f32 * 0.02 - 1.0)
            .collect();
        let dot_ref: f64 = x.iter().zip(&y).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!((dot(&x, &y) as f64 - dot_ref).abs() < 1e-4);
        let sq_ref: f64 = x.iter().map(|a| (*a as f64).powi(2)).sum();
        assert!((sum_squares(&x) as f64 - sq_ref).abs() < 1e-4);
        let max = x.iter().cloned().fold(f32::MIN, f32::max);
        assert_eq!(row_max(&x), max);
        let se_ref: f64 = x.iter().map(|a| ((*a - max) as f64).exp()).sum();
        assert!((sum_exp(&x, max) as f64 - se_ref).abs() / se_ref < 1e-6);
    }
}
