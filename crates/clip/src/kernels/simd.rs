//! Slice kernels for f32 (QuickGELU, softmax, layer norm, forward and backward), written so that
//! the compiler vectorises them, and compiled three times (AVX-512, AVX2+FMA, baseline) with the
//! widest one the CPU has picked at run time. Every variant performs the same IEEE operations in
//! the same order (sums use [`LANES`] fixed partial accumulators), so results do not depend on
//! the CPU or the thread count.

/// Partial accumulators per reduction (the widest vector: 16 f32 lanes of AVX-512).
const LANES: usize = 16;

/// QuickGELU's sigmoid slope: `x * sigmoid(1.702 x)`.
pub const QUICK_GELU_SLOPE: f32 = 1.702;

/// Defines `pub fn $name(args)` that runs `$body` compiled for the best instruction set found.
macro_rules! multiversion {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn imp($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    imp($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}

/// `e^x` for f32: Cephes' range reduction `x = k ln2 + r` and degree-6 polynomial (about 1 ulp),
/// branch-free so that it vectorises. Inputs are clamped to `[-87.3, 88.3]`, where it is finite (`e^-87.3` is
/// about 1e-38 instead of 0; NaN stays NaN).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * LOG2E + ROUND;
    let k = shifted - ROUND;
    let ki = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.987_569_2e-4_f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    er * f32::from_bits(((ki + 127) << 23) as u32)
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

multiversion! {
    /// `y = x * sigmoid(1.702 x)` element-wise.
    pub fn quick_gelu(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x * sigmoid(QUICK_GELU_SLOPE * x);
        }
    }
}

multiversion! {
    /// QuickGELU's input gradient: `dx = g * (s + 1.702 x s (1 - s))` with `s = sigmoid(1.702 x)`.
    pub fn quick_gelu_backward(x: &[f32], grad: &[f32], dx: &mut [f32]) {
        for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(grad) {
            let s = sigmoid(QUICK_GELU_SLOPE * x);
            *dx = g * (s + QUICK_GELU_SLOPE * x * s * (1.0 - s));
        }
    }
}

/// Largest element of `x` (`-inf` when empty).
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = a.max(v);
        }
    }
    let mut m = tail.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for a in acc {
        m = m.max(a);
    }
    m
}

/// Sum of `f(i)` over `0..len`, in [`LANES`] partial sums combined in a fixed order.
#[inline(always)]
fn sum_by(len: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let full = len - len % LANES;
    let mut i = 0;
    while i < full {
        for (lane, a) in acc.iter_mut().enumerate() {
            *a += f(i + lane);
        }
        i += LANES;
    }
    let mut tail = 0.0;
    for j in full..len {
        tail += f(j);
    }
    let mut total = 0.0;
    for a in acc {
        total += a;
    }
    total + tail
}

multiversion! {
    /// Softmax of each `row`-long row of `x` into `y`: `e^(x - max) / sum`.
    pub fn softmax_rows(x: &[f32], y: &mut [f32], row: usize) {
        for (x, y) in x.chunks_exact(row).zip(y.chunks_exact_mut(row)) {
            let m = max(x);
            for (y, &x) in y.iter_mut().zip(x) {
                *y = exp(x - m);
            }
            let inv = 1.0 / sum_by(row, |i| y[i]);
            for y in y.iter_mut() {
                *y *= inv;
            }
        }
    }
}

multiversion! {
    /// Softmax's input gradient per row: `dx = y * (g - sum(g * y))`.
    pub fn softmax_rows_backward(y: &[f32], grad: &[f32], dx: &mut [f32], row: usize) {
        let rows = y.chunks_exact(row).zip(grad.chunks_exact(row));
        for ((y, g), dx) in rows.zip(dx.chunks_exact_mut(row)) {
            let dot = sum_by(row, |i| g[i] * y[i]);
            for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                *dx = y * (g - dot);
            }
        }
    }
}

multiversion! {
    /// Layer norm of each `gamma.len()`-long row: `y = (x - mean) * rstd * gamma + beta`, with
    /// the biased variance; writes each row's `[mean, rstd]` with `rstd = 1 / sqrt(var + eps)`.
    pub fn layer_norm_rows(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        y: &mut [f32],
        stats: &mut [[f32; 2]],
    ) {
        let d = gamma.len();
        for ((x, y), stats) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)).zip(stats) {
            let m = sum_by(d, |i| x[i]) / d as f32;
            let var = sum_by(d, |i| (x[i] - m) * (x[i] - m)) / d as f32;
            let r = 1.0 / (var + eps).sqrt();
            for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
                *y = (x - m) * r * g + b;
            }
            *stats = [m, r];
        }
    }
}

multiversion! {
    /// Layer norm's gradients for a block of rows with their `[mean, rstd]`: writes `dx` and
    /// adds this block's `dgamma = sum(g * xhat)` and `dbeta = sum(g)` into the accumulators.
    pub fn layer_norm_rows_backward(
        x: &[f32],
        gamma: &[f32],
        stats: &[[f32; 2]],
        grad: &[f32],
        dx: &mut [f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
    ) {
        let d = gamma.len();
        let inv_d = 1.0 / d as f32;
        let rows = x.chunks_exact(d).zip(grad.chunks_exact(d)).zip(dx.chunks_exact_mut(d));
        for (((x, g), dx), &[m, r]) in rows.zip(stats) {
            let a = sum_by(d, |i| g[i] * gamma[i]) * inv_d;
            let b = sum_by(d, |i| g[i] * gamma[i] * ((x[i] - m) * r)) * inv_d;
            let params = gamma.iter().zip(dgamma.iter_mut().zip(dbeta.iter_mut()));
            for (((dx, &x), &g), (&gamma, (dgamma, dbeta))) in dx.iter_mut().zip(x).zip(g).zip(params) {
                let xhat = (x - m) * r;
                *dx = r * (g * gamma - a - xhat * b);
                *dgamma += g * xhat;
                *dbeta += g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (fast, exact) = (exp(x), (x as f64).exp());
            let rel = ((fast as f64 - exact) / exact).abs();
            assert!(rel < 2.5e-7, "exp({x}) = {fast}, expected {exact}");
            x += 0.0137;
        }
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_rows_sum_to_one_and_handle_masked_entries() {
        let x = [1.0, 2.0, f32::NEG_INFINITY, 0.5, -3.0, 4.0];
        let mut y = [0.0; 6];
        softmax_rows(&x, &mut y, 3);
        assert!(y[2] < 1e-30);
        for row in y.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }
}
