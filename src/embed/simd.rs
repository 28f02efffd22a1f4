//! Loops compiled for AVX-512 or AVX2 when the CPU has them. The binary targets baseline
//! x86-64, whose SSE2 vectorises 4 floats at a time; the encoder's element-wise passes
//! (attention, GELU, int8 quantization and scaling) run 16 or 8 at a time this way, on any CPU
//! the binary starts on.

/// Defines a function whose body is compiled three times, as is, with AVX2 and FMA, and with
/// AVX-512F, and runs the widest the CPU has. Everything the body calls that should be vectorised
/// with it must be `#[inline(always)]` (a closure would not be inlined across).
macro_rules! wide {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn any($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512($($a: $t),*) $(-> $r)? {
                any($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($a: $t),*) $(-> $r)? {
                any($($a),*)
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
            any($($a),*)
        }
    };
}

pub(crate) use wide;
