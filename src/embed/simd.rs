//! Loops compiled for AVX-512 or AVX2 when the CPU has them. The binary targets baseline
//! x86-64, whose SSE2 vectorises 4 floats at a time; the encoder's element-wise passes
//! (attention, GELU, int8 quantization and scaling) run 16 or 8 at a time this way, on any CPU
//! the binary starts on.

/// 1.5·2²³: added to an |x| < 2²², it rounds x to the nearest integer (ties to even) and leaves
/// that integer in the low bits of the sum's bit pattern. Integer results come out of those bits
/// with integer operations, which vectorise; a float-to-int `as` saturates and runs value by
/// value.
pub const ROUNDER: f32 = 12_582_912.0;

/// `op` folded over f(x) for every x of `v`, in 16 independent lanes that are folded together
/// at the end, so that it vectorises (one running fold is a chain the compiler must keep in
/// order). `init` is `op`'s identity.
#[inline(always)]
pub fn fold_by(v: &[f32], init: f32, f: impl Fn(f32) -> f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [init; LANES];
    let mut rest = v.chunks_exact(LANES);
    for c in &mut rest {
        for (s, &x) in lanes.iter_mut().zip(c) {
            *s = op(*s, f(x));
        }
    }
    rest.remainder()
        .iter()
        .map(|&x| f(x))
        .chain(lanes)
        .fold(init, &op)
}

/// Σ f(x) over `v` ([`fold_by`] with a sum).
#[inline(always)]
pub fn sum_by(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    fold_by(v, 0.0, f, |a, b| a + b)
}

/// What a `wide!` body is compiled for: how it multiplies and adds, and how many f32 one
/// vector register holds (tile sizes follow it, so accumulators fill the registers without
/// spilling). Rust never fuses `a * b + c` on its own (the rounding differs), and
/// `f32::mul_add` without the FMA feature is a libm call: the AVX builds use [`Fused`] (one FMA
/// instruction), the baseline build [`Separate`].
pub trait Isa {
    /// f32 lanes per vector register.
    const LANES: usize;
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a · b + c` in one rounding (an FMA instruction), registers of `L` f32.
pub struct Fused<const L: usize>;

/// `a · b + c` as a product and a sum, in SSE's registers of four.
pub struct Separate;

impl<const L: usize> Isa for Fused<L> {
    const LANES: usize = L;
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl Isa for Separate {
    const LANES: usize = 4;
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Defines a function whose body is compiled three times, as is, with AVX2 and FMA, and with
/// AVX-512F, and runs the widest the CPU has. Everything the body calls that should be vectorised
/// with it must be `#[inline(always)]` (a closure would not be inlined across). Declared as
/// `fn name<M>(…)`, the body gets an [`Isa`] type `M`: [`Fused`] of 16 or 8 lanes in the AVX
/// builds (AVX-512F implies FMA), [`Separate`] in the baseline one.
macro_rules! wide {
    ($(#[$m:meta])* $vis:vis fn $name:ident $(<$f:ident>)? ($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn any $(<$f: $crate::embed::simd::Isa>)? ($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512($($a: $t),*) $(-> $r)? {
                any $(::<$crate::embed::simd::fused!($f, 16)>)? ($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($a: $t),*) $(-> $r)? {
                any $(::<$crate::embed::simd::fused!($f, 8)>)? ($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { avx512($($a),*) };
            } else if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { avx2($($a),*) };
            }
            any $(::<$crate::embed::simd::separate!($f)>)? ($($a),*)
        }
    };
}

/// [`Fused`] of `$lanes`, in place of a `wide!` body's `Isa` parameter `$f`.
macro_rules! fused {
    ($f:ident, $lanes:literal) => {
        $crate::embed::simd::Fused<$lanes>
    };
}

/// [`Separate`], in place of a `wide!` body's `Isa` parameter `$f`.
macro_rules! separate {
    ($f:ident) => {
        $crate::embed::simd::Separate
    };
}

pub(crate) use {fused, separate, wide};
