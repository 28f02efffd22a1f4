//! Loops compiled for AVX-512 or AVX2 when the CPU has them. The binary targets baseline
//! x86-64, whose SSE2 vectorises 4 floats at a time; the encoder's element-wise passes
//! (attention, GELU, int8 quantization and scaling) run 16 or 8 at a time this way, on any CPU
//! the binary starts on.

/// 1.5·2²³: added to an |x| < 2²², it rounds x to the nearest integer (ties to even) and leaves
/// that integer in the low bits of the sum's bit pattern. Integer results come out of those bits
/// with integer operations, which vectorise; a float-to-int `as` saturates and runs value by
/// value.
pub const ROUNDER: f32 = 12_582_912.0;

/// How a `wide!` body multiplies and adds. Rust never fuses `a * b + c` on its own (the
/// rounding differs), and `f32::mul_add` without the FMA feature is a libm call: the AVX builds
/// use [`Fused`] (one FMA instruction), the baseline build [`Separate`].
pub trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a · b + c` in one rounding (an FMA instruction where the build has the feature).
pub struct Fused;

/// `a · b + c` as a product and a sum.
pub struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Defines a function whose body is compiled three times, as is, with AVX2 and FMA, and with
/// AVX-512F, and runs the widest the CPU has. Everything the body calls that should be vectorised
/// with it must be `#[inline(always)]` (a closure would not be inlined across). Declared as
/// `fn name<M>(…)`, the body gets a [`MulAdd`] type `M`: [`Fused`] in the AVX builds (AVX-512F
/// implies FMA), [`Separate`] in the baseline one.
macro_rules! wide {
    ($(#[$m:meta])* $vis:vis fn $name:ident $(<$f:ident>)? ($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn any $(<$f: $crate::embed::simd::MulAdd>)? ($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512($($a: $t),*) $(-> $r)? {
                any $(::<$crate::embed::simd::fused!($f)>)? ($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($a: $t),*) $(-> $r)? {
                any $(::<$crate::embed::simd::fused!($f)>)? ($($a),*)
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

/// [`Fused`], in place of a `wide!` body's `MulAdd` parameter `$f`.
macro_rules! fused {
    ($f:ident) => {
        $crate::embed::simd::Fused
    };
}

/// [`Separate`], in place of a `wide!` body's `MulAdd` parameter `$f`.
macro_rules! separate {
    ($f:ident) => {
        $crate::embed::simd::Separate
    };
}

pub(crate) use {fused, separate, wide};
